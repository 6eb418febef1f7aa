"""One clip in, the three TSCNN inputs (paper Section II.B) and the LBP-TOP histograms out.

Used by the offline feature stage, prediction on a new clip and spot-then-recognise, so all
share one path: frames -> landmarks -> aligned face crops -> LBP apex spotting -> flow ->
features.

The worker entry points (`init_worker`, `process_sample`) run in spawned feature-stage
processes and must never import TensorFlow (memory, start-up, fork safety): this module and
everything it imports stay TensorFlow-free (guarded by tests/test_experiment.py).
"""
from __future__ import annotations

import signal

import cv2
import numpy as np

from tscnn_tf import apex as apex_lib
from tscnn_tf import face as face_lib
from tscnn_tf import flow as flow_lib
from tscnn_tf import lbptop as lbptop_lib
from tscnn_tf.config import FeatureConfig  # noqa: F401 (re-exported)
from tscnn_tf.databases.base import Sample
from tscnn_tf.video import ClipError, check_frames, iter_frames, read_frame

CUT_LEVEL = 30.0       # mean |Δ| grey levels between consecutive face crops that marks a cut
CUT_FACTOR = 6.0       # ... and how many times the clip's median frame difference it must be
FACE_MOVED = 0.35      # landmark shift, in eye distances, that says the tracked face was lost

INPUT_SIZE = 48


def to_unit(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def apex_gray(face: np.ndarray) -> np.ndarray:
    """The static-spatial input: the apex face at 48 x 48 x 1 in [0, 1]."""
    small = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return to_unit(small)[..., None]


def block_stack(face: np.ndarray, n: int) -> np.ndarray:
    """The local-spatial input: face scaled to 48n x 48n, split into n x n blocks stacked as
    48 x 48 x n² channels in row-major order (channel r*n + c is block row r, column c)."""
    size = INPUT_SIZE * n
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA if face.shape[0] > size
                     else cv2.INTER_LINEAR)
    blocks = big.reshape(n, INPUT_SIZE, n, INPUT_SIZE).transpose(1, 3, 0, 2)
    return to_unit(blocks.reshape(INPUT_SIZE, INPUT_SIZE, n * n))


def flow_features(onset: np.ndarray, apex: np.ndarray, offset: np.ndarray,
                  method: str, norm: str = "channel") -> tuple[np.ndarray, np.ndarray]:
    """The dynamic-temporal input (eq. 4-5): (normalised 48x48x4, raw 48x48x4 in 48-grid pixels).

    Channels: u, v of onset->apex, then u, v of apex->offset.
    """
    raw = np.concatenate([
        flow_lib.resize_flow(flow_lib.compute_flow(onset, apex, method), INPUT_SIZE),
        flow_lib.resize_flow(flow_lib.compute_flow(apex, offset, method), INPUT_SIZE)], axis=-1)
    return flow_lib.minmax_normalize(raw, norm), raw


def landmarker_for(config: FeatureConfig):
    """The landmark function of the feature settings: backend, face box, detection width."""
    return face_lib.make_landmarker(config.landmarks, config.face_box, config.detect_width)


