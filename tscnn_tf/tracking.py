"""Following a face through a frame stream, frame by frame, for spotting.

The face is detected once (dlib's detector and 5-point model: the eye corners and the base of
the nose, all that eq. 1-2 and the grid need). From then on its rigid motion is followed in
every frame: points on the parts of the face that expressions barely move (the nose ridge and
the bridge between the eyes, the upper forehead, the sides of the face at the nose's height)
are tracked with pyramidal Lucas-Kanade, checked forwards and backwards, and a similarity
transform (translation, rotation, scale) fitted to them with RANSAC moves the landmarks. So
the aligned crop (`face.warp_to_face`) follows the head in every frame and head moves never
restart anything.

Every `redetect_s` the detector runs again. Its disagreement with the followed face (tracking
drift, landmark jitter) is taken out gradually over `correct_s`, slower than any expression, so
the crop never jumps and nothing restarts. Where the tracked points stop moving together (a
hand over the face, a turn), the face is hidden: for at most `max_gap_s` that is a gap, and the
same segment goes on where a detection finds it again. Longer, or a change of frame size,
restarts.
`restarts` lists each restart with its frame and reason.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from tscnn_tf import face as face_lib

# Stable parts of the face in the aligned crop, as (x0, y0, x1, y1) fractions of its side. The
# crop covers the 6x6 grid: the inner eye corners at y = 1/3, the base of the nose at y = 2/3,
# the corners at x = 1/3 and 2/3 (face.face_geometry).
STABLE_REGIONS = ((0.40, 0.28, 0.60, 0.66),   # nose ridge and the bridge between the eyes
                  (0.15, 0.00, 0.85, 0.07),   # upper forehead
                  (0.00, 0.42, 0.10, 0.66),   # sides of the face at the nose's height
                  (0.90, 0.42, 1.00, 0.66))
ANCHORS = list(face_lib.FIVE_POINTS)
# Frames are searched for the face at the edge path's width (4x fewer pixels at 640).
DETECT_WIDTH = face_lib.EDGE_DETECT_WIDTH


def detect_face(landmarker, gray: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the largest face: the detector on a frame scaled to DETECT_WIDTH (a
    detection at 640x480 costs ~100 ms, a tenth of a second of a 200-fps stream), the
    landmarks on the full frame."""
    scale = face_lib.detect_scale(gray.shape[1], DETECT_WIDTH)
    if scale >= 1 or not hasattr(landmarker, "detect_box"):
        return landmarker(gray, face_box="detect")
    return landmarker.detect_box(gray, scale)


@dataclasses.dataclass(frozen=True)
class TrackConfig:
    """Settings of the face follower."""

    face_size: int = 144        # side of the aligned crop (the feature stage's)
    redetect_s: float = 2.0     # seconds between detections that check the tracking
    correct_s: float = 0.5      # a drift found at a detection is taken out over this long
    max_gap_s: float = 1.0      # a face hidden this long or less is a gap, not a restart
    search_s: float = 0.1       # while no face is followed, a detection this often
    points: int = 40            # points tracked on the stable regions
    track_eye_px: float = 20.0  # tracked at 1/2, 1/4 ... of the frame while the eyes stay this far
    min_points: int = 8         # fewer inliers: the face is hidden this frame
    reanchor: float = 0.35      # a detection this far (eye distances) is counted in `corrections`
    min_inliers: float = 0.6    # share of the tracked points the motion must fit (else hidden)


def _region_mask(geometry: face_lib.FaceGeometry, shape) -> np.ndarray:
    """The stable regions of the crop, in frame pixels (uint8 mask)."""
    size = geometry.face_size
    inverse = cv2.invertAffineTransform(geometry.affine)
    crop = np.zeros((size, size), np.uint8)
    for x0, y0, x1, y1 in STABLE_REGIONS:
        crop[int(y0 * size):int(y1 * size), int(x0 * size):int(x1 * size)] = 255
    return cv2.warpAffine(crop, inverse, (shape[1], shape[0]), flags=cv2.INTER_NEAREST)


