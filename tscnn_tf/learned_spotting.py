"""The learned spotter: soft targets, scores -> intervals, thresholds chosen on held-out
subjects, the exported spotter (`SpotterExport`) and its streaming use (`LearnedSpotter`).

**Targets** (SOFTNet's idea: a frame's target says how near it is to an apex). For each
ground-truth interval of a type, its channel (micro or macro) rises from the onset to 1 at the
apex and falls back to 0 at the offset: sin²(π/2 · x), x the fraction of the way from onset
to apex (or from offset back to apex). So the target peaks at the apex and is at least 0.5
over the middle half of the interval (half-way from the onset to the apex, to half-way from
the apex to the offset).

**Intervals.** A run of samples whose (3-sample mean) score is at least the type's threshold
is an expression, and since a run above 0.5 of the target covers half the interval, the
interval is the run widened by half its length on each side; its apex is the middle of the
run's top (the samples within 0.02 of its peak). A micro and a macro interval that overlap keep the one with the higher peak.

**Thresholds** are the ones that give the best F1 (MEGC protocol) on the validation subjects,
never on a test subject; without any expression of a type there, 0.5.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from tscnn_tf.errors import ToolkitError
from tscnn_tf.spotter_model import OUTPUTS, forward_numpy
from tscnn_tf.spot_features import NUM_FEATURES, FeatureSettings, MotionFeatures, feature_names

THRESHOLDS = tuple(np.round(np.arange(0.15, 0.91, 0.05), 2))
# The shortest run of samples above the threshold that is an expression: three quarters of
# the run of the shortest expression of its type (0.2 s micro, 0.6 s macro; a run covers half).
MIN_RUN = {"micro": 0.2 / 2 * 0.75, "macro": 0.6 / 2 * 0.75}  # seconds
FILES = ("spotter.keras", "spotter.npz", "spotter.tflite", "metadata.json")


class SpotterError(ToolkitError):
    """A spotter export that cannot be used."""


def targets(intervals, frames: np.ndarray, fps: float) -> np.ndarray:
    """(samples, 2) soft targets of micro and macro for samples taken at input `frames`.
    `intervals` have onset, apex (or None: the middle), offset and type, in input frames."""
    out = np.zeros((len(frames), len(OUTPUTS)), np.float32)
    t = frames.astype(np.float64)
    for iv in intervals:
        if iv.type not in OUTPUTS:
            continue
        apex = iv.apex if iv.apex is not None else (iv.onset + iv.offset) / 2
        rise = np.clip((t - iv.onset) / max(apex - iv.onset, 1e-6), 0, 1)
        fall = np.clip((iv.offset - t) / max(iv.offset - apex, 1e-6), 0, 1)
        x = np.where(t <= apex, rise, fall)
        x[(t < iv.onset) | (t > iv.offset)] = 0
        value = np.sin(np.pi / 2 * x) ** 2
        c = OUTPUTS.index(iv.type)
        out[:, c] = np.maximum(out[:, c], value)
    return out


def smooth(scores: np.ndarray) -> np.ndarray:
    """The 3-sample mean of each channel (edges: the mean of what there is)."""
    padded = np.pad(scores, ((1, 1), (0, 0)), mode="edge")
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3


def decode(scores: np.ndarray, frames: np.ndarray, thresholds: dict[str, float],
           last_frame: int | None = None, rate: float = 20.0) -> list[dict]:
    """Intervals {onset, apex, offset, score, type} (input frames) from per-sample scores
    (`rate` samples a second): runs shorter than MIN_RUN are not expressions; runs of one type
    whose widened intervals overlap are one expression, its apex the middle of the top of its
    scores (a held expression has a plateau, or two peaks where the face moves in and out)."""
    scores = smooth(scores)
    last_frame = int(frames[-1]) if last_frame is None and len(frames) else last_frame
    found = []
    for c, kind in enumerate(OUTPUTS):
        above = scores[:, c] >= thresholds[kind]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
        runs = []
        for start, stop in zip(edges[::2], edges[1::2]):  # samples start..stop-1
            if stop - start < MIN_RUN[kind] * rate:
                continue
            widen = (stop - start) / 2
            first, last = max(0.0, start - widen), min(len(frames) - 1.0, stop - 1 + widen)
            if runs and first <= runs[-1][3]:  # overlapping the previous one: the same
                runs[-1] = (runs[-1][0], stop, runs[-1][2], last)
            else:
                runs.append((start, stop, first, last))
        for start, stop, first, last in runs:
            run = scores[start:stop, c]
            top = np.flatnonzero(run >= run.max() - 0.02)  # the plateau near the apex
            peak = start + int(round(top.mean()))
            onset, offset = _frame_at(frames, first), min(_frame_at(frames, last), last_frame)
            found.append({"onset": onset, "apex": int(np.clip(frames[peak], onset, offset)),
                          "offset": offset, "score": float(run.max()), "type": kind})
    found.sort(key=lambda i: -i["score"])
    kept = []
    for interval in found:  # the stronger of overlapping intervals of the two types
        if all(k["type"] == interval["type"] or interval["offset"] < k["onset"]
               or k["offset"] < interval["onset"] for k in kept):
            kept.append(interval)
    return sorted(kept, key=lambda i: i["onset"])


def _frame_at(frames: np.ndarray, position: float) -> int:
    """The input frame at a fractional sample position (linear between samples)."""
    low = int(np.floor(position))
    high = min(low + 1, len(frames) - 1)
    return int(round(frames[low] + (position - low) * (frames[high] - frames[low])))


def choose_thresholds(videos: list[dict], scores: list[np.ndarray],
                      rate: float = 20.0) -> dict[str, float]:
    """Per type, the threshold of the best F1 on these (validation) videos, each {"truth":
    [Interval...], "frames": array}; 0.5 where they hold no expression of that type."""
    from tscnn_tf import metrics
    out = {}
    for kind in OUTPUTS:
        if not any(iv.type == kind for v in videos for iv in v["truth"]):
            out[kind] = 0.5
            continue
        best = (-1.0, 0.5)
        for threshold in THRESHOLDS:
            per_video = []
            for v, s in zip(videos, scores):
                only = {k: (threshold if k == kind else 2.0) for k in OUTPUTS}
                spotted = [i for i in decode(s, v["frames"], only, rate=rate)
                           if i["type"] == kind]
                per_video.append({"truth": [truth_dict(iv) for iv in v["truth"] if iv.type == kind],
                                  "spotted": spotted})
            f1 = metrics.spotting_scores(per_video)[kind]["f1"]
            if f1 > best[0] + 1e-9:
                best = (f1, float(threshold))
        out[kind] = best[1]
    return out


def truth_dict(iv) -> dict:
    return {"onset": iv.onset, "apex": iv.apex, "offset": iv.offset, "type": iv.type,
            "label": iv.label}


# -- the export -------------------------------------------------------------------------------
def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass
class SpotterExport:
    """An exported spotter: its weights (numpy), thresholds and feature settings."""

    path: Path
    metadata: dict
    weights: dict

    @property
    def settings(self) -> FeatureSettings:
        return FeatureSettings(**self.metadata["features"])

    @property
    def thresholds(self) -> dict[str, float]:
        return self.metadata["thresholds"]

    def scores(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros((0, len(OUTPUTS)), np.float32)
        return forward_numpy(self.weights, features, tuple(self.metadata["model"]["dilations"]))


def load_spotter(path) -> SpotterExport:
    """A spotter export folder (metadata.json + spotter.npz), checked: every damage or
    mismatch is one SpotterError line."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    meta_path = folder / "metadata.json"
    if not folder.is_dir() or not meta_path.is_file():
        raise SpotterError(f"--spotter={path} is not a spotter export: no metadata.json "
                           f"(make one with train --task=spotting --export_dir=...)")
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise SpotterError(f"{meta_path} is damaged ({e}): export the spotter again") from e
    if not isinstance(metadata, dict) or metadata.get("task") != "spotting":
        raise SpotterError(f"{folder} is not a spotter export (its metadata.json has no "
                           "task 'spotting'; a recognition model goes to --model)")
    check_metadata(metadata, meta_path)
    npz = folder / "spotter.npz"
    if not npz.is_file():
        raise SpotterError(f"{npz} is missing: export the spotter again")
    expected = metadata["sha256"]["spotter.npz"]
    if file_sha256(npz) != expected:
        raise SpotterError(f"{npz} does not match its metadata.json (damaged or replaced): "
                           "export the spotter again")
    try:
        with np.load(npz) as data:
            weights = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as e:
        raise SpotterError(f"{npz} is damaged ({e}): export the spotter again") from e
    needed = ["standardise/mean", "standardise/variance", "project/kernel", "scores/kernel",
              *(f"block{d}_{part}/kernel" for d in metadata["model"]["dilations"]
                for part in ("dilated", "mix"))]
    if missing := [k for k in needed if k not in weights]:
        raise SpotterError(f"{npz} lacks {', '.join(missing[:3])}: export the spotter again")
    if metadata.get("feature_names") != feature_names():
        raise SpotterError(f"{folder} was made with other spotting features than this version "
                           "reads: train it again")
    return SpotterExport(folder, metadata, weights)


