"""The micro-expression of a new clip from an exported or trained model: the library behind
`python -m tscnn_tf.predict` and the bench's clip -> label measurement.

The clip goes through the feature stage's own code (face, landmarks, alignment, apex spotting,
flow, the three inputs), with the parameters in the model's metadata.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tscnn_tf.databases.base import (IMAGE_EXTENSIONS, MIN_FRAMES, Sample, list_frames,
                                     video_fps, video_frame_count)
from tscnn_tf.artifacts import ExportedModel, clip_fields
from tscnn_tf.errors import ToolkitError


class PredictError(ToolkitError):
    """An expected failure (no face, too few frames, unreadable input, mismatched model)."""


LONG_CLIP_S = 2.0        # longer than any micro- or macro-expression
LONG_CLIP_FRAMES = 400   # the same without a frame rate (2 s at 200 fps)
# The 99th percentile of the flow magnitude (both fields, pixels of the 48-px grid) below which
# a clip holds no expression: identical frames give 0, a still face with sensor noise (sigma 2
# grey levels) 0.035 (tvl1) / 0.032 (dis), the weakest synthetic expression 0.094 / 0.121, and
# the shared real video 3.6 at least (docs/bad-input.md).
MOTION_FLOOR_PX = 0.05


Model = ExportedModel  # the name earlier releases documented


def load_model(path, metadata: dict | None = None) -> ExportedModel:
    """An exported model (folder, `.keras` or `.tflite`) of any registry model: a `.keras`
    file of the flow models holds this package's layers, registered here first."""
    import tscnn_tf.models.layers  # noqa: F401
    folder = Path(path)
    try:
        spotter = json.loads((folder / "metadata.json").read_text()).get("task") == "spotting"
    except (OSError, ValueError, AttributeError):
        spotter = False
    if spotter:
        from tscnn_tf.artifacts import ArtifactError
        raise ArtifactError(f"{folder} is a learned spotter's export (train --task=spotting), "
                            "not a clip model: give it to spot as --spotter")
    return ExportedModel(path, metadata)


def check_model_inputs(model: Model) -> Model:
    """Refuse, before any clip is read, a model whose inputs the clip path cannot make."""
    model.require(clip_fields(), "the clip path of predict and spot")
    return model


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
        if Path(video).suffix.lower() in IMAGE_EXTENSIONS:
            raise PredictError(f"{video} is a still image, not a video: give a video file, or "
                               "a folder of frames with --frames")
        count = video_frame_count(video)
        if count == 0:
            raise PredictError(f"unreadable video {video}")
        first, last = 0, count - 1
        sample.video = str(video)
    if onset is not None and not first <= onset <= last:
        raise PredictError(f"--onset={onset} is outside the clip, whose frames are "
                           f"{first}..{last}")
    if offset is not None and offset < first:
        raise PredictError(f"--offset={offset} is before the clip's first frame {first}")
    sample.onset = first if onset is None else onset
    sample.offset = last if offset is None else min(offset, last)
    if offset is not None and offset > last:
        sample.warnings.append(f"--offset={offset} is after the clip's last frame {last}: the "
                               f"clip is read to frame {last}")
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
                "--offset around the expression, or spot the expressions first: python -m "
                "tscnn_tf.spot --video=... --model=...")
    if not fps and frames > LONG_CLIP_FRAMES:
        return (f"the clip has {frames} frames, more than one expression lasts: it is treated as "
                "ONE expression. Give --onset and --offset around the expression, or spot the "
                "expressions first: python -m tscnn_tf.spot --frames=... --fps=... --model=...")
    return None


def flow_motion(flow_raw) -> float:
    """The 99th percentile of the flow's magnitude over both flow fields, in pixels of the
    48-px grid: what `MOTION_FLOOR_PX` is compared with."""
    flow_raw = np.asarray(flow_raw, np.float32)
    magnitude = np.hypot(flow_raw[..., 0::2], flow_raw[..., 1::2])
    return float(np.percentile(magnitude, 99))


def motion_warning(flow_raw) -> str | None:
    """A clip whose flow is below what any expression makes: its label means nothing."""
    motion = flow_motion(flow_raw)
    if motion >= MOTION_FLOOR_PX:
        return None
    return (f"no motion between onset, apex and offset: the optical flow's magnitude is "
            f"{motion:.3f} px (99th percentile on the 48-px grid), below the {MOTION_FLOOR_PX} "
            "px of the weakest expression measured; the label is a guess on a still face. "
            "Check --onset/--offset, or that the frames are not all the same")


def predict_clip(model: Model, sample: Sample, landmarker=None) -> dict:
    """Run the whole chain on one clip; returns the result and the features it used.

    Frames are read one at a time and only aligned face crops are kept, so memory does not grow
    with the frame size. The result's `warnings` say when the face tracked from the onset was
    lost (a cut, no face on the apex frame) or the clip is far too long for one expression.
    """
    from tscnn_tf import face as face_lib
    from tscnn_tf.features import (FeatureConfig, aligned_clip, clip_features, face_track_warnings,
                                   landmarker_for, lbptop_field)
    from tscnn_tf.video import ClipError
    config = FeatureConfig(**model.metadata["params"])
    landmarker = landmarker or landmarker_for(config)
    if (warning := length_warning(sample)) is not None:
        sample.warnings.append(warning)
    try:
        indices, faces, geometry = aligned_clip(sample, config, landmarker, sample.warnings)
        features = clip_features(faces, indices, geometry, config, None, sample.warnings)
        if "lbptop" in model.input_shapes:
            features["lbptop"] = lbptop_field(faces, sample.warnings)
            if features["lbptop"] is None:
                raise PredictError(f"{sample.warnings[-1]} in {sample.video or sample.clip}")
    except ClipError as e:
        raise PredictError(f"{e} in {sample.video or sample.clip}") from e
    except face_lib.FaceNotFound as e:
        raise PredictError(f"{e} in {sample.video or sample.clip}") from e
    sample.warnings.extend(face_track_warnings(sample, faces, indices, geometry,
                                               int(features["apex_used"]), landmarker))
    if (still := motion_warning(features["flow_raw"])) is not None:
        sample.warnings.append(still)
    probabilities = model(features)
    best = int(np.argmax(probabilities))
    result = {"label": model.class_names[best],
              "probabilities": {c: float(p) for c, p in zip(model.class_names, probabilities)},
              "onset": int(features["onset"]), "apex": int(features["apex_used"]),
              "offset": int(features["offset"]), "warnings": list(sample.warnings)}
    return {"result": result, "features": features, "inputs": list(model.input_shapes)}


def format_result(result: dict) -> str:
    lines = [f"label: {result['label']}",
             f"onset {result['onset']}  apex {result['apex']}  offset {result['offset']}"]
    lines += [f"  {name:<14}{p:.4f}" for name, p in result["probabilities"].items()]
    return "\n".join(lines)
