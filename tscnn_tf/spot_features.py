"""The learned spotter's input: the motion of the aligned face, pooled over facial regions, at
a fixed rate (`rate`, 20 samples a second by default) whatever the input's frame rate.

Every input frame moves the face follower (`tracking.FaceTracker`); at each sample time the
face is cut out aligned (`face.warp_to_face` at CROP px) and compared with the previous
sample's crop: DIS optical flow, its mean per region, the nose ridge's mean taken from every
region (what is left of the head's motion after the alignment), and the mean absolute grey
change per region (folds and shading that flow misses), the face's mean change taken out
(lighting). Per sample, in pixels of the 144-px crop of the feature stage:

- `step`: each region's displacement since the previous sample (dx, dy), as a velocity times
  the sample period (input frames need not fall on sample times);
- `micro` and `macro`: each region's displacement summed over the micro (0.1 s) and macro
  (0.5 s) time scales (dx, dy and its length);
- `change`: the grey change per region at both scales;
- `head`: the nose ridge's own displacement since the previous sample and the tracker's
  rigid motion (how much the head moves: the model learns to discount it);
- `visible`: 1 where the face was followed, 0 in a gap (a hand, a turn): the other features
  are 0 there.

So the spotter sees motion, never the face's appearance: what it learns on rendered faces is
what it reads on real ones. An input slower than `rate` frames per second is refused
(`RateError`): it cannot give a sample at every sample time.
"""
from __future__ import annotations

import collections
import dataclasses

import cv2
import numpy as np

from tscnn_tf import face as face_lib
from tscnn_tf.errors import ToolkitError
from tscnn_tf.tracking import FaceTracker, TrackConfig

# Facial regions as (x0, y0, x1, y1) fractions of the aligned crop (the 6x6 grid: the inner eye
# corners at y = 1/3 and x = 1/3, 2/3, the base of the nose at y = 2/3).
REGIONS = {
    "brow_left": (0.00, 0.05, 0.45, 0.28), "brow_right": (0.55, 0.05, 1.00, 0.28),
    "eye_left": (0.03, 0.26, 0.35, 0.42), "eye_right": (0.65, 0.26, 0.97, 0.42),
    "nose": (0.38, 0.30, 0.62, 0.66),
    "cheek_left": (0.05, 0.45, 0.33, 0.70), "cheek_right": (0.67, 0.45, 0.95, 0.70),
    "mouth_left": (0.20, 0.70, 0.50, 0.92), "mouth_right": (0.50, 0.70, 0.80, 0.92),
    "chin": (0.30, 0.90, 0.70, 1.00),
}
NOSE = list(REGIONS).index("nose")
CROP = 64          # side of the crop the flow runs on
UNIT = 144 / CROP  # its pixels in the 144-px crop's


class RateError(ToolkitError):
    """An input whose frame rate the spotter cannot use."""


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """What the features depend on (an exported spotter records them)."""

    rate: float = 20.0      # samples a second
    micro_s: float = 0.1    # the micro time scale
    macro_s: float = 0.5    # the macro time scale

    @property
    def micro(self) -> int:
        return max(1, round(self.micro_s * self.rate))

    @property
    def macro(self) -> int:
        return max(self.micro + 1, round(self.macro_s * self.rate))


def feature_names() -> list[str]:
    """The names of the feature columns, in order."""
    regions = list(REGIONS)
    names = [f"step_{r}_{a}" for r in regions for a in ("dx", "dy")]
    for scale in ("micro", "macro"):
        names += [f"{scale}_{r}_{a}" for r in regions for a in ("dx", "dy", "len")]
        names += [f"{scale}_{r}_change" for r in regions]
    return names + ["head_dx", "head_dy", "head_rigid", "visible"]


NUM_FEATURES = len(feature_names())


def mirror_index() -> tuple[np.ndarray, np.ndarray]:
    """(order, sign) that mirror a feature row left to right: features[:, order] * sign swaps
    the left and right regions and turns every dx round (training's mirror augmentation)."""
    names = feature_names()
    swapped = [n.replace("_left", "_LEFT").replace("_right", "_left").replace("_LEFT", "_right")
               for n in names]
    order = np.array([names.index(n) for n in swapped])
    sign = np.array([-1.0 if n.endswith("_dx") else 1.0 for n in names], np.float32)
    return order, sign


