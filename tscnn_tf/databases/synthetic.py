"""The built-in synthetic micro-expression database (`--db=synthetic`).

Clips are rendered from scikit-image's `astronaut` (a NASA portrait, public domain). Each
subject is a new identity: face geometry (smooth warp, aspect, scale, roll), illumination
(gain, gamma, lateral gradient) and sensor noise. Each class is one local facial movement of
micro-expression size (0.75-3 px at the apex), moving the landmarks it acts on and deepening the
skin folds that movement makes (up to 16 grey levels):
- negative: brow lowerer (AU4), brows down and together;
- positive: lip-corner puller (AU12), mouth corners up and out;
- surprise: brow raiser (AU1+2), brows up.
Every clip rises from onset to apex and falls to offset (a peaked sin^8 profile), with a random
length, apex position and amplitude, plus distractors: per-frame sensor noise and a slow
global head drift. The frames and `annotations.csv` (true apex included) are written in the
custom format, so synthetic data takes exactly the reader and extraction path of real data.
"""
from __future__ import annotations

import csv
import functools
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from tscnn_tf import claims
from tscnn_tf.artifacts import write_json_atomic
from tscnn_tf.databases.base import log
from tscnn_tf.databases.custom import read_custom

CLASS_NAMES = ["negative", "positive", "surprise"]
FRAME_SIZE = 256          # rendered frames are FRAME_SIZE x FRAME_SIZE grey
FOLD_DEPTH = 16.0         # grey levels of a skin fold at the largest movement
MARKER = "synthetic.json"
VERSION = 1               # bump when the rendering changes, so old folders are regenerated
BROWS = list(range(17, 27))
INNER_BROWS = [19, 20, 21, 22, 23, 24]
UPPER_LIDS = [37, 38, 43, 44]
MOUTH_CORNERS = [48, 54]
NEAR_CORNERS = [49, 59, 53, 55]


@functools.lru_cache(maxsize=1)
def source_face() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut as float grey and its 68 landmarks (found once with the dlib backend)."""
    from skimage import data
    from tscnn_tf.face import make_landmarker
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    points = make_landmarker("dlib")(gray)
    if points is None:
        raise RuntimeError("no face found in skimage's astronaut image")
    return gray.astype(np.float32), points


def movement(label: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Control points and unit displacement vectors (frame coordinates) of one class."""
    mid_x = points[[39, 42], 0].mean()
    idx, vec = [], []
    if label in ("negative", "surprise"):
        for i in BROWS:
            weight = 1.0 if i in INNER_BROWS else 0.6
            if label == "negative":   # down and towards the midline
                direction = np.array([np.sign(mid_x - points[i, 0]) * 0.5, 1.0])
            else:                      # up
                direction = np.array([0.0, -1.0])
            idx.append(i)
            vec.append(weight * direction / np.linalg.norm(direction))
        if label == "surprise":
            idx += UPPER_LIDS
            vec += [np.array([0.0, -0.4])] * len(UPPER_LIDS)
    elif label == "positive":          # up and outwards
        for i, weight in [(c, 1.0) for c in MOUTH_CORNERS] + [(c, 0.5) for c in NEAR_CORNERS]:
            direction = np.array([np.sign(points[i, 0] - mid_x) * 0.6, -0.8])
            idx.append(i)
            vec.append(weight * direction / np.linalg.norm(direction))
    else:
        raise ValueError(label)
    return points[idx], np.array(vec)