def check_metadata(metadata: dict, path) -> None:
    """The values `spot` relies on, of the right kind and range (SpotterError otherwise): a
    hand-edited metadata.json must not hang or crash the stream."""
    def bad(what):
        return SpotterError(f"{path} is damaged ({what}): export the spotter again")

    def positive(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and value > 0

    features = metadata.get("features")
    if not isinstance(features, dict) or set(features) != {"rate", "micro_s", "macro_s"} or \
            not all(positive(v) for v in features.values()) or \
            features["macro_s"] <= features["micro_s"]:
        raise bad("'features' must hold a positive rate, micro_s and a longer macro_s")
    thresholds = metadata.get("thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != set(OUTPUTS) or not all(
            positive(v) and v <= 1 for v in thresholds.values()):
        raise bad("'thresholds' must give micro and macro a number in (0, 1]")
    dilations = (metadata.get("model") or {}).get("dilations")
    if not isinstance(dilations, list) or not dilations or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dilations):
        raise bad("'model.dilations' must be a list of positive integers")
    digests = metadata.get("sha256")
    if not isinstance(digests, dict) or not isinstance(digests.get("spotter.npz"), str):
        raise bad("no SHA-256 of spotter.npz, so its weights cannot be checked")


class LearnedSpotter:
    """Streaming use of an exported spotter: `push(index, gray)` returns the intervals decided
    at that frame, `finish()` the rest. Scores are computed every `hop_s` on the samples of the
    last `window_s`; an interval is reported once it ends more than `guard_s` before the
    newest sample (so the model has seen what follows it)."""

    def __init__(self, export: SpotterExport, fps: float, landmarker=None, frame_of=None,
                 keep_crops: int = 0, hop_s: float = 2.0, window_s: float = 30.0,
                 guard_s: float = 5.0):
        from tscnn_tf.spot_features import check_rate
        check_rate(fps, export.settings, "this input")
        self.export, self.fps = export, fps
        self.features = MotionFeatures(fps, export.settings, landmarker, frame_of, keep_crops)
        rate = export.settings.rate
        self.hop, self.window, self.guard = (int(round(s * rate)) for s in (hop_s, window_s,
                                                                              guard_s))
        self.rows: list[np.ndarray] = []
        self.frames: list[int] = []
        self.first_sample = 0    # the sample number of rows[0]
        self.done_until = -1     # input frame: intervals with an onset at or before are out
        self.trace = ([], [], [])  # (frame, micro, macro) of the scores as last computed
        self.since = 0

    @property
    def tracker(self):
        return self.features.tracker

    @property
    def geometry(self):
        """The face's geometry in the latest frame it was followed in (for recognition)."""
        return self.features.geometry

    def crops(self, onset: int, offset: int):
        """The 144-px face crops of onset..offset still held (`keep_crops`)."""
        return self.features.crops_between(onset, offset)

    def push(self, index: int, gray) -> list[dict]:
        for _, frame, row in self.features.push(index, gray):
            self.rows.append(row)
            self.frames.append(frame)
            self.since += 1
        if self.since < self.hop or len(self.rows) <= self.guard:
            return []
        self.since = 0
        return self._decide(final=False)

    def finish(self) -> list[dict]:
        return self._decide(final=True)

    def _decide(self, final: bool) -> list[dict]:
        if not self.rows:
            return []
        frames = np.asarray(self.frames)
        scores = self.export.scores(np.asarray(self.rows))
        self._keep_trace(frames, scores, final)
        intervals = decode(scores, frames, self.export.thresholds,
                           rate=self.export.settings.rate)
        limit = frames[-1] if final else frames[len(frames) - 1 - self.guard]
        out = [i for i in intervals if i["onset"] > self.done_until and
               (final or i["offset"] < limit)]
        if out:
            self.done_until = max(i["offset"] for i in out)
        if len(self.rows) > self.window:  # forget what can no longer change
            cut = len(self.rows) - self.window
            self.rows, self.frames = self.rows[cut:], self.frames[cut:]
        return out

    def _keep_trace(self, frames, scores, final) -> None:
        start = len(self.trace[0]) and self.trace[0][-1]
        keep = frames > start if self.trace[0] else np.ones(len(frames), bool)
        if not final:
            keep &= np.arange(len(frames)) < len(frames) - self.guard
        self.trace[0].extend(frames[keep].tolist())
        self.trace[1].extend(scores[keep, 0].tolist())
        self.trace[2].extend(scores[keep, 1].tolist())


