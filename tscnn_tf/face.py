"""Face stage (paper Section II.A): detection, 68 landmarks, alignment (eq. 1-2), 6x6 grid.

Landmark backends sit behind one call, `landmarker(gray) -> (68, 2) array | None`:
- `dlib` (default): HOG face detector + the 68-point ensemble-of-regression-trees predictor
  (the paper's landmark method [33]) shipped inside `face-recognition-models`; where HOG finds
  nothing on a tight face crop, dlib's CNN (MMOD) detector from the same package must confirm
  that the frame is a face before the frame box is used.
- `face_alignment`: optional (`pip install .[face-alignment]`); downloads its weights.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import cv2
import numpy as np

# 0-based indices in the iBUG 68-point scheme.
INNER_EYE_CORNERS = (39, 42)  # (x1, y1) on the image's left, (x2, y2) on its right
NASAL_SPINE = 33              # subnasale, the base of the nose
GRID = 6                      # the paper's 6x6 blocks


class FaceNotFound(Exception):
    """No face (or no plausible landmarks) in a frame."""


# Where dlib's 5-point model's points sit in the 68-point scheme: the eye corners and the base
# of the nose, which is all eq. 1-2 and the grid use (39, 42, 33).
FIVE_POINTS = (45, 42, 36, 39, 33)


def predictor_path(name: str = "shape_predictor_68_face_landmarks.dat") -> str:
    """Path of an ERT model inside `face-recognition-models`, without importing it."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face-recognition-models is not installed: pip install face-recognition-models")
    path = os.path.join(spec.submodule_search_locations[0], "models", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} missing from face-recognition-models: {path}")
    return path


FACE_BOXES = ("auto", "detect", "frame")
# The frame box is only tried on frames shaped like the face crops of the cropped releases
# (CASME II, SMIC, SAMM: at most a few hundred pixels, near square) that are not flat.
FRAME_BOX_MAX_SIDE = 400
FRAME_BOX_ASPECT = (0.7, 1.45)
FRAME_BOX_MIN_STD = 8.0
# The smallest detected face read: the HOG detector's own window (80 x 80 px; it finds smaller
# faces only by upsampling). Below it the 6 x 6 grid's blocks hold a few pixels each, and such
# faces come from scenes (a crowd at 50 px a face), not from a recording of a face. Tight crops
# smaller than this still pass through the frame box, where the CNN detector confirms them.
MIN_FACE_PX = 80
# Where the HOG detector puts its box on a tight crop (eyebrows at the top edge, chin at the
# bottom) when it finds the face: the median over 40 synthetic crops, as fractions of the crop
# (left, top, right, bottom). The predictor is started from this box rather than from the bare
# frame, whose larger, lower box it was not trained on (measured: `tscnn_tf.bench`, face box).
FRAME_BOX = (0.07, -0.12, 0.90, 0.80)
# The frame box is used only where dlib's CNN (MMOD) face detector confirms that the frame IS a
# face: on the frame scaled to VERIFY_SIDE px (shorter side), without upsampling, it must find a
# face whose box overlaps the frame box by VERIFY_IOU (intersection over union) or more. At that
# scale a tight crop's face (about 100 px) is above the detector's smallest face (about 80 px),
# and the faces of a crowd, or any face that does not fill the frame, are below it or elsewhere.
# A frame it does not confirm there is tried once more at its own size (at most VERIFY_SIDE_MAX),
# the size at which the detector was measured on real tight crops, so no real crop is lost to
# the rescaling; the IoU test still refuses faces that do not fill the frame.
CNN_MODEL = "mmod_human_face_detector.dat"
# The edge path's detection width (`--detect_width`): the HOG detector (with its one upsampling)
# finds faces down to about 40 px at the width it runs, so at 320 px on a 640-px-wide frame it
# still finds every face of MIN_FACE_PX; narrower would lose faces the full frame keeps.
EDGE_DETECT_WIDTH = 320
VERIFY_SIDE = 128
VERIFY_SIDE_MAX = 256
VERIFY_IOU = 0.4


