"""Synthetic long videos for spotting (`--db=synthetic_long`): one subject of the synthetic
renderer in a long neutral recording, with micro-expressions at random times and what a real
recording also holds: blinks, slow head turns, a macro-expression, sensor noise.

    <data_dir>/<video>.avi              MJPG at the declared fps (grey frames as BGR)
    <data_dir>/intervals.csv            video, onset, apex, offset, type, label (0-based frames)
    <data_dir>/synthetic_long.json      settings; marks the folder as the renderer's own

Two styles. `plain` (the first renderer): micro-expressions of 0.2-0.45 s, one macro-expression
of 1-2 s, blinks, slow head drift, sensor noise. `realistic` adds what real recordings hold and
no spotter default was chosen on: expressions as mixtures of Action Units in the proportions of
the real sheets (`ACTION_UNITS`), micro-expressions of 0.2-0.5 s at real amplitudes (1.5-3 px
peaks scaled from a 260-px face), macro-expressions of 0.6-4 s and 4-20 px, subjects that differ in how
strongly they move, talking (the jaw and lips opening at 3-5 Hz), head translation and rotation
of several degrees with quick turns, blinks at any time (also during expressions), a hand
passing over the face, lighting drift, and JPEG compression at quality 60-80. Blinks, talking,
head moves and hands are distractors, not ground truth.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from tscnn_tf.databases.base import Interval, LongVideo, log
from tscnn_tf.databases.synthetic import (CLASS_NAMES, FOLD_DEPTH, FRAME_SIZE, UPPER_LIDS,
                                          Subject, claim_render_folder, displacement_field,
                                          fold_map, fold_segments, intensity_profile,
                                          mark_finished, movement, rendering)

MARKER = "synthetic_long.json"
VERSION = 3  # 2: the `style` setting; 3: realistic macro-expressions up to 20 px
STYLES = ("realistic", "plain")
MICRO_S = (0.2, 0.45)
MACRO_S = (1.0, 2.0)
BLINK_S = (0.1, 0.16)


def event_field(subject: Subject, kind: str, label: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(displacement field per px of amplitude, fold shading per unit) of one event."""
    eye = np.linalg.norm(subject.points[42] - subject.points[39])
    if kind == "blink":  # the upper lids close over the eyes
        centers = subject.points[UPPER_LIDS]
        vectors = np.tile([0.0, 1.0], (len(UPPER_LIDS), 1))
        return displacement_field(centers, vectors, 0.2 * eye), np.zeros((FRAME_SIZE,) * 2,
                                                                           np.float32)
    centers, vectors = movement(label, subject.points)
    return (displacement_field(centers, vectors, 0.35 * eye),
            fold_map(fold_segments(label, subject.points), 0.04 * eye))


def plan_events(rng: np.random.Generator, frames: int, fps: float, micro: int, blinks: int,
                macro: bool) -> list[dict]:
    """Non-overlapping events on the timeline, at least 0.5 s apart."""
    wanted = ["micro"] * micro + ["blink"] * blinks + (["macro"] if macro else [])
    rng.shuffle(wanted)
    gap = int(0.5 * fps)
    events, start = [], int(0.8 * fps)
    slots = frames - start - gap * len(wanted)
    durations = {"micro": MICRO_S, "macro": MACRO_S, "blink": BLINK_S}
    lengths = [int(rng.uniform(*durations[k]) * fps) for k in wanted]
    free = max(slots - sum(lengths), 0)
    cuts = np.sort(rng.integers(0, free + 1, len(wanted)))
    for kind, length, cut in zip(wanted, lengths, np.diff(np.concatenate([[0], cuts]))):
        start += int(cut)
        events.append({"kind": kind, "onset": start, "length": length,
                       "label": str(rng.choice(CLASS_NAMES)) if kind != "blink" else None,
                       "amplitude": {"micro": rng.uniform(1.5, 3.0), "macro": rng.uniform(5.0, 7.0),
                                     "blink": rng.uniform(3.0, 4.0)}[kind]})
        start += length + gap
    return [e for e in events if e["onset"] + e["length"] < frames]


