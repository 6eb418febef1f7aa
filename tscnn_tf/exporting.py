"""Deployment artifacts of a trained model (any of `--model`): SavedModel (with a serving
signature) and TFLite, each with its measured parity; the library behind
`python -m tscnn_tf.export`, `train --export_dir` and `bench`.

    <output_dir>/model.keras            the Keras model without optimizer state, for reuse
    <output_dir>/saved_model/           signature "serving_default": the model's inputs by
                                        record field (the TSCNN: apex_gray, blocks, flow) ->
                                        outputs probabilities, class_index
    <output_dir>/model.tflite           float32, the same signature
    <output_dir>/model_dynamic.tflite   dynamic-range quantised weights
    <output_dir>/model_int8.tflite      int8 convolutions, max pooling and dense layers; PReLU,
                                        average pooling and softmax in float (float32 inputs
                                        and outputs), all in XNNPACK,
                                        calibrated on training-subject records
    <output_dir>/metadata.json          class names, feature parameters (n, λ, flow, ...), input
                                        normalisation, versions, and the measured parity of
                                        every artifact with the Keras model on held-out samples

metadata.json is written last: an export without it is unfinished.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from tscnn_tf.errors import ToolkitError
from tscnn_tf.artifacts import (PARTIAL_PREFIX, SIGNATURE, ExportedModel, atomic_write,
                                check_writable_dir, disk_full, folder_size, free_space,
                                is_partial, megabytes, package_versions, remove,
                                save_model_atomic, sha256_of, swap_folder, write_json_atomic)

TFLITE_FILES = {"float32": "model.tflite", "dynamic": "model_dynamic.tflite",
                "int8": "model_int8.tflite"}
ARTIFACTS = {"model.keras", "saved_model", "metadata.json", *TFLITE_FILES.values()}
INPUT_NORMALISATION = {
    "apex_gray": "grey apex face, 48x48x1, scaled to [0, 1]",
    "blocks": "n x n blocks of the apex face, 48x48xn², row-major channels, [0, 1]",
    "flow": "onset->apex and apex->offset flow (u1, v1, u2, v2), 48x48x4, min-max per channel (eq. 5)",
    "flow_raw": "the same flow unnormalised, pixels of the 48x48 grid (u1, v1, u2, v2)",
    "lbptop": "LBP-TOP histograms of the aligned grey clip (5x5 blocks x 3 planes x 59 u2 bins, "
              "each histogram summing to 1)",
}


class ExportError(ToolkitError):
    """An export that cannot be done as asked (no records to calibrate on, mismatched n, ...)."""


def input_names(model) -> list[str]:
    return [t.name.split(":")[0] for t in model.inputs]


def input_specs(model) -> dict:
    import tensorflow as tf
    return {name: tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=name)
            for name, t in zip(input_names(model), model.inputs)}


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


# Ops the int8 file keeps in float: XNNPACK (LiteRT's CPU delegate) has no int8 kernel for
# them, so as int8 they ran on TFLite's own kernels (PReLU's is a reference one) between 8
# XNNPACK partitions, and int8 was slower than float32 (issue 19). In float they run in
# XNNPACK with the int8 ops, int8 <-> float conversions around them; the float softmax also
# keeps the probabilities off int8's 1/256 steps. DIV (the min-max normalisation in other
# models' input layers) as int8 stopped the interpreter on a divisor that rounds to 0.
INT8_FLOAT_OPS = ("PRELU", "AVERAGE_POOL_2D", "SOFTMAX", "DIV")


def write_tflite(saved_model: Path, path: Path, mode: str = "float32",
                 representative: dict | None = None) -> None:
    """TFLite converted from the exported SavedModel (not from tf.saved_model.save, whose
    conversion gives NaN outputs on TF 2.21). mode: float32, dynamic or int8; int8 needs
    `representative` ({input name: array}), fed by name because TFLite reorders inputs; its
    `INT8_FLOAT_OPS` stay in float."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), [SIGNATURE])
    if mode in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        count = len(next(iter(representative.values())))

        def samples():
            for i in range(count):
                yield {k: np.asarray(v[i:i + 1], np.float32) for k, v in representative.items()}

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with warnings.catch_warnings():
            # TensorFlow's calibrator runs its own deprecated tf.lite.Interpreter and says so;
            # the toolkit runs its models in ai_edge_litert's.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is "
                                    "deprecated")
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=samples,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_ops=list(INT8_FLOAT_OPS)))
            content = debugger.get_nondebug_quantized_model()
    else:
        content = converter.convert()
    with atomic_write(path) as tmp:
        tmp.write_bytes(content)


def run_saved_model(path, inputs: dict) -> np.ndarray:
    """Probabilities of the SavedModel at `path` (its serving signature) for a batch."""
    return ExportedModel(path, metadata={}).predict(inputs)


def run_tflite(path, inputs: dict) -> np.ndarray:
    """Probabilities of the TFLite file at `path` for a batch (one sample at a time)."""
    return ExportedModel(path, metadata={}).predict(inputs)


