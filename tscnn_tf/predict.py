"""Predict the micro-expression of a new clip with an exported or trained model.

    python -m tscnn_tf.predict --model=saved_models/synthetic --video=clip.mp4
    python -m tscnn_tf.predict --model=saved_models/synthetic/model_int8.tflite --frames=DIR --json
    python -m tscnn_tf.predict --model=... --frames=DIR --onset=12 --offset=40 \
        --visualize=apex.png --dump_features=features.npz

The clip goes through the feature stage's own code (face, landmarks, alignment, apex spotting,
flow, the three inputs), with the parameters in the model's metadata.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tscnn_tf.databases.base import MIN_FRAMES, Sample, list_frames, video_fps, video_frame_count
from tscnn_tf.errors import ToolkitError


class PredictError(ToolkitError):
    """An expected failure (no face, too few frames, unreadable input, mismatched model)."""


LONG_CLIP_S = 2.0        # longer than any micro- or macro-expression
LONG_CLIP_FRAMES = 400   # the same without a frame rate (2 s at 200 fps)


def find_metadata(model_path: Path) -> dict:
    """metadata.json in the export folder, or beside a model file inside it."""
    folders = [model_path] if model_path.is_dir() else [model_path.parent, model_path.parent.parent]
    for folder in folders:
        if (folder / "metadata.json").is_file():
            return json.loads((folder / "metadata.json").read_text())
    raise PredictError(
        f"missing {folders[0] / 'metadata.json'}: a model needs the metadata.json of its export "
        "folder (class names and feature parameters). Copy it beside the model file, or pass the "
        "export folder itself; `python -m tscnn_tf.export` writes both.")


class Model:
    """One loaded artifact (Keras, SavedModel or TFLite) behind a common call."""

    def __init__(self, path):
        path = Path(path)
        if not path.exists():
            raise PredictError(f"no model at {path}")
        self.metadata = find_metadata(path)
        self.class_names = self.metadata["class_names"]
        if path.is_dir():
            saved = path / "saved_model" if (path / "saved_model").is_dir() else path
            if not (saved / "saved_model.pb").is_file():
                raise PredictError(f"{path} holds no SavedModel")
            import tensorflow as tf
            fn = tf.saved_model.load(str(saved)).signatures["serving_default"]
            self.kind = "saved_model"
            self.input_shapes = {k: tuple(v.shape[1:]) for k, v in
                                 fn.structured_input_signature[1].items()}
            self.num_outputs = int(fn.structured_outputs["probabilities"].shape[-1])
            self._run = lambda x: fn(**{k: tf.constant(v) for k, v in x.items()})[
                "probabilities"].numpy()
        elif path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter
            try:
                interpreter = Interpreter(model_path=str(path))
            except ValueError as e:
                raise PredictError(f"unreadable TFLite file {path}: {e}") from e
            runner = interpreter.get_signature_runner("serving_default")
            self.kind = "tflite"
            self.input_shapes = {k: tuple(v["shape"][1:]) for k, v in
                                 runner.get_input_details().items()}
            self.num_outputs = int(runner.get_output_details()["probabilities"]["shape"][-1])
            self._run = lambda x: runner(**x)["probabilities"]
        elif path.suffix == ".keras":
            import keras
            try:
                model = keras.saving.load_model(path, compile=False)
            except (OSError, ValueError) as e:
                raise PredictError(f"unreadable Keras model {path}: {e}") from e
            self.kind = "keras"
            self.input_shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
            self.num_outputs = int(model.outputs[0].shape[-1])
            self._run = lambda x: model.predict(x, verbose=0)
        else:
            raise PredictError(f"{path}: expected an export folder, a .keras or a .tflite file")
        if self.num_outputs != len(self.class_names):
            raise PredictError(
                f"{path} has {self.num_outputs} outputs but its metadata.json names "
                f"{len(self.class_names)} classes {self.class_names}: the model and the metadata "
                "come from different exports")

    def check(self, features: dict) -> None:
        """Refuse features whose shapes differ from the model's inputs (e.g. another n)."""
        for name, shape in self.input_shapes.items():
            have = tuple(np.shape(features[name]))
            if have != tuple(shape):
                raise PredictError(f"the model takes {name} of shape {tuple(shape)}, the features "
                                   f"made with its metadata ({self.metadata['params']}) have "
                                   f"{have}: the metadata does not match the model")

    def __call__(self, features: dict) -> np.ndarray:
        self.check(features)
        inputs = {k: np.asarray(features[k], np.float32)[None] for k in self.input_shapes}
        return np.asarray(self._run(inputs))[0]