def fold_segments(label: str, points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Skin folds that deepen with the movement: glabellar furrows (AU4), forehead lines
    (AU1+2), nasolabial folds (AU12). Segments in frame coordinates."""
    eye = np.linalg.norm(points[42] - points[39])
    if label == "negative":
        top, bottom = min(points[21, 1], points[22, 1]) - 0.35 * eye, points[39, 1] - 0.15 * eye
        xs = [points[21, 0] + 0.3 * (points[22, 0] - points[21, 0]),
              points[22, 0] - 0.3 * (points[22, 0] - points[21, 0])]
        return [(np.array([x, top]), np.array([x, bottom])) for x in xs]
    if label == "surprise":
        brow = points[BROWS, 1].min()
        return [(np.array([points[18, 0], brow - k * 0.3 * eye]),
                 np.array([points[25, 0], brow - k * 0.3 * eye])) for k in (1, 2)]
    if label == "positive":
        return [(points[31] + (points[31] - points[33]) * 0.6, points[48] + (points[48] - points[51]) * 0.3),
                (points[35] + (points[35] - points[33]) * 0.6, points[54] + (points[54] - points[57]) * 0.3)]
    raise ValueError(label)


def fold_map(segments, width: float) -> np.ndarray:
    """(H, W) in [0, 1]: a soft dark line of the given width along each segment."""
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.float32)
    p = np.stack([xs, ys], axis=-1)
    out = np.zeros((FRAME_SIZE, FRAME_SIZE), np.float32)
    for a, b in segments:
        ab = (b - a).astype(np.float32)
        t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-6), 0, 1)
        dist2 = ((p - (a + t[..., None] * ab)) ** 2).sum(-1)
        out = np.maximum(out, np.exp(-dist2 / (2 * width ** 2)))
    return out


def displacement_field(centers: np.ndarray, vectors: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth (H, W, 2) field: each control point moves its neighbourhood by its vector."""
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.float32)
    field = np.zeros((FRAME_SIZE, FRAME_SIZE, 2), np.float32)
    weight_sum = np.zeros((FRAME_SIZE, FRAME_SIZE), np.float32)
    for (cx, cy), v in zip(centers, vectors):
        w = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
        field += w[..., None] * v
        weight_sum += w
    # Normalise where bumps overlap, so neighbouring points do not add up beyond the amplitude.
    return field / np.maximum(weight_sum, 1.0)[..., None]


def intensity_profile(length: int, apex: int) -> np.ndarray:
    """Peaked rise from 0 at onset to 1 at apex and back to 0 at offset (sin^8 ramps).

    A broad (raised-cosine) top leaves the apex undefined within ±3 frames once LBP noise is
    added; this shape keeps a single apex, as the ±2-frame spotting check assumes."""
    t = np.arange(length, dtype=np.float64)
    rise = np.sin(np.pi / 2 * t / max(apex, 1)) ** 2
    fall = np.sin(np.pi / 2 * (length - 1 - t) / max(length - 1 - apex, 1)) ** 2
    return np.where(t <= apex, rise, fall) ** 4


