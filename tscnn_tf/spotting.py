"""Spotting micro- and macro-expressions in a frame stream (a long video or a camera).

Frames are processed as they arrive and never held whole: the face is detected once and
followed in every frame (`tracking.FaceTracker`: its rigid motion tracked on the stable parts
of the face, checked by a detection every `redetect_s` seconds), so head moves never restart
the signals; a face hidden for a moment (a hand, a turn) is a gap in which the face is taken
as last seen, and only a longer loss or a change of frame size restarts them (`restarts`).
Each frame becomes an aligned face crop (the feature stage's geometry, eq. 1-2) kept in a
bounded ring buffer. Two signals are computed per frame, at two time scales k (a
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

An apex needs its interval [t-k, t+k] inside its segment (the frames between a face found
and lost for longer than `max_gap_s`, or the stream's end). At a segment's ends the frame beyond it is taken
as its first or last frame, and when the segment ends its last peaks are decided then, so a
recording shorter than `window_s` (one smile filmed on a phone) is judged on all of itself.
An interval is reported a bounded number of frames after its offset (3 k + k of the macro
scale), at the latest when its segment ends; its face crops are still in the ring buffer, so
`recognise` can run the feature stage's own code (`features.clip_features`) on them. An
interval longer than `micro_max_s` (merged, or of the macro scale) is never typed micro.
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
from tscnn_tf.tracking import DETECT_WIDTH, FaceTracker, TrackConfig, detect_face  # noqa: F401

log = logging.getLogger("tscnn_tf")
SIGNALS = ("lbp", "motion", "combined")
VERSION = 2  # 2: the face followed frame by frame (tracking.py); results of 1 differ
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
    redetect_s: float = 2.0      # seconds between the detections that check the tracking
    max_gap_s: float = 1.0       # a face hidden this long or less is a gap, not a restart
    micro_max_s: float = 0.5     # the longest micro-expression
    ignore_eyes: bool = True     # leave the eye row out of the signals (blinks)
    min_gap_s: float = 0.1       # spotted intervals closer than this are merged
    min_contrast: float = 0.5    # the smallest peak contrast, relative to the signal's mean
    warmup_s: float = 0.0        # peaks wait until the threshold has seen this much (or the end)

    def __post_init__(self):
        if self.signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {self.signal!r}")


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
        self.first: int | None = None  # the segment's frames (last: once it has ended)
        self.last: int | None = None
        self.held: list[tuple[int, float]] = []  # local maxima waiting for the warm-up

    def real(self, t: int, margin: int) -> bool:
        """t is a frame of the segment, `margin` frames or more from its ends."""
        return self.first is not None and self.first + margin <= t and (
            self.last is None or t <= self.last - margin)

    def add(self, t: int, lbp: float, motion: float) -> None:
        """The signals at frame t (against t-k and t+k; at a segment's ends, the frame
        outside taken as its first or last frame)."""
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
        if c in self.signal:  # at a segment's start, the signal before it is its first one's
            self._contrast(c, self.signal.get(c - self.k, self.signal.get(self.first, value)), value)
        self.signal.pop(t - 4 * self.k - 1, None)  # frames come one by one: one to forget

    def _contrast(self, c: int, before: float, after: float) -> None:
        """C(c); a peak and the running statistics are the contrasts whose interval [c-k,
        c+k] lies inside the segment (those nearer its ends only serve as neighbours)."""
        self.contrast[c] = self.signal[c] - 0.5 * (before + after)
        if self.real(c, self.k):
            self.stats.push(self.contrast[c])

    def close(self) -> list[tuple[int, float]]:
        """The segment ended at `last` (set, and the signals of its last frames added): the
        contrasts of its last k frames, the signal after it taken as its last one's, and the
        peaks that waited for them."""
        after = self.signal.get(self.last)
        for c in range(self.last - self.k + 1, self.last + 1):
            if c in self.signal and c not in self.contrast and after is not None:
                self._contrast(c, self.signal.get(c - self.k, self.signal.get(self.first, after)),
                               after)
        out = []
        for now in range(self.last + 1, self.last + self.k + 1):
            out += self.peaks(now)
        return out + self.release()

    def peaks(self, now: int) -> list[tuple[int, float]]:
        """(apex, relative contrast) of the peaks that can be decided now (their ±k
        neighbourhood known). The contrast is divided by the signal's running mean, so that
        `min_contrast` means the same for every signal. A local maximum found before the
        threshold has `warmup` contrasts behind it waits for them (or for the segment's end,
        `release`): a threshold of a few noisy values would pass noise."""
        c = now - 2 * self.k  # the latest contrast with k known neighbours on both sides
        self.contrast.pop(c - 2 * self.k - 1, None)
        if not self.real(c, self.k) or c not in self.contrast:
            return self.release() if len(self.stats) >= self.warmup else []
        value = self.contrast[c]
        if value >= max(self.contrast.get(x, -np.inf) for x in range(c - self.k, c + self.k + 1)):
            self.held.append((c, value))
        return self.release() if len(self.stats) >= self.warmup else []

    def release(self) -> list[tuple[int, float]]:
        """Judge the held local maxima against the threshold of the contrasts seen so far."""
        if not self.held or not len(self.stats):
            return []
        mean = self.stats.mean()
        threshold = mean + self.config.threshold * (self.stats.max() - mean)
        level = self.levels.mean() + 1e-9
        out = [(c, value / level) for c, value in self.held
               if value >= threshold and value / level >= self.config.min_contrast]
        self.held = []
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
        self.tracker = FaceTracker(fps, self.landmarker, TrackConfig(
            face_size=config.face_size, redetect_s=config.redetect_s,
            max_gap_s=config.max_gap_s), frame_of=lambda i: self.frame_of(i))
        self.geometry = None
        self.warnings: list[str] = []
        # The signal of each scale at each centre frame, as compact arrays (16 bytes a frame).
        self.trace = {kind: (array.array("d"), array.array("d")) for kind in ("micro", "macro")}
        self.keep_trace = keep_trace
        self.seen = 0
        self.frame_of = lambda i: i  # stream position -> the input's frame number (warnings)
        self.pending: list[dict] = []
        self._reset_segment()

    def _reset_segment(self) -> None:
        """End the current segment (its last peaks decided, `_flush_segment`) and start anew."""
        if getattr(self, "small", None):
            self._flush_segment()
        window = int(self.config.window_s * self.fps)
        self.scales = [Scale(self.k_micro, "micro", self.config, window)]
        if self.k_macro:
            self.scales.append(Scale(self.k_macro, "macro", self.config, window))
        self.small = collections.deque(maxlen=self.history)   # (index, small crop, histogram)
        # Per scale: block flow magnitudes from k frames before to each frame (the "rise" of
        # that frame and the "fall" of the frame k before it): one flow per frame and scale.
        self.moves = {scale.kind: collections.deque(maxlen=scale.k + 1) for scale in self.scales}

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

    @property
    def restarts(self) -> list[dict]:
        """Each restart of the signals: {frame, reason}."""
        return self.tracker.restarts

    def push(self, index: int, gray: np.ndarray) -> list[dict]:
        """Process one frame; returns the intervals decided at this frame."""
        geometry = self.tracker.update(index, gray)
        if self.tracker.restarted:  # the face found anew: a new segment
            if self.small:
                self._reset_segment()
            if self.seen:
                self.warnings.append(f"face found again at frame {self.frame_of(index)}: "
                                     "a new segment starts")
        if geometry is None:
            if self.tracker.hidden_since is None or not self.small:
                if self.small:  # lost for good: the segment ends
                    self._reset_segment()
                return self._emit(index, final=False)
            crop = self.faces[-1][1]  # a gap: the face taken as last seen
        else:
            self.geometry = geometry
            crop = face_lib.warp_to_face(gray, geometry)
            self.seen += 1
        self.faces.append((index, crop))
        small = cv2.resize(crop, (self.config.signal_size,) * 2, interpolation=cv2.INTER_AREA)
        if not self.small:
            for scale in self.scales:
                scale.first = index
        self.small.append((index, small, apex_lib.block_histograms(small)))
        for scale in self.scales:
            moves = self.moves[scale.kind]
            if len(self.small) > scale.k and self.config.signal != "lbp":
                moves.append(self._motion(self.small[-1 - scale.k][1], small))
            if len(self.small) > 2 * scale.k:
                # Centre t = k frames ago: its LBP against t-k and t+k (now), and its motion,
                # the mean of the flows t-k -> t and t -> t+k (both large at an apex only).
                flows = (moves[0], moves[-1]) if moves else None
                self._signal(scale, self.small, len(self.small) - 1 - scale.k, flows)
            elif len(self.small) > scale.k:  # a segment's first k frames
                self._signal(scale, self.small, len(self.small) - 1 - scale.k)
        return self._emit(index, final=False)

    def _signal(self, scale: Scale, frames, at: int, flows=None) -> None:
        """The signals of frames[at] (t) into `scale`, its peaks pending. Its references are
        the frames k before and after; at a segment's ends, the one outside is taken as the
        segment's first or last frame, and the frame itself as the other reference."""
        before, after = max(at - scale.k, 0), min(at + scale.k, len(frames) - 1)
        before, after = (after if before == at else before), (before if after == at else after)
        if before == at:
            return  # a segment of one frame
        t, small, center = frames[at]
        lbp = self._lbp(center, frames[before][2], frames[after][2])
        motion = 0.0
        if self.config.signal != "lbp":
            flows = flows or (self._motion(frames[before][1], small),
                              self._motion(small, frames[after][1]))
            motion = self._top((flows[0] + flows[1]) / 2)
        scale.add(t, lbp, motion)
        if self.keep_trace:
            self.trace[scale.kind][0].append(t)
            self.trace[scale.kind][1].append(scale.signal[t])
        self._found(scale, scale.peaks(t))

    def _flush_segment(self) -> None:
        """Decide the peaks near the end of a segment (the stream's end, a lost face, a head
        move): the signals of its last k frames (the face after the end taken as in its last
        frame), so a peak whose ±k neighbourhood runs past the end is still decided, within
        the segment."""
        frames = list(self.small)
        for scale in self.scales:
            scale.last = frames[-1][0]
            for at in range(max(len(frames) - scale.k, 0), len(frames)):
                self._signal(scale, frames, at)
            self._found(scale, scale.close())

    def _found(self, scale: Scale, peaks: list[tuple[int, float]]) -> None:
        """Peaks become pending intervals [apex - k, apex + k] (inside the segment)."""
        for apex, strength in peaks:
            self.pending.append({"onset": apex - scale.k, "apex": apex, "offset": apex + scale.k,
                                 "score": strength, "scale": scale.kind, "span": 2 * scale.k + 1})

    def finish(self) -> list[dict]:
        """The intervals still pending at the end of the stream, the last peaks decided."""
        self._reset_segment()
        self.warnings += restart_warnings(self.tracker)
        return self._emit(None, final=True)

    def _type(self, interval: dict) -> str:
        """micro when both its scale's span and the reported interval (merged or cut at a
        segment's end) last at most `micro_max_s`; never micro when longer."""
        frames = max(interval["span"], interval["offset"] - interval["onset"] + 1)
        return "micro" if frames / self.fps <= self.config.micro_max_s else "macro"

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
            p = {**p, "type": self._type(p), "own": self._type(p)}  # own: before merging
            if out and p["onset"] - out[-1]["offset"] <= self.config.min_gap_s * self.fps \
                    and p["own"] == out[-1]["own"]:
                if p["score"] > out[-1]["score"]:
                    out[-1] = {**p, "onset": out[-1]["onset"], "span": out[-1]["span"]}
                else:
                    out[-1]["offset"] = max(p["offset"], out[-1]["offset"])
                out[-1]["type"] = self._type(out[-1])
                continue
            out.append(p)
        return out

    def crops(self, onset: int, offset: int) -> tuple[list[int], list[np.ndarray]]:
        """The stored face crops of onset..offset (those still in the ring buffer)."""
        pairs = [(i, c) for i, c in self.faces if onset <= i <= offset]
        return [i for i, _ in pairs], [c for _, c in pairs]