def find_geometry(frames: list[np.ndarray], landmarker, face_size: int,
                  warnings: list[str]) -> face_lib.FaceGeometry:
    """Landmarks on the onset frame; if no face there, on the middle and last frames."""
    refusal = None
    for position in dict.fromkeys((0, len(frames) // 2, len(frames) - 1)):
        points = landmarker(frames[position])
        if points is not None:
            if position:
                warnings.append(f"no face on the onset frame; landmarks from clip frame {position}")
            return geometry_of(points, landmarker, face_size)
        refusal = refusal or getattr(landmarker, "last_refusal", None)
    raise face_lib.FaceNotFound("no face detected" + (f" ({refusal})" if refusal else ""))


def geometry_of(points: np.ndarray, landmarker, face_size: int) -> face_lib.FaceGeometry:
    """The face geometry of landmarks just found, with the face box they came from."""
    geometry = face_lib.face_geometry(points, face_size)
    geometry.box = getattr(landmarker, "last_box", None)
    geometry.faces = getattr(landmarker, "last_faces", 1) or 1
    return geometry


def align_clip(frames: list[np.ndarray], landmarker, config: FeatureConfig,
               warnings: list[str]) -> tuple[list[np.ndarray], face_lib.FaceGeometry]:
    """Aligned face crops of every frame: one transform per clip, or per frame if configured."""
    geometry = find_geometry(frames, landmarker, config.face_size, warnings)
    faces = []
    for frame in frames:
        if config.per_frame_landmarks:
            points = landmarker(frame)
            if points is not None:
                geometry = geometry_of(points, landmarker, config.face_size)
        faces.append(face_lib.warp_to_face(frame, geometry))
    return faces, geometry


def aligned_clip(sample: Sample, config: FeatureConfig, landmarker, warnings: list[str]
                 ) -> tuple[list[int], list[np.ndarray], face_lib.FaceGeometry]:
    """(indices, aligned face crops, geometry) of onset..offset, reading one frame at a time:
    memory holds the crops, never the clip's full-resolution frames. When the onset frame has no
    face, the clip is read again whole and `find_geometry` tries the middle and last frames."""
    indices, faces, shape, geometry = [], [], None, None
    frames = iter_frames(sample, warnings)
    try:
        for index, frame in frames:
            if shape is None:
                shape = frame.shape
                points = landmarker(frame)
                if points is None:
                    break
                geometry = geometry_of(points, landmarker, config.face_size)
            elif frame.shape != shape:
                raise ClipError("frames of different sizes in one clip")
            elif config.per_frame_landmarks:
                points = landmarker(frame)
                if points is not None:
                    geometry = geometry_of(points, landmarker, config.face_size)
            indices.append(index)
            faces.append(face_lib.warp_to_face(frame, geometry))
    finally:
        frames.close()
    if geometry is None:
        pairs = list(iter_frames(sample, []))  # its warnings were noted in the first pass
        check_frames([frame for _, frame in pairs])
        faces, geometry = align_clip([frame for _, frame in pairs], landmarker, config, warnings)
        indices = [i for i, _ in pairs]
    check_frames(faces)
    if geometry.box in ("border", "frame"):
        warnings.append(f"the detector found no face on the frame itself; landmarks from the "
                        f"{geometry.box} box")
    if geometry.faces > 1:
        warnings.append(f"{geometry.faces} faces on the frame: the landmarks are the largest "
                        "one's, and the result describes that face only")
    return indices, faces, geometry


def clip_features(faces: list[np.ndarray], indices: list[int], geometry: face_lib.FaceGeometry,
                  config: FeatureConfig, given_apex: int | None = None,
                  warnings: list[str] | None = None) -> dict:
    """The three inputs of one clip from its aligned face crops (onset to offset), and the apex
    bookkeeping."""
    warnings = [] if warnings is None else warnings
    histograms = np.stack([apex_lib.block_histograms(f) for f in faces])
    spotted, fd = apex_lib.spot_apex(histograms, config.apex_lambda)
    position = spotted
    if config.apex_source == "given":
        if given_apex is None:
            warnings.append("no apex given; using the spotted apex")
        else:
            position = int(np.argmin(np.abs(np.asarray(indices) - given_apex)))
            if indices[position] != given_apex:
                warnings.append(f"given apex frame {given_apex} unreadable; using {indices[position]}")
    flow, flow_raw = flow_features(faces[0], faces[position], faces[-1], config.flow,
                                   config.flow_norm)
    return {
        "apex_gray": apex_gray(faces[position]),
        "blocks": block_stack(faces[position], config.blocks),
        "flow": flow,
        "flow_raw": flow_raw,
        "onset": indices[0],
        "offset": indices[-1],
        "apex_spotted": indices[spotted],
        "apex_used": indices[position],
        "fd": fd,
        "geometry": geometry,
        "apex_face": faces[position],
    }


def lbptop_field(faces: list[np.ndarray], warnings: list[str]) -> np.ndarray | None:
    """The record field `lbptop`: LBP-TOP histograms (lbptop.py's fixed settings, 5 x 5 blocks)
    of the aligned face crops onset..offset at face_size, as the MEGC2019 baseline describes the
    aligned face. None, with a warning, for a clip LBP-TOP cannot describe (under 9 frames): the
    sample stays for every other model."""
    try:
        return lbptop_lib.lbptop_histograms(np.stack(faces))
    except lbptop_lib.LbpTopError as e:
        warnings.append(f"no LBP-TOP histograms: {e}; this record holds no `lbptop` "
                        "(--model=lbptop_svm refuses these records; every other model uses it)")
        return None


def face_track_warnings(sample: Sample, faces: list[np.ndarray], indices: list[int],
                        geometry: face_lib.FaceGeometry, apex_index: int, landmarker) -> list[str]:
    """What says the one face tracked from the onset was lost: a cut (the face crop changes at
    once), or a face on the apex frame that is missing or far from the tracked landmarks."""
    out = []
    steps = np.array([np.mean(np.abs(a.astype(np.float32) - b))
                      for a, b in zip(faces, faces[1:])])
    if len(steps):
        cuts = np.flatnonzero(steps > max(CUT_LEVEL, CUT_FACTOR * float(np.median(steps))))
        if len(cuts):
            out.append(f"the face crop changes abruptly between frames {indices[cuts[0]]} and "
                       f"{indices[cuts[0] + 1]} ({len(cuts)} such change(s)): a cut or a lost "
                       "face; the result may not describe one face")
    frame = read_frame(sample, apex_index)
    points = None if frame is None else landmarker(frame, face_box="detect")
    if points is None:
        out.append(f"no face found on the apex frame {apex_index}: the crop there may show "
                   "something else than the face tracked from the onset")
    else:
        eye = float(np.linalg.norm(np.subtract(*geometry.landmarks[list(face_lib.INNER_EYE_CORNERS)])))
        shift = float(np.mean(np.linalg.norm(points - geometry.landmarks, axis=1))) / max(eye, 1.0)
        if shift > FACE_MOVED:
            out.append(f"the face on the apex frame {apex_index} lies {shift:.1f} eye distances "
                       "from the face tracked from the onset (head movement, another face or a "
                       "cut): the result may not describe one face")
    return out


def sample_features(sample: Sample, config: FeatureConfig, landmarker) -> dict:
    """Record-ready features of one database sample. Raises ClipError or FaceNotFound."""
    indices, faces, geometry = aligned_clip(sample, config, landmarker, sample.warnings)
    out = clip_features(faces, indices, geometry, config, sample.apex, sample.warnings)
    return {
        "apex_gray": out["apex_gray"], "blocks": out["blocks"],
        "flow": out["flow"], "flow_raw": out["flow_raw"],
        "face_box": out["geometry"].box,
        "label": sample.label, "label_name": sample.label_name, "subject": sample.subject,
        "sample_id": sample.sample_id, "db": sample.db,
        "onset": out["onset"], "offset": out["offset"],
        "apex_given": -1 if sample.apex is None else sample.apex,
        "apex_spotted": out["apex_spotted"], "apex_used": out["apex_used"],
        "params": config.fingerprint(),
        "lbptop": lbptop_field(faces, sample.warnings),
    }


# Worker-process entry points for the feature stage (no TensorFlow is imported here).
_worker: dict = {}


def init_worker(config: FeatureConfig, worker_process: bool = False) -> None:
    """Load the landmark model once per process; one OpenCV thread per worker process.

    In a worker process Ctrl-C is left to the parent, which stops the pool and reports once.
    """
    if worker_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _worker["config"] = config
    _worker["landmarker"] = landmarker_for(config)


def failure(error: Exception) -> dict:
    """A clip's failure as the manifest records it: {"reason": text, "kind": counting key}."""
    if isinstance(error, face_lib.FaceNotFound):
        return {"reason": str(error), "kind": "no face found"}
    if isinstance(error, ClipError):
        return {"reason": str(error), "kind": "unreadable clip"}
    return {"reason": f"{type(error).__name__}: {error}",
            "kind": f"unexpected error ({type(error).__name__})"}


def process_sample(sample: Sample) -> tuple[Sample, dict | None, dict | None]:
    """(sample, features, None), or (sample, None, failure(error)) when the clip fails."""
    try:
        return sample, sample_features(sample, _worker["config"], _worker["landmarker"]), None
    except Exception as e:  # noqa: BLE001 - one bad clip must not end the run; the reason is kept
        return sample, None, failure(e)
