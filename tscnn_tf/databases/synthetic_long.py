"""Synthetic long videos for spotting (`--db=synthetic_long`): one subject of the synthetic
renderer in a long neutral recording, with micro-expressions at random times and what a real
recording also holds: blinks, slow head turns, a macro-expression, sensor noise.

    <data_dir>/<video>.avi              MJPG at the declared fps (grey frames as BGR)
    <data_dir>/intervals.csv            video, onset, apex, offset, type, label (0-based frames)
    <data_dir>/synthetic_long.json      settings; marks the folder as the renderer's own

Blinks and head turns are distractors, not ground truth. Micro-expressions last 0.2-0.45 s,
the macro-expression 1-2 s with a larger movement.
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
VERSION = 1
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


def generate(data_dir, seed: int = 0, num_videos: int = 2, seconds: float = 12.0,
             fps: float = 100.0) -> Path:
    """Render the synthetic long-video database into `data_dir` (absent, empty or its own)."""
    data_dir = Path(data_dir)
    settings = {"version": VERSION, "seed": seed, "num_videos": num_videos, "seconds": seconds,
                "fps": fps}
    with rendering(data_dir):  # of several processes asked for this folder, one renders
        if claim_render_folder(data_dir, MARKER, settings, "synthetic long-video"):
            return data_dir
        log.info("rendering %d synthetic long videos into %s", num_videos, data_dir)
        rows = []
        for v, video_seed in enumerate(np.random.SeedSequence(seed).spawn(num_videos), start=1):
            name = f"sub{v:02d}_long"
            truth = render_long_video(data_dir / f"{name}.avi", np.random.default_rng(video_seed),
                                      seconds, fps)
            rows += [[name, iv.onset, iv.apex, iv.offset, iv.type, iv.label] for iv in truth]
        with open(data_dir / "intervals.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["video", "onset", "apex", "offset", "type", "label"])
            writer.writerows(rows)
        mark_finished(data_dir, MARKER, settings)
        return data_dir


def read_synthetic_long(data_dir, seed: int = 0, num_videos: int = 2, seconds: float = 12.0,
                        fps: float = 100.0) -> list[LongVideo]:
    """Render (if needed) and read the synthetic long videos with their ground truth."""
    data_dir = generate(data_dir, seed, num_videos, seconds, fps)
    videos: dict[str, LongVideo] = {}
    for path in sorted(data_dir.glob("*.avi")):
        videos[path.stem] = LongVideo(path.stem, path.stem.split("_")[0], str(path), fps, [])
    with open(data_dir / "intervals.csv", newline="") as f:
        for row in csv.DictReader(f):
            videos[row["video"]].intervals.append(Interval(
                int(row["onset"]), int(row["apex"]), int(row["offset"]), row["type"],
                row["label"] or None))
    return list(videos.values())
