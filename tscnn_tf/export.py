"""Deployment artifacts of a trained TSCNN: SavedModel (with a serving signature) and TFLite.

    saved_models/<name>/model.keras        the Keras model, for reuse in research code
    saved_models/<name>/saved_model/       signature "serving_default": inputs apex_gray,
                                           blocks, flow -> probabilities, class_index
    saved_models/<name>/model.tflite       float32, the same signature
    saved_models/<name>/metadata.json      class names, feature parameters, normalisation,
                                           versions, and the measured parity of each artifact

Both artifacts are loaded back and compared with the Keras model before metadata.json, the
mark of a finished export, is written.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"
INPUT_NORMALISATION = {
    "apex_gray": "grey apex face, 48x48x1, scaled to [0, 1]",
    "blocks": "n x n blocks of the apex face, 48x48xn², row-major channels, [0, 1]",
    "flow": "onset->apex and apex->offset flow (u1, v1, u2, v2), 48x48x4, min-max per channel (eq. 5)",
}


def input_specs(model) -> dict:
    import tensorflow as tf
    return {t.name.split(":")[0]: tf.TensorSpec((None, *t.shape[1:]), tf.float32,
                                                name=t.name.split(":")[0])
            for t in model.inputs}


def write_saved_model(model, path: Path) -> None:
    """A SavedModel whose serving signature takes the inputs by name and returns both outputs."""
    import keras
    import tensorflow as tf
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        probabilities = model(inputs, training=False)
        return {"probabilities": probabilities,
                "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[input_specs(model)])
    archive.write_out(str(path), verbose=False)


def write_tflite(saved_model: Path, path: Path) -> None:
    """Float32 TFLite converted from the exported SavedModel (not from tf.saved_model.save,
    whose conversion gives NaN outputs on TF 2.21)."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [SIGNATURE])
    path.write_bytes(converter.convert())


def run_saved_model(path, inputs: dict) -> np.ndarray:
    import tensorflow as tf
    fn = tf.saved_model.load(str(path)).signatures[SIGNATURE]
    return fn(**{k: tf.constant(v, tf.float32) for k, v in inputs.items()})["probabilities"].numpy()


def run_tflite(path, inputs: dict) -> np.ndarray:
    """Run the TFLite file one sample at a time, feeding inputs by name (TFLite reorders them)."""
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    count = len(next(iter(inputs.values())))
    return np.concatenate([runner(**{k: np.asarray(v[i:i + 1], np.float32)
                                     for k, v in inputs.items()})["probabilities"]
                           for i in range(count)])


def parity(reference: np.ndarray, other: np.ndarray) -> dict:
    return {"max_abs_diff": float(np.max(np.abs(reference - other))),
            "top1_agreement": float(np.mean(reference.argmax(-1) == other.argmax(-1)))}


def package_versions() -> dict:
    from importlib import metadata
    out = {}
    for name in ("tscnn-tf", "tensorflow", "keras", "ai-edge-litert", "opencv-contrib-python-headless"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def export_model(model, output_dir, metadata: dict, sample_inputs: dict) -> dict:
    """Write model.keras, saved_model/ and model.tflite under `output_dir`, check each against
    the Keras model on `sample_inputs` ({input name: array}) and write metadata.json last.

    `metadata` must hold at least `class_names` and `params` (the feature parameters).
    Returns the metadata as written.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metadata.json").unlink(missing_ok=True)  # not finished until rewritten
    tmp = output_dir / "partial-model.keras"
    model.save(tmp)
    os.replace(tmp, output_dir / "model.keras")
    saved = output_dir / "saved_model"
    shutil.rmtree(saved, ignore_errors=True)
    write_saved_model(model, saved)
    write_tflite(saved, output_dir / "model.tflite")

    reference = model.predict({k: np.asarray(v, np.float32) for k, v in sample_inputs.items()},
                              verbose=0)
    metadata = {**metadata,
                "inputs": {name: {"shape": list(spec.shape[1:]),
                                  "normalisation": INPUT_NORMALISATION[name]}
                           for name, spec in input_specs(model).items()},
                "outputs": {"probabilities": "softmax over class_names",
                            "class_index": "argmax of probabilities"},
                "signature": SIGNATURE,
                "versions": package_versions(),
                "parity": {"num_samples": len(reference),
                           "saved_model": parity(reference, run_saved_model(saved, sample_inputs)),
                           "tflite_float32": parity(reference, run_tflite(
                               output_dir / "model.tflite", sample_inputs))}}
    tmp = output_dir / "metadata.json.partial"
    tmp.write_text(json.dumps(metadata, indent=1))
    os.replace(tmp, output_dir / "metadata.json")
    return metadata