def clip_sample(video=None, frames=None, onset=None, offset=None) -> Sample:
    """A Sample for a new clip: a video (0-based frame indices) or a frame folder (the integers
    in the file names). Onset and offset default to the first and last frame."""
    if (video is None) == (frames is None):
        raise PredictError("give exactly one of --video and --frames")
    sample = Sample("predict", "-", Path(video or frames).name, "", -1, 0, 0)
    if frames is not None:
        if not Path(frames).is_dir():
            raise PredictError(f"no frame folder {frames}")
        available = list_frames(frames)
        if not available:
            raise PredictError(f"no image frames in {frames}")
        first, last = min(available), max(available)
    else:
        if not Path(video).is_file():
            raise PredictError(f"no video file {video}")
        count = video_frame_count(video)
        if count == 0:
            raise PredictError(f"unreadable video {video}")
        first, last = 0, count - 1
        sample.video = str(video)
    sample.onset = first if onset is None else onset
    sample.offset = last if offset is None else min(offset, last)
    if sample.offset - sample.onset + 1 < MIN_FRAMES:
        raise PredictError(f"fewer than {MIN_FRAMES} frames between onset {sample.onset} and "
                           f"offset {sample.offset} (the clip has frames {first}..{last})")
    if frames is not None:
        sample.frames = {i: p for i, p in available.items() if sample.onset <= i <= sample.offset}
        if len(sample.frames) < MIN_FRAMES:
            raise PredictError(f"fewer than {MIN_FRAMES} frames between onset {sample.onset} and "
                               f"offset {sample.offset}")
    return sample


def length_warning(sample: Sample) -> str | None:
    """A clip far longer than an expression is not one expression."""
    frames = sample.offset - sample.onset + 1
    fps = video_fps(sample.video) if sample.video else None
    if fps and frames / fps > LONG_CLIP_S:
        return (f"the clip lasts {frames / fps:.1f} s ({frames} frames at {fps:g} fps), longer "
                "than any micro-expression: it is treated as ONE expression. Give --onset and "
                "--offset around the expression.")
    if not fps and frames > LONG_CLIP_FRAMES:
        return (f"the clip has {frames} frames, more than one expression lasts: it is treated as "
                "ONE expression. Give --onset and --offset around the expression.")
    return None


def predict_clip(model: Model, sample: Sample, landmarker=None) -> dict:
    """Run the whole chain on one clip; returns the result and the features it used.

    Frames are read one at a time and only aligned face crops are kept, so memory does not grow
    with the frame size. The result's `warnings` say when the face tracked from the onset was
    lost (a cut, no face on the apex frame) or the clip is far too long for one expression.
    """
    from tscnn_tf import face as face_lib
    from tscnn_tf.features import FeatureConfig, aligned_clip, clip_features, face_track_warnings
    from tscnn_tf.video import ClipError
    config = FeatureConfig(**model.metadata["params"])
    landmarker = landmarker or face_lib.make_landmarker(config.landmarks)
    if (warning := length_warning(sample)) is not None:
        sample.warnings.append(warning)
    try:
        indices, faces, geometry = aligned_clip(sample, config, landmarker, sample.warnings)
        features = clip_features(faces, indices, geometry, config, None, sample.warnings)
    except ClipError as e:
        raise PredictError(f"{e} in {sample.video or sample.clip}") from e
    except face_lib.FaceNotFound as e:
        raise PredictError(f"{e} in {sample.video or sample.clip}") from e
    sample.warnings.extend(face_track_warnings(sample, faces, indices, geometry,
                                               int(features["apex_used"]), landmarker))
    probabilities = model(features)
    best = int(np.argmax(probabilities))
    result = {"label": model.class_names[best],
              "probabilities": {c: float(p) for c, p in zip(model.class_names, probabilities)},
              "onset": int(features["onset"]), "apex": int(features["apex_used"]),
              "offset": int(features["offset"]), "warnings": list(sample.warnings)}
    return {"result": result, "features": features}


def format_result(result: dict) -> str:
    lines = [f"label: {result['label']}",
             f"onset {result['onset']}  apex {result['apex']}  offset {result['offset']}"]
    lines += [f"  {name:<14}{p:.4f}" for name, p in result["probabilities"].items()]
    return "\n".join(lines)


def main(argv):
    del argv
    from absl import flags
    FLAGS = flags.FLAGS
    sample = clip_sample(FLAGS.video, FLAGS.frames, FLAGS.onset, FLAGS.offset)  # before the model
    out = predict_clip(Model(FLAGS.model), sample)
    result, features = out["result"], out["features"]
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if FLAGS.dump_features:
        np.savez(FLAGS.dump_features, **{k: np.asarray(features[k], np.float32)[None]
                                         for k in ("apex_gray", "blocks", "flow")})
    if FLAGS.visualize:
        from tscnn_tf import plots
        title = (f"{result['label']} ({result['probabilities'][result['label']]:.2f})  "
                 f"onset {result['onset']} apex {result['apex']} offset {result['offset']}")
        geometry = features["geometry"]
        plots.write_png(FLAGS.visualize, plots.apex_and_flow_image(
            features["apex_face"], geometry.to_crop(geometry.landmarks), features["flow_raw"],
            title))
    print(json.dumps(result) if FLAGS.json else format_result(result))


def define_flags():
    from absl import flags
    flags.DEFINE_string("model", None, "Export folder (SavedModel), .keras or .tflite file.",
                        required=True)
    flags.DEFINE_string("video", None, "A video file (.mp4, .avi, ...).")
    flags.DEFINE_string("frames", None, "A folder of frames, ordered by the integer in their names.")
    flags.DEFINE_integer("onset", None, "Onset frame (default: the first).")
    flags.DEFINE_integer("offset", None, "Offset frame (default: the last).")
    flags.DEFINE_bool("json", False, "Print one JSON object: label, probabilities, onset, apex, "
                      "offset, warnings.")
    flags.DEFINE_string("visualize", None, "Write the apex face, landmarks, grid and flow to this PNG.")
    flags.DEFINE_string("dump_features", None, "Write the three inputs (batch of 1) to this .npz.")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