def render_long_video(path: Path, rng: np.random.Generator, seconds: float, fps: float,
                      micro: int = 4, blinks: int = 3, macro: bool = True,
                      frame_size: tuple[int, int] | None = None) -> list[Interval]:
    """Write one long video to `path` and return its ground truth. `frame_size` (w, h) places
    the rendered face on a larger frame (a recording is not a face crop)."""
    subject = Subject(rng)
    frames = int(seconds * fps)
    events = plan_events(rng, frames, fps, micro, blinks, macro)
    fields = {id(e): event_field(subject, e["kind"], e["label"]) for e in events}
    # Slow head turns: a smooth drift of a few pixels over seconds.
    t = np.arange(frames) / fps
    drift = np.stack([3.0 * np.sin(2 * np.pi * t / rng.uniform(6, 10) + rng.uniform(0, 6)),
                      1.5 * np.sin(2 * np.pi * t / rng.uniform(7, 12) + rng.uniform(0, 6))], 1)
    size = frame_size or (FRAME_SIZE, FRAME_SIZE)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    truth = []
    profiles = {}
    for e in events:
        apex = int(rng.integers(round(0.3 * (e["length"] - 1)), round(0.6 * (e["length"] - 1)) + 1))
        profiles[id(e)] = intensity_profile(e["length"], apex)
        if e["kind"] != "blink":
            truth.append(Interval(e["onset"], e["onset"] + apex, e["onset"] + e["length"] - 1,
                                  e["kind"], e["label"]))
    zero = np.zeros((FRAME_SIZE, FRAME_SIZE, 2), np.float32)
    for i in range(frames):
        displacement, shading = zero, 0.0
        for e in events:
            k = i - e["onset"]
            if 0 <= k < e["length"]:
                p = profiles[id(e)][k] * e["amplitude"]
                field, folds = fields[id(e)]
                displacement = displacement + field * p
                shading = shading + folds * FOLD_DEPTH * p / 3.0
        image = subject.render(displacement, shading, drift[i], rng)
        if frame_size is not None:
            canvas = np.full((size[1], size[0]), int(np.median(image)), np.uint8)
            y, x = (size[1] - FRAME_SIZE) // 2, (size[0] - FRAME_SIZE) // 2
            canvas[y:y + FRAME_SIZE, x:x + FRAME_SIZE] = image
            image = canvas
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    return truth


def render_short_recording(path: Path, rng: np.random.Generator, seconds: float = 2.4,
                           fps: float = 30.0, apex_s: float = 1.6, length_s: float = 1.1,
                           label: str = "positive") -> Interval:
    """Write a short recording with one slow macro-expression (neutral -> expression peaking
    at `apex_s` -> neutral, `length_s` long, a broad raised-cosine profile as a real smile's)
    and return its ground truth. Shorter than the spotter's running window: the case of a
    user filming one smile."""
    subject = Subject(rng)
    frames, length = int(seconds * fps), int(round(length_s * fps))
    apex = int(round(apex_s * fps))
    onset = apex - length // 2
    field, folds = event_field(subject, "macro", label)
    t = np.arange(frames) / fps
    drift = np.stack([1.0 * np.sin(2 * np.pi * t / 6.0), 0.5 * np.sin(2 * np.pi * t / 8.0)], 1)
    amplitude = rng.uniform(5.0, 7.0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (FRAME_SIZE,) * 2)
    for i in range(frames):
        phase = (i - onset) / (length - 1)
        p = amplitude * np.sin(np.pi * phase) ** 2 if 0 <= phase <= 1 else 0.0
        image = subject.render(field * p, folds * FOLD_DEPTH * p / 3.0, drift[i], rng)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    return Interval(onset, apex, onset + length - 1, "macro", label)


