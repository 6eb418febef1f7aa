"""Spotting micro- and macro-expressions in a frame stream (a long video or a camera).

Frames are processed as they arrive and never held whole: the face is detected once, followed,
and detected again every `redetect_s` seconds (a frame without a face ends a segment with a
warning); each frame becomes an aligned face crop (the feature stage's geometry, eq. 1-2)
kept in a bounded ring buffer. Two signals are computed per frame, at two time scales k (a
frame against the frames k before and after; k from an expected half-duration times fps):

- `lbp`: eq. 3's LBP feature difference of the frame's block histograms against the mean of
  the histograms k frames before and after (the MEGC baseline's signal);
- `motion`: face-local optical flow from k frames before, per block magnitude with the global
  (median) motion removed, the mean of the λ largest blocks (the MDMD idea).

`combined` averages both, each divided by its running mean. A peak of the contrast
C(t) = S(t) - (S(t-k) + S(t+k)) / 2 above T = mean(C) + p (max(C) - mean(C)) (running
statistics over `window_s`) and largest within ±k is an interval [t-k, t+k]; the micro scale
gives micro-expressions, the macro scale macro-expressions; where both answer to one event,
the stronger relative contrast decides its type. The eye blocks (EYE_BLOCKS) are left out of
both signals (blinks). `lbp` is the default: it measured best (README).

An interval is reported a bounded number of frames after its offset (3 k + k of the macro
scale); its face crops are still in the ring buffer, so `recognise` can run the feature
stage's own code (`features.clip_features`) on them.
"""
from __future__ import annotations

import array
import collections
import dataclasses
import logging

import cv2
import numpy as np

from tscnn_tf import apex as apex_lib
from tscnn_tf import face as face_lib

log = logging.getLogger("tscnn_tf")
SIGNALS = ("lbp", "motion", "combined")
# The eyes in the 6x6 grid: the inner eye corners lie on the line between block rows 1 and 2
# (the grid's top is 2y'1 - y'3, two block heights above them) and at the outer edges of
# columns 1 and 4 (x'1, x'2, two block widths apart); each eye spans rows 1-2 and the two
# columns outside its corner.
EYE_BLOCKS = [r * 6 + c for r in (1, 2) for c in (0, 1, 4, 5)]


@dataclasses.dataclass(frozen=True)
class SpotConfig:
    """Settings of the spotter; the defaults were chosen on the synthetic long videos (README)."""

    signal: str = "lbp"           # measured best on the synthetic long videos (README)
    micro_half_s: float = 0.12   # k of the micro scale, seconds
    macro_half_s: float = 0.5    # k of the macro scale, seconds (0: no macro scale)
    threshold: float = 0.3       # p of T = mean + p (max - mean)
    window_s: float = 20.0       # running window of the threshold statistics
    apex_lambda: int = 12        # λ: how many of the (non-eye) blocks count
    signal_size: int = 72        # side of the crop the signals are computed on
    face_size: int = 144         # side of the stored face crops (the feature stage's)
    redetect_s: float = 2.0      # seconds between face detections
    micro_max_s: float = 0.5     # the longest micro-expression
    ignore_eyes: bool = True     # leave the eye row out of the signals (blinks)
    min_gap_s: float = 0.1       # spotted intervals closer than this are merged
    min_contrast: float = 0.5    # the smallest peak contrast, relative to the signal's mean
    warmup_s: float = 0.0        # no peak before this much signal (beyond 2 k) has been seen

    def __post_init__(self):
        if self.signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {self.signal!r}")


DETECT_WIDTH = 320  # frames are searched for the face at this width (4x fewer pixels at 640)