class Subject:
    """One synthetic identity: maps the astronaut into frames of a new face."""

    def __init__(self, rng: np.random.Generator):
        src, points = source_face()
        # Identity warp of the source: a smooth random field (about 2-3 px of reshaping).
        coarse = rng.normal(0.0, 2.5, size=(4, 4, 2)).astype(np.float32)
        warp = cv2.resize(coarse, src.shape[::-1], interpolation=cv2.INTER_CUBIC)
        ys, xs = np.mgrid[0:src.shape[0], 0:src.shape[1]].astype(np.float32)
        self.src = cv2.remap(src, xs + warp[..., 0], ys + warp[..., 1], cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        src_points = points - warp[points[:, 1].astype(int), points[:, 0].astype(int)]
        # Frame placement: scale, aspect, roll and offset of the face.
        scale = rng.uniform(1.7, 2.2)
        aspect = rng.uniform(0.92, 1.08)
        angle = np.deg2rad(rng.uniform(-8, 8))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        linear = scale * rot @ np.diag([aspect, 1.0])
        face_center = src_points[[36, 45, 48, 54]].mean(axis=0)
        frame_center = np.array([FRAME_SIZE / 2, FRAME_SIZE / 2]) + rng.uniform(-10, 10, 2)
        self.forward = np.hstack([linear, (frame_center - linear @ face_center)[:, None]])
        self.inverse = cv2.invertAffineTransform(self.forward)
        self.points = src_points @ linear.T + self.forward[:, 2]
        # Illumination and sensor.
        self.gain = rng.uniform(0.75, 1.2)
        self.gamma = rng.uniform(0.8, 1.25)
        self.gradient = rng.uniform(-0.25, 0.25)
        self.noise = rng.uniform(0.5, 1.0)

    def render(self, displacement: np.ndarray, shading: np.ndarray, shift: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """One uint8 frame: the face moved by `displacement` (H, W, 2), darkened by `shading`
        (grey levels) and drifted by `shift`."""
        ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.float32)
        # Backward mapping: the content at p came from p - displacement(p) - shift.
        px = xs - displacement[..., 0] - shift[0]
        py = ys - displacement[..., 1] - shift[1]
        a = self.inverse
        map_x = (a[0, 0] * px + a[0, 1] * py + a[0, 2]).astype(np.float32)
        map_y = (a[1, 0] * px + a[1, 1] * py + a[1, 2]).astype(np.float32)
        image = cv2.remap(self.src, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        image = image - shading
        light = self.gain * (1 + self.gradient * (xs / FRAME_SIZE - 0.5) * 2)
        image = 255 * (np.clip(image, 0, 255) / 255) ** self.gamma * light
        image += rng.normal(0, self.noise, image.shape)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def tight_face_crop(subject: Subject, frame: np.ndarray, size: int = 224
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(crop, its true 68 landmarks) cut as the cropped releases are (CASME II, SMIC, SAMM):
    eyebrows at the top edge, the jaw at the sides, resized to size x size."""
    p = subject.points
    top = p[17:27, 1].min()
    side = max(p[8, 1] - top, p[16, 0] - p[0, 0])
    x0, y0 = int(round((p[0, 0] + p[16, 0]) / 2 - side / 2)), int(round(top))
    x0, y0 = max(x0, 0), max(y0, 0)
    crop = frame[y0:y0 + int(side), x0:x0 + int(side)]
    scale = np.array([size / crop.shape[1], size / crop.shape[0]])
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA), (p - [x0, y0]) * scale


def render_clip(subject: Subject, label: str, rng: np.random.Generator,
                length_range=(18, 34)) -> tuple[list[np.ndarray], int, float]:
    """Frames of one clip, the true apex position and the apex amplitude in pixels."""
    length = int(rng.integers(length_range[0], length_range[1] + 1))
    apex = int(rng.integers(round(0.3 * (length - 1)), round(0.7 * (length - 1)) + 1))
    amplitude = float(rng.uniform(0.75, 3.0))
    eye_distance = np.linalg.norm(subject.points[42] - subject.points[39])
    centers, vectors = movement(label, subject.points)
    field = displacement_field(centers, vectors, sigma=0.35 * eye_distance)
    folds = fold_map(fold_segments(label, subject.points), width=0.04 * eye_distance)
    depth = FOLD_DEPTH * amplitude / 3.0  # deeper folds for larger movements
    profile = intensity_profile(length, apex)
    drift = np.cumsum(rng.normal(0, 0.06, size=(length, 2)), axis=0)
    drift = np.clip(drift - drift[0], -0.5, 0.5)
    frames = [subject.render(field * amplitude * p, folds * depth * p, d, rng)
              for p, d in zip(profile, drift)]
    return frames, apex, amplitude


class NotASyntheticFolder(FileExistsError):
    """The folder holds something the synthetic renderer did not make: it is never touched."""


def marker_settings(data_dir: Path, marker: str = MARKER) -> dict | None:
    """The settings in the marker file, the mark of a folder a renderer made; else None."""
    try:
        found = json.loads((data_dir / marker).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "version" in found else None


def rendering(data_dir: Path):
    """Hold the render claim of `data_dir` (a file beside it) for a block: of several processes
    asked for one folder, one renders and the others wait for it, then find it finished."""
    return claims.exclusive(claims.beside(data_dir), f"{data_dir}")


def claim_render_folder(data_dir: Path, marker: str, settings: dict, what: str) -> bool:
    """True when `data_dir` already holds a finished rendering with `settings`. Otherwise make
    it ready for rendering, marked unfinished: a folder the renderer marked is started over,
    an absent or empty one created, anything else refused (NotASyntheticFolder, nothing
    deleted). Call `mark_finished` when the rendering is complete; call both inside
    `rendering(data_dir)` when several processes may render the same folder."""
    found = marker_settings(data_dir, marker) if data_dir.is_dir() else None
    if found == {**settings, "finished": True}:
        return True
    if found is not None:
        shutil.rmtree(data_dir)  # ours, unfinished or with other settings: start over
    elif data_dir.exists() and (not data_dir.is_dir() or any(
            not p.name.startswith("partial-") for p in data_dir.iterdir())):
        raise NotASyntheticFolder(
            f"{data_dir} is not empty and was not made by the {what} renderer (no {marker}): "
            "refusing to render into it. Give --data_dir an absent or empty folder, or leave it "
            "out for the default.")
    data_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(data_dir / marker, {**settings, "finished": False})
    return False


def mark_finished(data_dir: Path, marker: str, settings: dict) -> None:
    write_json_atomic(data_dir / marker, {**settings, "finished": True})


def generate(data_dir: str | Path, seed: int = 0, num_subjects: int = 8,
             clips_per_class: int = 3) -> Path:
    """Write the synthetic database (frames + annotations.csv) to `data_dir`; deterministic
    for a seed. Skipped when `data_dir` already holds a finished one with the same settings.

    Only an absent or empty folder, or one this function marked as its own (`synthetic.json`,
    written first and completed last), is rendered into: anything else raises
    NotASyntheticFolder and nothing is deleted."""
    data_dir = Path(data_dir)
    settings = {"version": VERSION, "seed": seed, "num_subjects": num_subjects,
                "clips_per_class": clips_per_class, "classes": CLASS_NAMES}
    if marker_settings(data_dir) == {**settings, "finished": True}:
        return data_dir  # finished: no claim needed (the folder may be read-only)
    with rendering(data_dir):
        if claim_render_folder(data_dir, MARKER, settings, "synthetic"):
            return data_dir
        log.info("rendering the synthetic database into %s", data_dir)
        rows = []
        subject_seeds = np.random.SeedSequence(seed).spawn(num_subjects)
        for s, subject_seed in enumerate(subject_seeds, start=1):
            rng = np.random.default_rng(subject_seed)
            subject = Subject(rng)
            labels = [c for c in CLASS_NAMES for _ in range(clips_per_class)]
            rng.shuffle(labels)
            for c, label in enumerate(labels, start=1):
                frames, apex, _ = render_clip(subject, label, rng)
                first = int(rng.integers(1, 200))  # unpadded numbers: text order != frame order
                clip_dir = data_dir / f"sub{s:02d}" / f"EP{c:02d}"
                clip_dir.mkdir(parents=True)
                for k, frame in enumerate(frames):
                    cv2.imwrite(str(clip_dir / f"img{first + k}.png"), frame)
                rows.append([f"sub{s:02d}", f"EP{c:02d}", first, first + apex,
                             first + len(frames) - 1, label])
        with open(data_dir / "annotations.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "clip", "onset", "apex", "offset", "label"])
            writer.writerows(rows)
        mark_finished(data_dir, MARKER, settings)
    return data_dir


def read_synthetic(data_dir: str | Path, classes=None, seed: int = 0, num_subjects: int = 8,
                   clips_per_class: int = 3):
    """Generate (if needed) and read the synthetic database through the custom reader."""
    generate(data_dir, seed, num_subjects, clips_per_class)
    return read_custom(data_dir, classes=classes or CLASS_NAMES, db="synthetic")