def region_weights(size: int = CROP) -> np.ndarray:
    """(regions, size*size) row-normalised masks: a crop's flattened values -> region means."""
    out = np.zeros((len(REGIONS), size, size), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(REGIONS.values()):
        out[i, int(y0 * size):max(int(y1 * size), int(y0 * size) + 1),
            int(x0 * size):max(int(x1 * size), int(x0 * size) + 1)] = 1
    out = out.reshape(len(REGIONS), -1)
    return out / out.sum(axis=1, keepdims=True)


def check_rate(fps: float, settings: FeatureSettings, what: str = "the input") -> None:
    """Refuse an input slower than the spotter's sample rate."""
    if fps < settings.rate * 0.999:
        raise RateError(f"{what} has {fps:g} frames/s; the learned spotter samples the face "
                        f"{settings.rate:g} times a second and needs at least that many frames "
                        "a second (a micro-expression lasts 0.2-0.5 s)")


class MotionFeatures:
    """Feed every frame with `push(index, gray)`; it returns the samples completed at that
    frame, each (sample number, frame index, features). `tracker.restarts` and `gaps` say
    where the face was lost."""

    def __init__(self, fps: float, settings: FeatureSettings = FeatureSettings(),
                 landmarker=None, frame_of=None, keep_crops: int = 0, face_size: int = 144):
        check_rate(fps, settings)
        self.fps, self.settings = fps, settings
        self.tracker = FaceTracker(fps, landmarker, TrackConfig(face_size=face_size),
                                   frame_of=frame_of)
        self.weights = region_weights()
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.next_sample = 0      # the sample whose time comes next
        self.previous = None      # (time, crop as float32, affine) of the last visible sample
        self.steps = collections.deque(maxlen=settings.macro)     # region (dx, dy) per sample
        self.crops = collections.deque(maxlen=settings.macro + 1)  # crops for `change`
        self.seen = 0             # frames with the face followed
        self.keep = collections.deque(maxlen=keep_crops) if keep_crops else None
        self.geometry = None

    def push(self, index: int, gray: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        # Every frame moves the follower: followed only from sample to sample, a fast smile's
        # onset left too few points moving together (a gap, measured on the real 2.4-s smile).
        time = index / self.fps
        geometry = self.tracker.update(index, gray)
        if geometry is not None:
            self.seen += 1
            self.geometry = geometry
            if self.keep is not None:
                self.keep.append((index, face_lib.warp_to_face(gray, geometry)))
        if self.tracker.restarted:
            self.previous = None
            self.steps.clear()
            self.crops.clear()
        out = []
        while self.next_sample / self.settings.rate <= time + 0.5 / self.fps:
            out.append((self.next_sample, index, self._sample(time, gray, geometry)))
            self.next_sample += 1
        return out

    def _sample(self, time: float, gray, geometry) -> np.ndarray:
        features = np.zeros(NUM_FEATURES, np.float32)
        if geometry is None:
            self.steps.append(np.zeros((len(REGIONS), 2), np.float32))
            self.previous = None  # no flow across a gap: the face may have moved meanwhile
            return features  # a gap: visible 0
        small = face_lib.FaceGeometry(geometry.landmarks, geometry.R, geometry.center,
                                      geometry.origin, geometry.block_size,
                                      geometry.affine * (CROP / geometry.face_size), CROP)
        crop = face_lib.warp_to_face(gray, small).astype(np.float32)
        step = np.zeros((len(REGIONS), 2), np.float32)
        head = np.zeros(3, np.float32)
        if self.previous is not None:
            before, earlier, affine = self.previous
            flow = self.flow.calc(earlier.astype(np.uint8), crop.astype(np.uint8), None)
            means = self.weights @ flow.reshape(-1, 2)
            per_sample = 1.0 / (self.settings.rate * max(time - before, 1e-6))
            step = (means - means[NOSE]) * UNIT * per_sample
            # The tracker's rigid motion between the samples, in crop pixels per sample.
            rigid = np.abs(small.affine[:, 2] - affine[:, 2]).sum() * UNIT * per_sample
            head = np.array([*(means[NOSE] * UNIT * per_sample), rigid], np.float32)
        self.previous = (time, crop, small.affine)
        self.steps.append(step)
        self.crops.append(crop)
        steps = np.asarray(self.steps)
        parts = [step.ravel()]
        for span in (self.settings.micro, self.settings.macro):
            moved = steps[-span:].sum(axis=0)
            parts.append(np.concatenate([moved, np.linalg.norm(moved, axis=1, keepdims=True)],
                                        axis=1).ravel())
            reference = self.crops[max(0, len(self.crops) - 1 - span)]
            change = self.weights @ np.abs(crop - reference).ravel()
            parts.append(change - change.mean())
        parts += [head, np.ones(1, np.float32)]
        return np.concatenate(parts).astype(np.float32)

    def crops_between(self, onset: int, offset: int):
        """(indices, 144-px crops) of onset..offset kept for recognition (`keep_crops`)."""
        pairs = [(i, c) for i, c in (self.keep or ()) if onset <= i <= offset]
        return [i for i, _ in pairs], [c for _, c in pairs]


def video_features(stream, settings: FeatureSettings = FeatureSettings(), landmarker=None,
                   frame_of=None) -> dict:
    """Every sample of a stream ((index, grey frame) pairs; `stream.fps`): `features`
    (samples, NUM_FEATURES), `frames` (the input frame index of each sample), `fps`, the
    tracker's `restarts` and `gaps`, `frames_read` and `frames_with_face`."""
    extractor = MotionFeatures(stream.fps, settings, landmarker, frame_of)
    rows, frames, count = [], [], 0
    for index, gray in stream:
        count += 1
        for _, frame, features in extractor.push(index, gray):
            rows.append(features)
            frames.append(frame)
    return {"features": np.asarray(rows, np.float32).reshape(-1, NUM_FEATURES),
            "frames": np.asarray(frames, np.int64), "fps": float(stream.fps),
            "restarts": list(extractor.tracker.restarts), "gaps": list(extractor.tracker.gaps),
            "frames_read": count, "frames_with_face": extractor.seen}