class FaceTracker:
    """`update(index, gray)` -> the face's geometry in that frame (None while no face is
    followed). `restarts` ({frame, reason}) and `gaps` ({frame, frames}) say what happened."""

    def __init__(self, fps: float, landmarker=None, config: TrackConfig = TrackConfig(),
                 frame_of=None):
        self.fps, self.config = fps, config
        self.landmarker = landmarker or face_lib.make_landmarker("dlib5", "detect")
        self.frame_of = frame_of or (lambda i: i)
        self.points = None         # (n, 1, 2) float32, tracked in the previous frame
        self.landmarks = None      # (68, 2): the anchors followed (NaN elsewhere for dlib5)
        self.correction = None     # (offset per frame, frames left) towards a detection
        self.previous = None       # the previous frame (grey)
        self.last_detection = -10 ** 9
        self.hidden_since = None   # first frame of the current gap
        self.hidden = False        # the face followed so far is not seen in this frame
        self.restarts: list[dict] = []
        self.gaps: list[dict] = []
        self.corrections: list[dict] = []  # detections far from the followed face
        self.segment_started = False  # a face has been followed since the last restart
        self.shape = None
        self.scale = 1.0           # the tracking frames' scale (set when a face is anchored)
        self.small = None          # this frame at that scale

    # -- public ---------------------------------------------------------------------------
    def update(self, index: int, gray: np.ndarray):
        """The geometry of the face in this frame, or None (no face yet, or hidden: a gap).
        `self.restarted` is True when this frame starts a new segment (after a restart)."""
        self.restarted = False
        if self.shape is not None and gray.shape != self.shape:
            self._restart(index, f"frame size changed from {self.shape[1]}x{self.shape[0]} to "
                          f"{gray.shape[1]}x{gray.shape[0]} at frame {self.frame_of(index)}")
            self.landmarks = self.points = None
            self.segment_started = self.hidden = False
        self.shape = gray.shape
        self.small = cv2.resize(gray, None, fx=self.scale, fy=self.scale,
                                interpolation=cv2.INTER_AREA) if self.scale < 1 else gray
        if self.landmarks is None:
            geometry = self._search(index, gray)
        else:
            geometry = self._track(index, gray)
        self.previous = self.small
        if geometry is None:
            if self.hidden_since is None and self.segment_started:
                self.hidden_since = index
            if (self.hidden_since is not None and self.segment_started
                    and index - self.hidden_since + 1 > self.config.max_gap_s * self.fps):
                self._restart(self.hidden_since, f"face lost at frame "
                          f"{self.frame_of(self.hidden_since)} for more than "
                          f"{self.config.max_gap_s:g} s")
                self.segment_started = False
                self.landmarks = self.points = None
                self.hidden = False
            return None
        if self.hidden_since is not None:
            self.gaps.append({"frame": self.frame_of(self.hidden_since),
                              "frames": index - self.hidden_since})
            self.hidden_since = None
        if not self.segment_started:
            self.segment_started = True
            self.restarted = True
        return geometry

    # -- internals ------------------------------------------------------------------------
    def _restart(self, index: int, reason: str) -> None:
        if self.segment_started:
            self.restarts.append({"frame": int(self.frame_of(index)), "reason": reason})
        self.hidden_since = None

    def _detect(self, gray):
        """68 landmarks (NaN outside the 5 points for dlib5) of the face: searched first near
        where it is followed (`_detect_near`), else on the whole frame."""
        if self.landmarks is not None and hasattr(self.landmarker, "_detector"):
            found = self._detect_near(gray)
            if found is not None:
                return found
        return detect_face(self.landmarker, gray)

    def _detect_near(self, gray):
        """The detector on the region around the followed face only, scaled so the face is
        about 100 px wide and not upsampled: about a sixth of the pixels of a search of the
        whole frame (a detection at 320 px with dlib's one upsampling). None if not there."""
        anchors = self.landmarks[ANCHORS]
        eye = float(np.linalg.norm(self.landmarks[42] - self.landmarks[39]))
        if not np.isfinite(anchors).all() or eye < 1:
            return None
        center, half = anchors.mean(axis=0), 3.0 * eye  # the face is about 3 eye distances
        h, w = gray.shape
        x0, y0 = int(max(center[0] - half, 0)), int(max(center[1] - half, 0))
        x1, y1 = int(min(center[0] + half, w)), int(min(center[1] + half, h))
        if x1 - x0 < 40 or y1 - y0 < 40:
            return None
        scale = min(1.0, 200.0 / max(x1 - x0, y1 - y0))
        roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_AREA)
        boxes = self.landmarker._detector(roi, 0)
        if not len(boxes):
            return None
        box = max(boxes, key=lambda r: r.width() * r.height())
        rect = self.landmarker._rect(int(box.left() / scale) + x0, int(box.top() / scale) + y0,
                                     int(box.right() / scale) + x0,
                                     int(box.bottom() / scale) + y0)
        return self.landmarker._fit(gray, rect)

    def _look(self, index: int, gray):
        """Landmarks of a detection while the face is not followed (none yet, or hidden), at
        most every `search_s`; None between detections or when none is found."""
        if index - self.last_detection < self.config.search_s * self.fps:
            return None
        self.last_detection = index
        return self._detect(gray)

    def _search(self, index: int, gray):
        """No face followed: detect (at most every `search_s`)."""
        points = self._look(index, gray)
        return None if points is None else self._anchor(points, gray)

    def _anchor(self, points: np.ndarray, gray):
        try:
            geometry = face_lib.face_geometry(points, self.config.face_size)
        except face_lib.FaceNotFound:
            return None
        self.landmarks = np.asarray(points, np.float64)
        self.correction = None
        self.hidden = False
        eye = float(np.linalg.norm(self.landmarks[42] - self.landmarks[39]))
        scale = 1.0
        while eye * scale / 2 >= self.config.track_eye_px and scale > 1 / 8:
            scale /= 2  # halving is the fast path of cv2.resize (INTER_AREA)
        if scale != self.scale:
            self.scale = scale
            self.small = cv2.resize(gray, None, fx=scale, fy=scale,
                                    interpolation=cv2.INTER_AREA) if scale < 1 else gray
        self._seed_points(geometry, gray)
        return geometry

    def _seed_points(self, geometry, gray) -> None:
        mask = _region_mask(geometry, gray.shape)
        if self.scale < 1:
            mask = cv2.resize(mask, self.small.shape[::-1], interpolation=cv2.INTER_NEAREST)
        found = cv2.goodFeaturesToTrack(self.small, self.config.points, 0.005,
                                        max(2.0, self.config.track_eye_px / 10), mask=mask,
                                        blockSize=5)
        # Points are kept in the tracking frames' pixels.
        self.points = found.astype(np.float32) if found is not None else None

    def _track(self, index: int, gray):
        """The face followed into this frame (None: hidden here)."""
        due = index - self.last_detection >= self.config.redetect_s * self.fps
        if self.hidden:  # looking for it again
            detected = self._look(index, gray)
            if detected is None:
                return None
            self.hidden = False
            return self._check_detection(index, detected, gray, always=True)
        trackable = self.points is not None and len(self.points) >= self.config.min_points
        if trackable:
            moved = self._rigid_motion(self.previous, self.small)
            if moved is None:  # the tracked parts vanished (a hand, a turn): hidden
                self.hidden, self.points = True, None
                return None
            matrix, inliers = moved
            matrix = matrix.copy()
            matrix[:, 2] /= self.scale  # the similarity in the full frame's pixels
            self.landmarks = self.landmarks @ matrix[:, :2].T + matrix[:, 2]
            self.points = inliers
        if self.correction is not None:
            step, left = self.correction
            self.landmarks = self.landmarks + step
            self.correction = (step, left - 1) if left > 1 else None
        if due:
            self.last_detection = index
            detected = self._detect(gray)
            if detected is not None:
                return self._check_detection(index, detected, gray)
            if not trackable:  # a face without texture to track is only known by detection
                self.hidden = True
                return None
        geometry = self._geometry()
        if geometry is not None and trackable and len(self.points) < self.config.points // 2:
            self._seed_points(geometry, gray)  # points lost at the image edge or to a hand
        return geometry

    def _geometry(self):
        try:
            return face_lib.face_geometry(self.landmarks, self.config.face_size)
        except face_lib.FaceNotFound:
            return None

    def _check_detection(self, index: int, detected: np.ndarray, gray, always: bool = False):
        """A detection while following: the followed face is moved to it gradually (tracking
        drift and landmark jitter taken out over `correct_s`, so the crop never jumps); found
        again after a gap (`always`), the face is taken where the detection puts it. Neither
        restarts anything: `corrections` counts the detections far from the followed face."""
        eye = max(float(np.linalg.norm(detected[42] - detected[39])), 1.0)
        offset = detected[ANCHORS] - self.landmarks[ANCHORS]
        distance = float(np.mean(np.linalg.norm(offset, axis=1))) / eye
        if distance > self.config.reanchor:
            self.corrections.append({"frame": int(self.frame_of(index)),
                                     "eye_distances": round(distance, 2)})
        full = np.zeros_like(self.landmarks)
        full[ANCHORS] = offset
        if always:
            self.landmarks = self.landmarks + full
            self.correction = None
        else:
            frames = max(1, int(round(self.config.correct_s * self.fps)))
            self.correction = (full / frames, frames)
        geometry = self._geometry()
        if geometry is not None and (always or self.points is None
                                     or len(self.points) < self.config.points // 2):
            self._seed_points(geometry, gray)
        return geometry

    def _rigid_motion(self, previous, gray):
        """(2x3 similarity previous -> gray, the inlier points in gray), or None."""
        params = dict(winSize=(11, 11), maxLevel=2,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        # Forward only: RANSAC below sorts out the points that went astray.
        forward, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, self.points, None, **params)
        good = status.ravel() == 1
        if good.sum() < self.config.min_points:
            return None
        src, dst = self.points[good].reshape(-1, 2), forward[good].reshape(-1, 2)
        matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                      ransacReprojThreshold=0.5)
        # A hand or a turn moving part of the points their own way: hidden, not followed.
        if matrix is None or inliers is None or inliers.sum() < max(
                self.config.min_points, self.config.min_inliers * len(self.points)):
            return None
        return matrix, dst[inliers.ravel() == 1].reshape(-1, 1, 2).astype(np.float32)