def detect_scale(width: int, detect_width: int | None) -> float:
    """The factor the face detector's frame is resized by: to `detect_width` px wide when the
    frame is wider, never up (0 or None: the frame's own size)."""
    return detect_width / width if detect_width and width > detect_width else 1.0


def frame_is_face_crop(gray: np.ndarray) -> bool:
    h, w = gray.shape[:2]
    return (max(h, w) <= FRAME_BOX_MAX_SIDE and FRAME_BOX_ASPECT[0] <= w / h <= FRAME_BOX_ASPECT[1]
            and float(gray.std()) >= FRAME_BOX_MIN_STD)


@functools.lru_cache(maxsize=1)
def cnn_detector():
    """dlib's CNN (MMOD) face detector from `face-recognition-models`, loaded once per process
    on first use (0.7 MB; it runs on the CPU)."""
    import dlib
    return dlib.cnn_face_detection_model_v1(predictor_path(CNN_MODEL))


def box_iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def frame_shows_a_face(gray: np.ndarray) -> bool:
    """Whether the CNN detector finds a face filling the frame as a tight face crop's does
    (overlapping FRAME_BOX): the check before the frame box is trusted. Tried with the shorter
    side at VERIFY_SIDE, then (where the frame is larger) at its own size up to
    VERIFY_SIDE_MAX, where the detector was measured on real crops (60 of 60 at 224 px)."""
    shorter = min(gray.shape[:2])
    sides = [VERIFY_SIDE] + ([min(shorter, VERIFY_SIDE_MAX)] if shorter > VERIFY_SIDE else [])
    return any(_cnn_confirms(gray, side) for side in sides)


def _cnn_confirms(gray: np.ndarray, side: int) -> bool:
    h, w = gray.shape[:2]
    scale = side / min(h, w)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    size = np.array(small.shape[1::-1] * 2, dtype=np.float64)
    frame_box = np.array(FRAME_BOX) * size
    return any(box_iou((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), frame_box)
               >= VERIFY_IOU for d in cnn_detector()(small, 0))