def parity(reference: np.ndarray, other: np.ndarray) -> dict:
    return {"max_abs_diff": float(np.max(np.abs(reference - other))),
            "top1_agreement": float(np.mean(reference.argmax(-1) == other.argmax(-1)))}


def check_export_dir(output_dir, flag: str = "--export_dir") -> Path:
    """Refuse an export folder that is a file, under a file, unwritable, or that holds files an
    export does not write (nothing there is touched); else create it. Run it before any work.
    `flag` is the command's flag of the folder (`train --export_dir`, `export --output_dir`)."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ExportError(f"the export folder {output_dir} is a file, not a folder")
    foreign = sorted(p.name for p in output_dir.iterdir() if p.name not in ARTIFACTS
                     and not is_partial(p)) if output_dir.is_dir() else []
    if foreign:
        raise ExportError(f"{output_dir} holds files an export does not write ({foreign[:3]}): "
                          f"refusing to write into it; give an empty or new {flag}")
    try:
        return check_writable_dir(output_dir)
    except OSError as e:
        raise ExportError(f"the export folder {output_dir}: {e}") from None


def export_model(model, output_dir, metadata: dict, parity_inputs: dict,
                 representative: dict, flag: str = "--export_dir") -> dict:
    """Write every artifact, compare each with the Keras model on `parity_inputs` ({input
    name: array}, held-out samples), write metadata.json last, and only then put the whole
    export at `output_dir`: it is built in a folder beside it and swapped in complete, so a
    failure (a full disk: one ExportError saying how much space was needed) leaves an earlier
    export there untouched.

    `metadata` must hold at least `class_names` and `params` (the feature parameters);
    `representative` (training samples) calibrates the int8 file. Returns the metadata written.
    """
    output_dir = check_export_dir(output_dir, flag)
    target = output_dir.resolve()  # a name even for "."
    build = target.with_name(PARTIAL_PREFIX + target.name)
    try:
        remove(build)
        build.mkdir()
        metadata = _write_export(model, build, metadata, parity_inputs, representative)
        swap_folder(build, target)
    except BaseException as e:
        written = folder_size(build)
        remove(build)
        if disk_full(e):
            earlier = (output_dir / "metadata.json").is_file()
            # An earlier export of the folder is the best measure of what this one takes.
            needed = max(folder_size(output_dir) if earlier else export_size(model), written + 1)
            raise ExportError(
                f"no space left on the disk of {output_dir} while exporting: the export needs "
                f"about {megabytes(needed)} ({megabytes(written)} were written before the disk "
                f"filled; {megabytes(free_space(output_dir))} free now). Free some space and "
                "export again; " + ("the earlier export there is untouched" if earlier else
                                    "nothing was written")) from None
        raise
    return metadata


def export_size(model) -> int:
    """About the bytes an export of `model` takes: model.keras, the SavedModel and the float32
    TFLite file hold 4 bytes a weight each, the two quantised files about 1 (the tiny TSCNN,
    11 k weights: 0.88 MB measured)."""
    return 14 * int(model.count_params()) + 800_000  # + graphs and archive overhead


def _write_export(model, output_dir: Path, metadata: dict, parity_inputs: dict,
                  representative: dict) -> dict:
    """Every artifact and metadata.json (last) in the new folder `output_dir`."""
    import keras
    deploy = keras.models.clone_model(model)  # without the optimizer state: half the size
    deploy.set_weights(model.get_weights())
    save_model_atomic(deploy, output_dir / "model.keras")
    saved = output_dir / "saved_model"
    with atomic_write(saved) as tmp:
        write_saved_model(deploy, tmp)
    for mode, name in TFLITE_FILES.items():
        write_tflite(saved, output_dir / name, mode, representative)

    parity_inputs = {k: np.asarray(v, np.float32) for k, v in parity_inputs.items()}
    from tscnn_tf.loso import quiet_retracing
    with quiet_retracing():  # after the folds' predictions, this one's trace is "frequent" too
        reference = deploy.predict(parity_inputs, verbose=0)
    measured = {"saved_model": parity(reference, run_saved_model(saved, parity_inputs))}
    for mode, name in TFLITE_FILES.items():
        measured[f"tflite_{mode}"] = parity(reference, run_tflite(output_dir / name, parity_inputs))
    metadata = dict(metadata)
    samples = metadata.pop("parity_samples", "")
    metadata.update({
        "inputs": {name: {"shape": list(spec.shape[1:]),
                          "normalisation": INPUT_NORMALISATION.get(name, "")}
                   for name, spec in input_specs(model).items()},
        "outputs": {"probabilities": "softmax over class_names",
                    "class_index": "argmax of probabilities"},
        "signature": SIGNATURE,
        "artifacts": {"keras": "model.keras", "saved_model": "saved_model",
                      **{f"tflite_{m}": n for m, n in TFLITE_FILES.items()}},
        "versions": package_versions(),
        "parity": {"num_samples": len(reference), "samples": samples, **measured},
        # What `ExportedModel` checks a model against, so that a model and a metadata.json of
        # different exports are never used together.
        "model_name": deploy.name,
        "sha256": {name: sha256_of(output_dir / name)
                   for name in ("model.keras", "saved_model", *TFLITE_FILES.values())}})
    write_json_atomic(output_dir / "metadata.json", metadata)
    return metadata


def subject_inputs(records_dir, subjects, fields, augment: bool, limit: int) -> dict:
    """Up to `limit` model inputs ({field: array}, `fields` the model's input names or TSCNN
    stream letters) of `subjects` from the records (all subjects if None)."""
    from tscnn_tf import data, loso
    manifest = data.load_manifest(records_dir)
    ds = data.make_dataset(data.record_files(records_dir), manifest["params"]["blocks"], fields,
                           subjects, training=augment, augment_x10=augment, batch_size=limit,
                           seed=0, flow_norm=loso.flow_norm_of(manifest))
    inputs, _ = next(iter(ds))
    return {k: v.numpy() for k, v in inputs.items()}


def export_run_model(model_path, output_dir, records_dir=None, limit: int = 128,
                     flag: str = "--export_dir") -> dict:
    """Export a model trained by `tscnn_tf.train` (a fold's or the final `best.keras`).

    The records default to the run's (`<workdir>/records`). The int8 file is calibrated on the
    model's training subjects; parity is measured on its held-out (validation and test)
    subjects with their ×10 flips and rotations, so it never includes what the model trained on.
    """
    from tscnn_tf import artifacts, data, model as model_lib, models, records
    model_path = Path(model_path)
    if not (isinstance(limit, int) and limit >= 1):
        raise ExportError(f"--parity_samples={limit}: must be at least 1")
    if not model_path.is_file():
        raise ExportError(f"no model at {model_path}")
    run_dir = model_path.parent
    workdir = next((p for p in (run_dir.parent, run_dir.parent.parent)
                    if (p / "records" / "manifest.json").is_file()), None)
    records_dir = Path(records_dir) if records_dir else (workdir / "records" if workdir else None)
    if records_dir is None or not (records_dir / "manifest.json").is_file():
        raise ExportError(f"no records for {model_path}: pass --records_dir (the int8 file is "
                          "calibrated on them and parity is measured on them)")
    model = artifacts.load_keras_file(model_path)
    manifest = data.load_manifest(records_dir)
    records.verify(records_dir, manifest, ExportError)  # calibration reads them all
    names = input_names(model)
    # The run's record: the final model's own, or a fold's workdir's.
    record = next((d / "config.json" for d in (run_dir, workdir)
                   if d is not None and (d / "config.json").is_file()), None)
    run = json.loads(record.read_text()) if record else {}
    train = run.get("identity", {}).get("train") or {}
    if run and not artifacts.name_matches(model.name, train.get("model", "tscnn")):
        raise ExportError(f"{model_path} is the model {model.name!r}, but its run record {record} "
                          f"trained --model={train.get('model', 'tscnn')}: the model file is not "
                          "that run's; export the best.keras that run wrote")
    stored = data.stored_fields(manifest)
    models.require_fields(train.get("model", "tscnn"), names, stored,
                          f"the records in {records_dir}")
    n = manifest["params"]["blocks"]
    if "blocks" in names and model.inputs[names.index("blocks")].shape[-1] != n * n:
        raise ExportError(f"the model takes {model.inputs[names.index('blocks')].shape[-1]} block "
                          f"channels, the records n={n} ({n * n}); use the records it was "
                          "trained on")
    split = (json.loads((run_dir / "split.json").read_text())
             if (run_dir / "split.json").is_file() else None)
    held_out = (split["validation"] + split["test"]) if split else None
    metadata = {"db": manifest["db"], "class_names": manifest["class_names"],
                "params": manifest["params"], "model": train.get("model", "tscnn"),
                "parity_samples": (f"held-out subjects {held_out} with their x10 variants"
                                   if split else "all records (no split.json: not held out)")}
    if metadata["model"] == "tscnn":  # its streams, as before
        metadata["streams"] = "+".join(s for s, f in model_lib.STREAM_INPUTS.items() if f in names)
    if run:  # the run's identity and whole experiment config
        metadata.update(fingerprint=run.get("fingerprint"), config=run, train=train)
    if workdir and (workdir / "results.json").is_file():
        loso = json.loads((workdir / "results.json").read_text())
        metadata["loso_estimate"] = {k: loso[k] for k in
                                     ("accuracy", "f1_macro", "uf1", "uar", "num_samples")}
    return export_model(model, output_dir, metadata,
                        subject_inputs(records_dir, held_out, names, True, limit),
                        subject_inputs(records_dir, split["train"] if split else None, names,
                                       False, limit), flag)


def format_parity(metadata: dict) -> str:
    lines = [f"parity with Keras on {metadata['parity']['num_samples']} samples "
             f"({metadata['parity']['samples']}):"]
    for name, p in metadata["parity"].items():
        if isinstance(p, dict):
            lines.append(f"  {name:<16} max |Δp| {p['max_abs_diff']:.2e}   "
                         f"top-1 agreement {100 * p['top1_agreement']:.1f}%")
    return "\n".join(lines)
