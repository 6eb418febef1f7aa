"""Optical flow (paper eq. 4) and its min-max normalisation (eq. 5).

Flow is (H, W, 2) float32 in pixels, channel 0 = u (x), channel 1 = v (y), with
prev(y, x) ≈ next(y + v, x + u) for every backend.
"""
from __future__ import annotations

import cv2
import numpy as np

FLOW_METHODS = ("tvl1", "tvl1_skimage", "dis", "farneback")
FLOW_NORMS = ("channel", "field")
_cache: dict[str, object] = {}


def _opencv_tvl1():
    if "tvl1" not in _cache:
        _cache["tvl1"] = cv2.optflow.DualTVL1OpticalFlow_create()
    return _cache["tvl1"]


def _opencv_dis():
    if "dis" not in _cache:
        _cache["dis"] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _cache["dis"]


def compute_flow(prev: np.ndarray, nxt: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Dense flow between two uint8 grey images.

    `tvl1` (OpenCV DualTVL1) is the paper's method [43]; `tvl1_skimage` is scikit-image's
    reference TV-L1; `dis` (OpenCV DIS, medium preset) and `farneback` are the fast options.
    """
    if method == "tvl1":
        flow = _opencv_tvl1().calc(prev, nxt, None)
    elif method == "dis":
        flow = _opencv_dis().calc(prev, nxt, None)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, pyr_scale=0.5, levels=3, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    elif method == "tvl1_skimage":
        from skimage.registration import optical_flow_tvl1
        v, u = optical_flow_tvl1(prev.astype(np.float32) / 255, nxt.astype(np.float32) / 255)
        flow = np.dstack([u, v])
    else:
        raise ValueError(f"unknown flow method {method!r}; choose from {FLOW_METHODS}")
    return np.asarray(flow, dtype=np.float32)


def resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """Resample a flow field to size x size and rescale its vectors to the new pixel units."""
    h, w = flow.shape[:2]
    out = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA)
    return out * np.array([size / w, size / h], dtype=np.float32)


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