PUBLIC_KEYS = ("onset", "apex", "offset", "score", "type")


def feed(spotter, frames, frame_of, recognise=None, on_interval=None) -> tuple[list, int]:
    """Every frame of `frames` ((index, grey) pairs) through a spotter (`push(position, gray)`,
    `finish()`): its public intervals in `frame_of(position)` numbers, each recognised (extra
    keys from `recognise(spotter, interval)`) and shown (`on_interval`) as soon as decided;
    and the number of frames read."""
    intervals = []

    def decided(found):
        for interval in found:
            out = {k: interval[k] for k in PUBLIC_KEYS}
            out.update({k: int(frame_of(out[k])) for k in ("onset", "apex", "offset")})
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
    return intervals, count


def restart_warnings(tracker, in_gaps: str = "the face as last seen") -> list[str]:
    """The warnings of a followed stream: each restart of the signals, and the gaps (in which
    the signals go on with `in_gaps`)."""
    out = [f"the signals restart: {r['reason']}" for r in tracker.restarts]
    if tracker.gaps:
        listed = ", ".join(f"{g['frame']} ({g['frames']})" for g in tracker.gaps[:10])
        out.append(f"the face was hidden {len(tracker.gaps)} time(s) for a moment (at frame "
                   f"(frames): {listed}{', ...' if len(tracker.gaps) > 10 else ''}): gaps, the "
                   f"signals go on with {in_gaps}")
    return out