class DlibLandmarker:
    """dlib HOG detector + 68-point ERT predictor. Picks the largest face.

    `face_box` says where the predictor's box comes from: `detect`, the detector (on the frame,
    then with a replicated border, which brings back most tight crops); `frame`, the box the
    detector puts on a tight crop (the frame IS the face, as in the cropped releases); `auto`,
    the detector, then the border, then the frame box for frames shaped like a face crop. The
    frame box, forced or not, is used only where `frame_shows_a_face` confirms it: never on
    noise, a wall or a crowd. After each call `last_box` says which was used: detector, border,
    frame or None, `last_faces` how many faces the detector found, and `last_refusal` why
    the frame box was not used (or None). With `detect_width`, the detector runs on the frame
    (and the bordered frame) scaled down to that width, never up; its box is scaled back and
    the predictor fits on the full frame, and MIN_FACE_PX holds in the full frame's pixels.
    """

    MODEL = "shape_predictor_68_face_landmarks.dat"

    def __init__(self, face_box: str = "auto", detect_width: int | None = 0):
        import dlib
        if face_box not in FACE_BOXES:
            raise ValueError(f"face_box must be one of {FACE_BOXES}, got {face_box!r}")
        self.face_box, self.detect_width = face_box, detect_width
        self.last_box = self.last_refusal = None
        self.last_faces = 0
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(predictor_path(self.MODEL))
        self._rect = dlib.rectangle

    def _frame_box(self, gray: np.ndarray):
        h, w = gray.shape[:2]
        left, top, right, bottom = FRAME_BOX
        return self._rect(int(round(left * w)), int(round(top * h)), int(round(right * w)),
                          int(round(bottom * h)))

    def _frame_fit(self, gray: np.ndarray) -> np.ndarray | None:
        """Landmarks from the frame box where the CNN detector confirms the face, else None."""
        if not frame_shows_a_face(gray):
            refusal = ("the frame box was refused: dlib's CNN face detector finds no face "
                       "filling the frame")
            self.last_refusal = f"{self.last_refusal}; {refusal}" if self.last_refusal else refusal
            return None
        self.last_box, self.last_faces = "frame", 1
        return self._fit(gray, self._frame_box(gray))

    def _fit(self, gray: np.ndarray, box) -> np.ndarray:
        shape = self._predictor(gray, box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def detect_box(self, gray: np.ndarray, scale: float) -> np.ndarray | None:
        """Landmarks of the largest face found by the detector on the frame resized by `scale`
        (faster on large frames), fitted on the full frame; None without a face."""
        self.last_box = self.last_refusal = None
        face = self._detect(gray, scale)
        if face is None:
            return None
        self.last_box = "detector"
        return self._fit(gray, face)

    def _detect(self, gray: np.ndarray, scale: float = 1.0):
        """The largest big-enough face the detector finds on `gray` resized by `scale` (< 1:
        faster), as a box in `gray`'s own pixels, where the predictor fits; else None."""
        if scale >= 1:
            return self._largest(self._detector(gray, 1))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return self._largest([self._rect(int(r.left() / scale), int(r.top() / scale),
                                         int(r.right() / scale), int(r.bottom() / scale))
                              for r in self._detector(small, 1)])

    def _largest(self, faces):
        """The largest detected face if it is big enough to read a micro-expression from (in
        the frame's own pixels), else None, with the reason in `last_refusal`."""
        self.last_faces = len(faces)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        if face.width() >= MIN_FACE_PX:
            return face
        self.last_refusal = (f"the largest face found is {face.width()} px wide; "
                             f"micro-expressions need a face of at least {MIN_FACE_PX} px")
        return None

    def __call__(self, gray: np.ndarray, face_box: str | None = None) -> np.ndarray | None:
        """68 landmarks of the largest face, or None; `face_box` overrides the instance's."""
        face_box = face_box or self.face_box
        self.last_box = self.last_refusal = None
        self.last_faces = 0
        if face_box == "frame":
            return self._frame_fit(gray)
        scale = detect_scale(gray.shape[1], self.detect_width)
        face = self._detect(gray, scale)
        if face is not None:
            self.last_box = "detector"
            return self._fit(gray, face)
        # Tightly cropped faces (the databases' "cropped" releases) lack the context the HOG
        # window needs; a replicated border usually brings the detection back.
        pad = max(gray.shape) // 4
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        face = self._detect(padded, scale)
        if face is not None:
            self.last_box = "border"
            return self._fit(padded, face) - pad
        if face_box == "auto" and frame_is_face_crop(gray):
            return self._frame_fit(gray)
        return None


class DlibFivePointLandmarker(DlibLandmarker):
    """The detector with dlib's 5-point predictor (eye corners, base of the nose): the points
    the alignment and grid need, from a model that loads 10x faster (9 MB, not 100 MB), for
    spotting, where start-up counts. Returns a (68, 2) array, NaN outside FIVE_POINTS."""

    MODEL = "shape_predictor_5_face_landmarks.dat"

    def _fit(self, gray: np.ndarray, box) -> np.ndarray:
        out = np.full((68, 2), np.nan)
        out[list(FIVE_POINTS)] = super()._fit(gray, box)
        return out


class FaceAlignmentLandmarker:
    """The `face-alignment` package (2D FAN). Optional: its weights come from the internet."""

    def __init__(self):
        try:
            import face_alignment
        except ImportError as e:
            raise ImportError("the face_alignment landmark backend needs `pip install .[face-alignment]`;"
                              " the default backend `--landmarks=dlib` needs nothing else") from e
        try:
            self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device="cpu")
        except Exception as e:  # noqa: BLE001 - any failure here is a missing or unreachable weight file
            raise RuntimeError(f"face_alignment could not load its weights ({e}); they are downloaded on "
                               "first use. Use the default backend `--landmarks=dlib`, which ships "
                               "its model inside face-recognition-models.") from e

    def __call__(self, gray: np.ndarray, face_box: str | None = None) -> np.ndarray | None:
        found = self._fa.get_landmarks_from_image(np.dstack([gray] * 3))
        return None if not found else np.asarray(found[0], dtype=np.float64)[:, :2]