def learned_spot_stream(frames, fps: float, export: SpotterExport, recognise=None,
                        landmarker=None, on_interval=None, keep_trace: bool = False,
                        frame_of=None) -> dict:
    """`spotting.spot_stream` with the learned spotter: every interval of a frame stream, in
    its positions or `frame_of(position)`, with the same keys (and `restarts`)."""
    import time
    from tscnn_tf.spotting import feed, restart_warnings, restarts_record
    start = time.perf_counter()
    frame_of = frame_of or (lambda i: i)
    keep = int(20 * fps) if recognise is not None else 0  # the frames an interval can need
    spotter = LearnedSpotter(export, fps, landmarker, frame_of, keep_crops=keep)
    intervals, count = feed(spotter, frames, frame_of, recognise, on_interval)
    elapsed = time.perf_counter() - start
    tracker = spotter.tracker
    trace = {"micro": (spotter.trace[0], spotter.trace[1]),
             "macro": (spotter.trace[0], spotter.trace[2])} if keep_trace else {}
    return {"frames": count, "fps": fps, "intervals": intervals,
            "frames_per_s": count / elapsed if elapsed > 0 else None,
            "warnings": restart_warnings(tracker, "those samples marked hidden (visible 0)"),
            "trace": trace,
            "frames_with_face": spotter.features.seen, "restarts": restarts_record(tracker),
            "config": {"spotter": str(export.path), "fingerprint": export.metadata.get(
                "fingerprint"), "thresholds": export.thresholds}}