# Action Units per class, from the CASME II and SAMM rows of the MEGC2019 composite (share of
# the class's samples): negative is a mixture, often two AUs at once.
ACTION_UNITS = {
    "negative": {"AU4": 0.43, "AU7": 0.41, "AU17": 0.16, "AU10": 0.12, "AU15": 0.09},
    "positive": {"AU12": 0.93, "AU6": 0.09, "AU14": 0.07, "AU15": 0.07},
    "surprise": {"AU1+2": 0.8, "AU5": 0.28, "AU26": 0.07},
}
CLASS_SHARES = (250 / 442, 109 / 442, 83 / 442)  # negative, positive, surprise in the composite
REFERENCE_FACE_PX = 260.0  # the face width the real amplitudes were measured on


def au_movement(au: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Control points and unit vectors of one Action Unit (frame coordinates)."""
    if au == "AU4":   # brow lowerer: inner brows down and together
        return movement("negative", points)
    if au == "AU1+2":  # brows up
        return movement("surprise", points)
    if au == "AU12":  # lip corners up and out
        return movement("positive", points)
    mid_x = points[[39, 42], 0].mean()
    table = {
        "AU7": ([40, 41, 46, 47], (0.0, -1.0)),        # lower lids up
        "AU17": ([57, 58, 56, 8, 7, 9], (0.0, -1.0)),  # chin raiser
        "AU10": ([50, 52, 31, 35], (0.0, -1.0)),       # upper lip raiser
        "AU15": ([48, 54], (0.2, 1.0)),                # lip corners down (x: outwards)
        "AU6": ([1, 15, 2, 14], (-0.3, -1.0)),         # cheeks up (x: inwards)
        "AU14": ([48, 54], (0.9, 0.0)),                # dimpler: lip corners back
        "AU5": ([37, 38, 43, 44], (0.0, -1.0)),        # upper lids up
        "AU26": ([56, 57, 58, 7, 8, 9], (0.0, 1.0)),   # jaw drop
    }
    idx, (dx, dy) = table[au]
    vec = np.array([[dx * np.sign(points[i, 0] - mid_x), dy] for i in idx], float)
    return points[idx], vec / np.linalg.norm(vec, axis=1, keepdims=True)


def expression_field(subject: Subject, label: str, rng) -> np.ndarray:
    """A displacement field per px of amplitude: the class's Action Units drawn with their
    shares (the most common one when none is drawn)."""
    shares = ACTION_UNITS[label]
    aus = [au for au, p in shares.items() if rng.random() < p] or [max(shares, key=shares.get)]
    eye = np.linalg.norm(subject.points[42] - subject.points[39])
    return np.sum([displacement_field(*au_movement(au, subject.points), 0.35 * eye)
                   * rng.uniform(0.6, 1.0) for au in aus], axis=0)


def plan_realistic(rng, frames: int, fps: float, seconds: float) -> list[dict]:
    """Labelled events (micro, macro) and distractors (talk, hand, turn) on one timeline, at
    least 0.6 s apart; blinks at any time (also during expressions)."""
    per_10s = {"micro": rng.uniform(1.2, 2.2), "macro": rng.uniform(0.4, 0.8),
               "talk": rng.uniform(0.5, 1.0), "hand": rng.uniform(0.2, 0.5),
               "turn": rng.uniform(0.5, 1.0)}
    wanted = [k for k, rate in per_10s.items()
              for _ in range(max(1, int(round(rate * seconds / 10))))]
    rng.shuffle(wanted)
    durations = {"micro": (0.2, 0.5), "macro": (0.6, 4.0), "talk": (1.0, 3.0),
                 "hand": (0.5, 1.2), "turn": (0.3, 0.8)}
    lengths = [max(3, int(rng.uniform(*durations[k]) * fps)) for k in wanted]
    gap, start = int(0.6 * fps), int(0.8 * fps)
    free = max(frames - start - gap * len(wanted) - sum(lengths) - int(0.5 * fps), 0)
    cuts = np.diff(np.concatenate([[0], np.sort(rng.integers(0, free + 1, len(wanted)))]))
    events = []
    for kind, length, cut in zip(wanted, lengths, cuts):
        start += int(cut)
        if start + length >= frames:
            break
        events.append({"kind": kind, "onset": start, "length": length})
        start += length + gap
    t = 0.5 + rng.exponential(3.5)
    while t < seconds - 0.3:  # blinks every 3-4 s on average
        events.append({"kind": "blink", "onset": int(t * fps),
                       "length": max(2, int(rng.uniform(0.1, 0.2) * fps))})
        t += 0.4 + rng.exponential(3.5)
    return events


def broad_profile(length: int, apex: int) -> np.ndarray:
    """A macro-expression's rise and fall: raised-cosine ramps to 1 at `apex` and back."""
    k = np.arange(length, dtype=np.float64)
    rise = np.sin(np.pi / 2 * k / max(apex, 1)) ** 2
    fall = np.cos(np.pi / 2 * (k - apex) / max(length - 1 - apex, 1)) ** 2
    return np.where(k <= apex, rise, fall)


def prepare_event(e: dict, subject: Subject, rng, fps: float, px: float, strength: float):
    """The event's field, amplitude and profile (and its ground truth, for an expression)."""
    eye = np.linalg.norm(subject.points[42] - subject.points[39])
    kind, length = e["kind"], e["length"]
    if kind in ("micro", "macro"):
        e["label"] = str(rng.choice(CLASS_NAMES, p=CLASS_SHARES))
        e["field"] = expression_field(subject, e["label"], rng)
        # Macro-expressions from a slight one to a broad smile (4-20 px on a 260-px face).
        e["amplitude"] = strength * px * (rng.uniform(1.5, 3.0) if kind == "micro"
                                          else rng.uniform(4.0, 20.0))
        e["folds"] = fold_map(fold_segments(e["label"], subject.points), 0.04 * eye)
        apex = int(rng.integers(round(0.3 * (length - 1)), round(0.6 * (length - 1)) + 1))
        e["profile"] = (intensity_profile(length, apex) if kind == "micro"
                        else broad_profile(length, apex))
        return Interval(e["onset"], e["onset"] + apex, e["onset"] + length - 1, kind, e["label"])
    if kind == "blink":
        e["field"] = displacement_field(subject.points[UPPER_LIDS],
                                        np.tile([0.0, 1.0], (len(UPPER_LIDS), 1)), 0.2 * eye)
        e["amplitude"] = rng.uniform(3.0, 4.5)
        e["profile"] = np.sin(np.pi * np.arange(length) / (length - 1)) ** 2
    elif kind == "talk":  # the jaw and lips opening and closing at 3-5 Hz
        lips = subject.points[[61, 62, 63, 65, 66, 67]]
        e["field"] = (displacement_field(*au_movement("AU26", subject.points), 0.4 * eye)
                      + displacement_field(lips, np.tile([0.0, 0.5], (6, 1)), 0.2 * eye))
        e["amplitude"] = px * rng.uniform(2.0, 5.0)
        t = np.arange(length) / fps
        ramp = np.minimum(1, np.minimum(t, t[::-1]) * 4)
        e["profile"] = np.abs(np.sin(np.pi * rng.uniform(3.0, 5.0) * t)) * ramp
    elif kind == "turn":  # a quick move of the head that stays: roll (deg), dx, dy (px)
        e["turn"] = np.array([rng.uniform(-6, 6), rng.uniform(-10, 10) * px,
                              rng.uniform(-5, 5) * px])
        e["profile"] = 0.5 - 0.5 * np.cos(np.pi * np.arange(length) / max(length - 1, 1))
    elif kind == "hand":
        e["hand"] = hand_sprite(rng, eye)
        e["path"] = (rng.uniform(-1, 1), rng.uniform(0.1, 1.0))  # from which side, how low
    return None


def render_realistic_video(path: Path, rng: np.random.Generator, seconds: float, fps: float
                           ) -> list[Interval]:
    """Write one long video of the realistic style to `path`; return its ground truth."""
    subject = Subject(rng)
    frames = int(seconds * fps)
    px = (subject.points[16, 0] - subject.points[0, 0]) / REFERENCE_FACE_PX  # real px -> ours
    strength = rng.uniform(0.7, 1.3)  # how strongly this subject moves
    events = plan_realistic(rng, frames, fps, seconds)
    truth = [iv for e in events if (iv := prepare_event(e, subject, rng, fps, px, strength))]
    t = np.arange(frames) / fps  # slow head motion and lighting drift over the whole video
    drift = np.stack([6.0 * px * np.sin(2 * np.pi * t / rng.uniform(8, 15) + rng.uniform(0, 6)),
                      4.0 * px * np.sin(2 * np.pi * t / rng.uniform(9, 16) + rng.uniform(0, 6))], 1)
    roll = 3.0 * np.sin(2 * np.pi * t / rng.uniform(10, 20) + rng.uniform(0, 6))
    light = 1 + 0.12 * np.sin(2 * np.pi * t / rng.uniform(15, 40) + rng.uniform(0, 6))
    quality = int(rng.integers(60, 81))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (FRAME_SIZE,) * 2)
    zero = np.zeros((FRAME_SIZE, FRAME_SIZE, 2), np.float32)
    turned = np.zeros(3)  # where the quick turns so far left the head
    center = subject.points[[36, 45, 48, 54]].mean(axis=0)
    for i in range(frames):
        displacement, shading, pose, hands = zero, 0.0, turned.copy(), []
        for e in events:
            k = i - e["onset"]
            if not 0 <= k < e["length"]:
                continue
            if e["kind"] == "turn":
                pose = turned + e["turn"] * e["profile"][k]
                if k == e["length"] - 1:
                    turned = turned + e["turn"]
            elif e["kind"] == "hand":
                hands.append((e, k / max(e["length"] - 1, 1)))
            else:
                p = e["profile"][k] * e["amplitude"]
                displacement = displacement + e["field"] * p
                if "folds" in e:
                    shading = shading + e["folds"] * FOLD_DEPTH * p / (3.0 * px * strength)
        image = subject.render(displacement, shading, drift[i] + pose[1:], rng).astype(np.float32)
        matrix = cv2.getRotationMatrix2D((float(center[0]), float(center[1])),
                                         float(roll[i] + pose[0]), 1.0)
        image = cv2.warpAffine(image, matrix, (FRAME_SIZE,) * 2, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        for e, progress in hands:
            draw_hand(image, e, progress, subject.points)
        image = np.clip(image * light[i], 0, 255).astype(np.uint8)
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    return sorted(truth, key=lambda iv: iv.onset)


def hand_sprite(rng, eye: float) -> tuple[np.ndarray, np.ndarray]:
    """(grey texture, alpha) of a hand: a soft ellipse of skin with a little texture."""
    h, w = int(2.6 * eye), int(1.6 * eye)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = np.sqrt(((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2)
    alpha = np.clip(1.5 - 1.5 * radius, 0, 1)
    texture = rng.uniform(110, 190) + cv2.GaussianBlur(
        rng.normal(0, 14, (h, w)).astype(np.float32), (0, 0), 2.0)
    return texture, alpha


def draw_hand(image: np.ndarray, event: dict, progress: float, points: np.ndarray) -> None:
    """The hand over the face, moved across it from one side to the other as it goes."""
    texture, alpha = event["hand"]
    side, height = event["path"]
    left, right = points[0, 0] - texture.shape[1], points[16, 0]
    x = left + (right - left) * (progress if side > 0 else 1 - progress)
    y = points[27, 1] + height * (points[8, 1] - points[27, 1]) - texture.shape[0] / 2
    x0, y0 = int(round(x)), int(round(y))
    ys = slice(max(y0, 0), min(y0 + texture.shape[0], FRAME_SIZE))
    xs = slice(max(x0, 0), min(x0 + texture.shape[1], FRAME_SIZE))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    part = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    a = alpha[part]
    image[ys, xs] = image[ys, xs] * (1 - a) + texture[part] * a


def generate(data_dir, seed: int = 0, num_videos: int = 2, seconds: float = 12.0,
             fps: float = 100.0, style: str = "plain") -> Path:
    """Render the synthetic long-video database into `data_dir` (absent, empty or its own): one
    subject a video, in `style` (realistic or plain)."""
    if style not in STYLES:
        raise ValueError(f"synthetic_long style must be one of {STYLES}, got {style!r}")
    data_dir = Path(data_dir)
    settings = {"version": VERSION, "seed": seed, "num_videos": num_videos, "seconds": seconds,
                "fps": fps, "style": style}
    with rendering(data_dir):  # of several processes asked for this folder, one renders
        if claim_render_folder(data_dir, MARKER, settings, "synthetic long-video"):
            return data_dir
        log.info("rendering %d synthetic long videos into %s", num_videos, data_dir)
        rows = []
        for v, video_seed in enumerate(np.random.SeedSequence(seed).spawn(num_videos), start=1):
            name = f"sub{v:02d}_long"
            render = render_realistic_video if style == "realistic" else render_long_video
            truth = render(data_dir / f"{name}.avi", np.random.default_rng(video_seed),
                           seconds, fps)
            rows += [[name, iv.onset, iv.apex, iv.offset, iv.type, iv.label] for iv in truth]
        with open(data_dir / "intervals.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["video", "onset", "apex", "offset", "type", "label"])
            writer.writerows(rows)
        mark_finished(data_dir, MARKER, settings)
        return data_dir


def read_synthetic_long(data_dir, seed: int = 0, num_videos: int = 2, seconds: float = 12.0,
                        fps: float = 100.0, style: str = "plain") -> list[LongVideo]:
    """Render (if needed) and read the synthetic long videos with their ground truth."""
    data_dir = generate(data_dir, seed, num_videos, seconds, fps, style)
    videos: dict[str, LongVideo] = {}
    for path in sorted(data_dir.glob("*.avi")):
        videos[path.stem] = LongVideo(path.stem, path.stem.split("_")[0], str(path), fps, [])
    with open(data_dir / "intervals.csv", newline="") as f:
        for row in csv.DictReader(f):
            videos[row["video"]].intervals.append(Interval(
                int(row["onset"]), int(row["apex"]), int(row["offset"]), row["type"],
                row["label"] or None))
    return list(videos.values())


def insert_movements(source, target: Path, events: list[dict], landmarker=None) -> list[Interval]:
    """Copy the video `source` to `target` (MJPG, same fps and size) with small local facial
    movements warped into it: each event {"aus": ("AU12",), "onset_s", "length_s", "px"} moves
    the given Action Units of the face found in each of its frames (68 landmarks, fitted per
    frame) by up to `px` pixels of a 260-px face (scaled to the face's width), rising to its
    apex at 40 % of its length and back (the micro-expressions' profile). Returns the inserted
    intervals (micro, in frames) as ground truth, so a spotter can be checked on real faces."""
    from tscnn_tf.face import make_landmarker
    landmarker = landmarker or make_landmarker("dlib", "detect")
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    spans = []
    for e in events:
        onset, length = int(round(e["onset_s"] * fps)), max(3, int(round(e["length_s"] * fps)))
        apex = int(round(0.4 * (length - 1)))
        spans.append((onset, length, intensity_profile(length, apex), e))
    truth = [Interval(on, on + int(round(0.4 * (n - 1))), on + n - 1, "micro", None)
             for on, n, _, _ in spans]
    ys, xs = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        for onset, length, profile, e in spans:
            k = index - onset
            if not 0 <= k < length:
                continue
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            points = landmarker(gray)
            if points is None:
                continue
            eye = np.linalg.norm(points[42] - points[39])
            scale = (points[16, 0] - points[0, 0]) / REFERENCE_FACE_PX
            field = np.zeros((size[1], size[0], 2), np.float32)
            weights = np.zeros((size[1], size[0]), np.float32)
            for au in e["aus"]:
                for (cx, cy), v in zip(*au_movement(au, points)):
                    w = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * (0.35 * eye) ** 2))
                    field += w[..., None] * v
                    weights += w
            field *= (profile[k] * e["px"] * scale / np.maximum(weights, 1.0))[..., None]
            frame = cv2.remap(frame, xs - field[..., 0], ys - field[..., 1], cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)
        writer.write(frame)
        index += 1
    writer.release()
    capture.release()
    return truth