def detect_face(landmarker, gray: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the largest face: the detector on a frame scaled to DETECT_WIDTH (a
    detection at 640x480 costs ~100 ms, a tenth of a second of a 200-fps stream), the
    landmarks on the full frame."""
    scale = DETECT_WIDTH / gray.shape[1]
    if scale >= 1 or not hasattr(landmarker, "detect_box"):
        return landmarker(gray, face_box="detect")
    return landmarker.detect_box(gray, scale)


def block_mask(ignore_eyes: bool) -> np.ndarray:
    mask = np.ones(face_lib.GRID ** 2, bool)
    if ignore_eyes:
        mask[EYE_BLOCKS] = False
    return mask


def block_means(values: np.ndarray) -> np.ndarray:
    """(H, W) -> the mean of each of the 6x6 blocks, flattened row-major."""
    h, w = values.shape
    g = face_lib.GRID
    return values[:h - h % g, :w - w % g].reshape(g, h // g, g, w // g).mean(axis=(1, 3)).ravel()


class RunningStats:
    """Mean and maximum of the last `window` values, in O(1) a value (a running sum and a
    monotonic queue), so a 20-s window costs nothing per frame."""

    def __init__(self, window: int):
        self.values: collections.deque = collections.deque()
        self.window, self.total = window, 0.0
        self.maxima: collections.deque = collections.deque()  # (position, value), decreasing
        self.count = 0

    def push(self, value: float) -> None:
        self.values.append(value)
        self.total += value
        while self.maxima and self.maxima[-1][1] <= value:
            self.maxima.pop()
        self.maxima.append((self.count, value))
        self.count += 1
        if len(self.values) > self.window:
            self.total -= self.values.popleft()
        while self.maxima[0][0] <= self.count - 1 - self.window:
            self.maxima.popleft()

    def __len__(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        return self.total / len(self.values) if self.values else 0.0

    def max(self) -> float:
        return self.maxima[0][1]


class Scale:
    """One time scale k: its signal, its contrast, and peak picking."""

    def __init__(self, k: int, kind: str, config: SpotConfig, window: int):
        self.k, self.kind, self.config = k, kind, config
        self.signal: dict[int, float] = {}
        self.contrast: dict[int, float] = {}
        self.stats = RunningStats(window)   # recent contrasts
        self.levels = RunningStats(window)  # recent signal values
        self.raw = {name: RunningStats(window) for name in ("lbp", "motion")}
        self.warmup = max(2 * k, int(config.warmup_s * window / config.window_s))

    def add(self, t: int, lbp: float, motion: float) -> None:
        """The signals at frame t (its references t-k and t+k are known)."""
        self.raw["lbp"].push(lbp)
        self.raw["motion"].push(motion)
        if self.config.signal == "combined":
            value = 0.5 * (lbp / (self.raw["lbp"].mean() + 1e-9)
                           + motion / (self.raw["motion"].mean() + 1e-9))
        else:
            value = lbp if self.config.signal == "lbp" else motion
        self.signal[t] = value
        self.levels.push(value)
        c = t - self.k  # the contrast needs the signal k frames after
        if c - self.k in self.signal and c in self.signal:
            self.contrast[c] = self.signal[c] - 0.5 * (self.signal[c - self.k] + self.signal[t])
            self.stats.push(self.contrast[c])
        self.signal.pop(t - 4 * self.k - 1, None)  # frames come one by one: one to forget

    def peaks(self, now: int) -> list[tuple[int, float]]:
        """(apex, relative contrast) of the peaks that can be decided now (their ±k
        neighbourhood known). The contrast is divided by the signal's running mean, so that
        `min_contrast` means the same for every signal."""
        out = []
        c = now - 2 * self.k  # the latest contrast with k known neighbours on both sides
        self.contrast.pop(c - 2 * self.k - 1, None)
        if c not in self.contrast or len(self.stats) < self.warmup:
            return out
        mean = self.stats.mean()
        threshold = mean + self.config.threshold * (self.stats.max() - mean)
        value = self.contrast[c]
        relative = value / (self.levels.mean() + 1e-9)
        if value >= threshold and relative >= self.config.min_contrast and value >= max(
                self.contrast.get(x, -np.inf) for x in range(c - self.k, c + self.k + 1)):
            out.append((c, relative))
        return out


class Spotter:
    """Feed frames with `push(index, gray)`; finished intervals come back from `push` and
    `finish`. `trace` keeps the per-frame signals (a few floats a frame) for plots."""

    def __init__(self, fps: float, config: SpotConfig = SpotConfig(), landmarker=None,
                 keep_trace: bool = True):
        self.fps, self.config = fps, config
        self.landmarker = landmarker or face_lib.make_landmarker("dlib5", "detect")
        self.mask = block_mask(config.ignore_eyes)
        self.lam = min(config.apex_lambda, int(self.mask.sum()))
        self.k_micro = max(1, round(config.micro_half_s * fps))
        self.k_macro = round(config.macro_half_s * fps) if config.macro_half_s else 0
        self.history = 2 * max(self.k_micro, self.k_macro) + 1
        # Crops for recognition: the longest interval plus the reporting delay.
        self.faces = collections.deque(maxlen=int(4 * max(self.k_micro, self.k_macro, 1)
                                                  + 2 * fps + 1))
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.geometry = None
        self.last_detection = -10 ** 9
        self.warnings: list[str] = []
        # The signal of each scale at each centre frame, as compact arrays (16 bytes a frame).
        self.trace = {kind: (array.array("d"), array.array("d")) for kind in ("micro", "macro")}
        self.keep_trace = keep_trace
        self.seen = 0
        self.shape = None  # the frame size of the current segment
        self.frame_of = lambda i: i  # stream position -> the input's frame number (warnings)
        self.pending: list[dict] = []
        self._reset_segment()

    def _reset_segment(self) -> None:
        window = int(self.config.window_s * self.fps)
        self.scales = [Scale(self.k_micro, "micro", self.config, window)]
        if self.k_macro:
            self.scales.append(Scale(self.k_macro, "macro", self.config, window))
        self.small = collections.deque(maxlen=self.history)   # (index, small crop, histogram)
        # Per scale: block flow magnitudes from k frames before to each frame (the "rise" of
        # that frame and the "fall" of the frame k before it): one flow per frame and scale.
        self.moves = {scale.kind: collections.deque(maxlen=scale.k + 1) for scale in self.scales}

    # -- face ----------------------------------------------------------------------------
    def _follow_face(self, index: int, gray: np.ndarray) -> bool:
        """Detect the face when due; False while there is none."""
        due = index - self.last_detection >= self.config.redetect_s * self.fps
        if self.geometry is not None and not due:
            return True
        self.last_detection = index
        points = detect_face(self.landmarker, gray)
        if points is None:
            if self.geometry is not None:
                self.warnings.append(f"face lost at frame {self.frame_of(index)}: "
                                     "the segment ends there")
                self.geometry = None
                self._reset_segment()
            return False
        try:
            geometry = face_lib.face_geometry(points, self.config.face_size)
        except face_lib.FaceNotFound:
            return self.geometry is not None
        if self.geometry is None:
            if self.seen:
                self.warnings.append(f"face found again at frame {self.frame_of(index)}: "
                                     "a new segment starts")
            self.geometry = geometry
            return True
        eye = np.linalg.norm(points[42] - points[39])
        five = list(face_lib.FIVE_POINTS)
        moved = np.mean(np.linalg.norm(points[five] - self.geometry.landmarks[five], axis=1)) / max(eye, 1)
        if moved > 0.25:  # the head moved enough to shift the crop: follow it, restart signals
            self.geometry = geometry
            self._reset_segment()
        return True

    # -- signals -------------------------------------------------------------------------
    def _motion(self, earlier: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Per-block flow magnitude from `earlier` to `now`, global (median) motion removed."""
        flow = self.flow.calc(earlier, now, None)
        flow -= np.median(flow.reshape(-1, 2), axis=0)
        return block_means(np.linalg.norm(flow, axis=2))[self.mask]

    def _top(self, values: np.ndarray) -> float:
        return float(np.sort(values)[-self.lam:].mean())

    def _lbp(self, hist: np.ndarray, before: np.ndarray, after: np.ndarray) -> float:
        mean = (before + after) / 2
        return float(apex_lib.feature_difference(hist[self.mask], mean[self.mask], self.lam))

    def push(self, index: int, gray: np.ndarray) -> list[dict]:
        """Process one frame; returns the intervals decided at this frame."""
        if self.shape is not None and gray.shape != self.shape:  # like a lost face
            self.warnings.append(
                f"frame size changed from {self.shape[1]}x{self.shape[0]} to {gray.shape[1]}x"
                f"{gray.shape[0]} at frame {self.frame_of(index)}: the segment ends there")
            self.geometry = None  # the face is searched for again in the new frames
            self._reset_segment()
        self.shape = gray.shape
        if not self._follow_face(index, gray):
            return self._emit(index, final=False)
        crop = face_lib.warp_to_face(gray, self.geometry)
        self.faces.append((index, crop))
        small = cv2.resize(crop, (self.config.signal_size,) * 2, interpolation=cv2.INTER_AREA)
        self.small.append((index, small, apex_lib.block_histograms(small)))
        self.seen += 1
        for scale in self.scales:
            moves = self.moves[scale.kind]
            if len(self.small) > scale.k and self.config.signal != "lbp":
                moves.append(self._motion(self.small[-1 - scale.k][1], small))
            if len(self.small) > 2 * scale.k:
                # Centre t = k frames ago: its LBP against t-k and t+k (now), and its motion,
                # the mean of the flows t-k -> t and t -> t+k (both large at an apex only).
                _, _, h_before = self.small[-1 - 2 * scale.k]
                t_index, _, h_center = self.small[-1 - scale.k]
                lbp = self._lbp(h_center, h_before, self.small[-1][2])
                motion = (self._top((moves[0] + moves[-1]) / 2)
                          if self.config.signal != "lbp" else 0.0)
                scale.add(t_index, lbp, motion)
                if self.keep_trace:
                    self.trace[scale.kind][0].append(t_index)
                    self.trace[scale.kind][1].append(scale.signal[t_index])
                for apex, strength in scale.peaks(t_index):
                    self.pending.append({"onset": apex - scale.k, "apex": apex,
                                         "offset": apex + scale.k, "score": strength,
                                         "scale": scale.kind})
        return self._emit(index, final=False)

    def finish(self) -> list[dict]:
        """The intervals still pending at the end of the stream."""
        return self._emit(None, final=True)

    def _emit(self, index: int | None, final: bool) -> list[dict]:
        """Intervals whose neighbourhood is fully decided (every peak near them is known).

        Both scales answer to most events; the one with the stronger relative contrast near the
        apex says how long the event is. A macro peak with a micro peak at least as strong
        within ±k_macro/2 is a micro-expression (the macro peak goes); otherwise it is a macro-
        expression and the micro peaks inside it go."""
        delay = 3 * max(self.k_micro, self.k_macro) + self.k_macro
        ready = [p for p in self.pending if final or p["offset"] + delay < index]
        if not ready:
            return []
        near = self.k_macro // 2
        known = ready + self.pending
        for m in (p for p in known if p["scale"] == "macro"):
            micros = [p for p in known if p["scale"] == "micro" and abs(p["apex"] - m["apex"]) <= near]
            if any(p["score"] >= m["score"] for p in micros):
                m["dropped"] = True  # kept on the peak: the other one may be emitted later
            else:
                for p in known:
                    if p["scale"] == "micro" and m["onset"] <= p["apex"] <= m["offset"]:
                        p["dropped"] = True
        self.pending = [p for p in self.pending if p not in ready]
        out = []
        for p in sorted(ready, key=lambda p: p["apex"]):
            if p.get("dropped"):
                continue
            duration = (p["offset"] - p["onset"] + 1) / self.fps
            p = {**p, "type": "micro" if duration <= self.config.micro_max_s else "macro",
                 "onset": max(p["onset"], 0)}
            if out and p["onset"] - out[-1]["offset"] <= self.config.min_gap_s * self.fps \
                    and p["type"] == out[-1]["type"]:
                if p["score"] > out[-1]["score"]:
                    out[-1] = {**p, "onset": out[-1]["onset"]}
                else:
                    out[-1]["offset"] = p["offset"]
                continue
            out.append(p)
        return out

    def crops(self, onset: int, offset: int) -> tuple[list[int], list[np.ndarray]]:
        """The stored face crops of onset..offset (those still in the ring buffer)."""
        pairs = [(i, c) for i, c in self.faces if onset <= i <= offset]
        return [i for i, _ in pairs], [c for _, c in pairs]


PUBLIC_KEYS = ("onset", "apex", "offset", "score", "type")


def spot_stream(frames, fps: float, config: SpotConfig = SpotConfig(), recognise=None,
                landmarker=None, on_interval=None, keep_trace: bool = False,
                frame_of=None) -> dict:
    """Spot every interval of a frame stream ((index, grey frame) pairs, any length).

    Intervals, and the frames warnings name, are in 0-based positions of the stream, or in
    `frame_of(position)` (the input's own frame numbers where frames were skipped).
    `recognise(spotter, interval)` (optional) returns extra keys for an interval (label,
    probabilities) while its face crops (in positions) are still held; `on_interval(interval)`
    sees each one as soon as it is decided. Start-up (the landmark model) is inside the
    measured `frames_per_s`. `keep_trace` keeps the signals (16 bytes a frame and scale, in
    positions) for a plot. `frames_with_face` counts the frames a face was followed in.
    """
    import time
    start = time.perf_counter()
    spotter = Spotter(fps, config, landmarker, keep_trace)
    if frame_of is not None:
        spotter.frame_of = frame_of
    intervals: list[dict] = []

    def decided(found):
        for interval in found:
            out = {k: interval[k] for k in PUBLIC_KEYS}
            out.update({k: spotter.frame_of(out[k]) for k in ("onset", "apex", "offset")})
            out["score"] = float(out["score"])
            if recognise is not None:
                out.update(recognise(spotter, interval))
            intervals.append(out)
            if on_interval is not None:
                on_interval(out)

    count = 0
    for count, (_, gray) in enumerate(frames, start=1):
        decided(spotter.push(count - 1, gray))
    decided(spotter.finish())
    elapsed = time.perf_counter() - start
    return {"frames": count, "fps": fps, "intervals": intervals,
            "frames_per_s": count / elapsed if elapsed > 0 else None,
            "warnings": list(spotter.warnings), "trace": spotter.trace,
            "frames_with_face": spotter.seen,
            "config": dataclasses.asdict(config)}


def apex_hits(truth: list, spotted: list[dict], tolerance: int) -> dict:
    """Detection counted by apex: a spotted interval is a hit when its apex lies within
    `tolerance` frames of a not-yet-hit ground-truth apex (micro and macro alike)."""
    hit, used = 0, set()
    for s in sorted(spotted, key=lambda s: s["apex"]):
        for j, t in enumerate(truth):
            if j not in used and t.apex is not None and abs(s["apex"] - t.apex) <= tolerance:
                used.add(j)
                hit += 1
                break
    fp, fn = len(spotted) - hit, len(truth) - hit
    from tscnn_tf.metrics import prf
    return prf(hit, fp, fn)