LANDMARKERS = {"dlib": DlibLandmarker, "dlib5": DlibFivePointLandmarker,
               "face_alignment": FaceAlignmentLandmarker}


def make_landmarker(backend: str = "dlib", face_box: str = "detect",
                    detect_width: int | None = 0):
    """A landmark function for `backend` (`dlib` or `face_alignment`); dlib only: `face_box`,
    detect, auto or frame (see DlibLandmarker), and `detect_width`, the width the face detector
    runs at (0 or None: the frame's own; the landmarks are always fitted on the full frame)."""
    if backend not in LANDMARKERS:
        raise ValueError(f"unknown landmark backend {backend!r}; choose from {sorted(LANDMARKERS)}")
    if backend.startswith("dlib"):
        return LANDMARKERS[backend](face_box, detect_width)
    return LANDMARKERS[backend]()


def rotation_matrix(p1, p2) -> np.ndarray:
    """Eq. 1: R from the inner eye corners (x1, y1), (x2, y2)."""
    (x1, y1), (x2, y2) = p1, p2
    d = np.hypot(x2 - x1, y2 - y1)
    return np.array([[x2 - x1, y1 - y2], [y2 - y1, x2 - x1]]) / d


def align_points(points: np.ndarray, R: np.ndarray, center) -> np.ndarray:
    """Eq. 2 about `center`: R^T applied to each point as a column vector, i.e. (x, y)·R.

    This levels the eye line. Reading eq. 2's `(x, y)R^T` with row vectors would rotate the
    other way and double the tilt.
    """
    center = np.asarray(center, dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) - center) @ R + center


@dataclasses.dataclass
class FaceGeometry:
    """Alignment and grid of one clip, and the affine that maps a frame onto the face crop."""

    landmarks: np.ndarray  # (68, 2) in the frame
    R: np.ndarray          # eq. 1
    center: np.ndarray     # rotation centre: midpoint of the inner eye corners
    origin: np.ndarray     # grid's top-left corner (2x'1 - x'2, 2y'1 - y'3), aligned coordinates
    block_size: np.ndarray  # (w, h) = ((x'2 - x'1)/2, (y'3 - y'1)/2)
    affine: np.ndarray     # 2x3: frame pixel -> face-crop pixel
    face_size: int
    box: str | None = None  # where the landmarks' face box came from: detector, border, frame
    faces: int = 1          # how many faces the detector found on that frame (the largest is used)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame points -> face-crop points."""
        return np.asarray(points) @ self.affine[:, :2].T + self.affine[:, 2]


def face_geometry(landmarks: np.ndarray, face_size: int) -> FaceGeometry:
    """Eq. 1-2 and the grid of Fig. 3 from 68 landmarks; the crop covers the 6x6 grid."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    p1, p2 = landmarks[INNER_EYE_CORNERS[0]], landmarks[INNER_EYE_CORNERS[1]]
    R = rotation_matrix(p1, p2)
    center = (p1 + p2) / 2
    (x1, y1), (x2, _), (_, y3) = align_points(
        landmarks[[INNER_EYE_CORNERS[0], INNER_EYE_CORNERS[1], NASAL_SPINE]], R, center)
    w, h = (x2 - x1) / 2, (y3 - y1) / 2
    if w < 2 or h < 2:
        raise FaceNotFound(f"implausible landmarks (block size {w:.1f}x{h:.1f} px)")
    origin = np.array([2 * x1 - x2, 2 * y1 - y3])
    scale = np.diag([face_size / (GRID * w), face_size / (GRID * h)])
    # crop = scale @ (R^T (p - c) + c - origin)
    linear = scale @ R.T
    affine = np.hstack([linear, (scale @ (center - R.T @ center - origin))[:, None]])
    return FaceGeometry(landmarks, R, center, origin, np.array([w, h]), affine, face_size)


def warp_to_face(frame: np.ndarray, geometry: FaceGeometry) -> np.ndarray:
    """Align a frame (eq. 2) and crop the grid region to face_size x face_size."""
    return cv2.warpAffine(frame, geometry.affine, (geometry.face_size, geometry.face_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