def restarts_record(tracker) -> dict:
    """The JSON's `restarts`: how many times the signals restarted, and each one's frame and
    reason; `gaps`, how many times the face was hidden for a moment without a restart."""
    return {"count": len(tracker.restarts), "events": list(tracker.restarts),
            "gaps": len(tracker.gaps)}


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

    intervals, count = feed(spotter, frames, spotter.frame_of, recognise, on_interval)
    elapsed = time.perf_counter() - start
    return {"frames": count, "fps": fps, "intervals": intervals,
            "frames_per_s": count / elapsed if elapsed > 0 else None,
            "warnings": list(spotter.warnings), "trace": spotter.trace,
            "frames_with_face": spotter.seen, "restarts": restarts_record(spotter.tracker),
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


def make_recogniser(model):
    """recognise(spotter, interval) -> {label, probabilities}: the interval's onset, apex and
    offset through the feature stage's own code (`features.clip_features`, so flow is
    computed for two pairs only) and the exported model."""
    from tscnn_tf.artifacts import clip_fields
    from tscnn_tf.features import FeatureConfig, clip_features, lbptop_field
    model.require(clip_fields(), "the clip path of spot")  # before any frame is read
    config = FeatureConfig(**model.metadata["params"])

    def recognise(spotter, interval):
        indices, faces = spotter.crops(interval["onset"], interval["offset"])
        if len(faces) < 3 or spotter.geometry is None:
            return {"label": None, "probabilities": None}
        if faces[0].shape[0] != config.face_size:
            import cv2
            faces = [cv2.resize(f, (config.face_size,) * 2) for f in faces]
        features = clip_features(faces, indices, spotter.geometry, config)
        if "lbptop" in model.input_shapes:  # None under 9 frames: no label, as under 3
            features["lbptop"] = lbptop_field(faces, [])
            if features["lbptop"] is None:
                return {"label": None, "probabilities": None}
        probabilities = model(features)
        return {"label": model.class_names[int(np.argmax(probabilities))],
                "probabilities": {c: float(p) for c, p in zip(model.class_names, probabilities)}}
    return recognise
