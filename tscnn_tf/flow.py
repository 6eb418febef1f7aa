"""Optical flow (paper eq. 4) and its min-max normalisation (eq. 5).

Flow is (H, W, 2) float32 in pixels, channel 0 = u (x), channel 1 = v (y), with
prev(y, x) ≈ next(y + v, x + u) for every setting. A setting may compute at a smaller size
(`tvl1_96`: the pair shrunk to 96 px first); its flow still comes back at the input's size and
in the input's pixel units, so the rest of the chain does not change.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class FlowSetting:
    """A named flow setting: the backend, the side the pair is shrunk to first (None: as
    given; never enlarged), and the backend options that differ from its defaults."""

    backend: str
    size: int | None = None
    options: tuple = ()
    summary: str = ""


FLOW_SETTINGS = {
    "tvl1": FlowSetting("tvl1", summary="OpenCV Dual TV-L1 with its defaults (5 scales, "
                        "5 warps), the paper's [43]"),
    "tvl1_skimage": FlowSetting("tvl1_skimage", summary="scikit-image's reference TV-L1"),
    "dis": FlowSetting("dis", options=(("preset", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),),
                       summary="OpenCV DIS, medium preset"),
    "farneback": FlowSetting("farneback", summary="OpenCV Farnebäck (3 levels, 15 px window)"),
    "tvl1_96": FlowSetting("tvl1", 96, summary="TV-L1 on the pair shrunk to 96 px"),
    "tvl1_72": FlowSetting("tvl1", 72, summary="TV-L1 on the pair shrunk to 72 px"),
    "tvl1_48": FlowSetting("tvl1", 48, summary="TV-L1 on the pair shrunk to 48 px (the grid)"),
    "tvl1_w3": FlowSetting("tvl1", options=(("warps", 3),), summary="TV-L1 with 3 warps"),
    "tvl1_s3": FlowSetting("tvl1", options=(("scales", 3),), summary="TV-L1 with 3 scales"),
    "tvl1_96_w3": FlowSetting("tvl1", 96, (("warps", 3),),
                              summary="TV-L1 on the pair shrunk to 96 px, 3 warps"),
    "tvl1_e05": FlowSetting("tvl1", options=(("epsilon", 0.05),),
                            summary="TV-L1 stopping at a 5x larger step (epsilon 0.05)"),
    "dis_fast": FlowSetting("dis", options=(("preset", cv2.DISOPTICAL_FLOW_PRESET_FAST),),
                            summary="OpenCV DIS, fast preset"),
    "dis_ultrafast": FlowSetting("dis", options=(("preset",
                                                  cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),),
                                 summary="OpenCV DIS, ultrafast preset"),
}
FLOW_METHODS = tuple(FLOW_SETTINGS)
# The edge flow, chosen from bench's flow table (README): ~100x faster than `tvl1` on one
# thread, within its cosine ~0.9 on the 48-px grid.
EDGE_FLOW = "dis"
FLOW_NORMS = ("channel", "field")
_cache: dict[str, object] = {}


def _make_estimator(setting: FlowSetting):
    options = dict(setting.options)
    if setting.backend == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        tvl1.setWarpingsNumber(options.get("warps", tvl1.getWarpingsNumber()))
        tvl1.setScalesNumber(options.get("scales", tvl1.getScalesNumber()))
        tvl1.setEpsilon(options.get("epsilon", tvl1.getEpsilon()))
        return tvl1
    return cv2.DISOpticalFlow_create(options["preset"])


def _estimator(method: str):
    if method not in _cache:
        _cache[method] = _make_estimator(FLOW_SETTINGS[method])
    return _cache[method]


def _backend_flow(prev: np.ndarray, nxt: np.ndarray, method: str) -> np.ndarray:
    backend = FLOW_SETTINGS[method].backend
    if backend in ("tvl1", "dis"):
        return _estimator(method).calc(prev, nxt, None)
    if backend == "farneback":
        return cv2.calcOpticalFlowFarneback(prev, nxt, None, pyr_scale=0.5, levels=3, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    from skimage.registration import optical_flow_tvl1
    v, u = optical_flow_tvl1(prev.astype(np.float32) / 255, nxt.astype(np.float32) / 255)
    return np.dstack([u, v])


def compute_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Dense flow between two uint8 grey images of one size, at that size and in its pixels.

    `method` is a name of FLOW_SETTINGS: `tvl1` (OpenCV Dual TV-L1, defaults) is the paper's
    method [43]; `tvl1_skimage` scikit-image's reference TV-L1; `dis` (DIS medium) and
    `farneback` fast options; `tvl1_96` / `tvl1_72` / `tvl1_48` TV-L1 on the pair shrunk to
    that side, `tvl1_w3` / `tvl1_s3` with 3 warps / scales, `tvl1_e05` with a coarser stopping
    threshold, `dis_fast` / `dis_ultrafast` the faster DIS presets. `bench` measures each
    against `tvl1`.
    """
    if method not in FLOW_SETTINGS:
        raise ValueError(f"unknown flow method {method!r}; choose from {FLOW_METHODS}")
    h, w = prev.shape[:2]
    size = FLOW_SETTINGS[method].size
    scale = 1.0 if size is None else min(1.0, size / max(h, w))
    if scale == 1.0:
        return np.asarray(_backend_flow(prev, nxt, method), dtype=np.float32)
    small = (max(1, round(w * scale)), max(1, round(h * scale)))
    flow = _backend_flow(cv2.resize(prev, small, interpolation=cv2.INTER_AREA),
                         cv2.resize(nxt, small, interpolation=cv2.INTER_AREA), method)
    return rescale_flow(np.asarray(flow, dtype=np.float32), w, h)


def rescale_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample a flow field to width x height and rescale its vectors to the new pixel units
    (area averaging when shrinking, bilinear when enlarging)."""
    h, w = flow.shape[:2]
    shrink = width <= w and height <= h
    out = cv2.resize(flow, (width, height),
                     interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out * np.array([width / w, height / h], dtype=np.float32)


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """Resample a flow field to size x size and rescale its vectors to the new pixel units."""
    return rescale_flow(flow, size, size)


def minmax_normalize(x: np.ndarray, mode: str = "channel") -> np.ndarray:
    """Eq. 5 on an (H, W, C) flow array; a flat group (max == min) becomes 0, not NaN.

    `channel`: one min and max per channel (u and v apart). `field`: one min and max over u and
    v of each flow field (channel pairs 0-1, 2-3), which keeps the u:v ratio, so the direction
    of motion survives the normalisation.
    """
    if mode not in FLOW_NORMS:
        raise ValueError(f"flow_norm must be one of {FLOW_NORMS}, got {mode!r}")
    x = np.asarray(x, dtype=np.float32)
    groups = x.reshape(*x.shape[:2], -1, 1 if mode == "channel" else 2)
    lo = groups.min(axis=(0, 1, 3), keepdims=True)
    span = groups.max(axis=(0, 1, 3), keepdims=True) - lo
    out = np.divide(groups - lo, span, out=np.zeros_like(groups), where=span > 0)
    return out.reshape(x.shape)
