"""Apex spotting (paper Section II.A, eq. 3): uniform LBP per block, feature difference FD.

Pure numpy on arrays of face crops, so it is testable without any face detection.
"""
from __future__ import annotations

import numpy as np
from skimage.feature import local_binary_pattern

from tscnn_tf.face import GRID

LBP_POINTS, LBP_RADIUS = 8, 3
LBP_BINS = LBP_POINTS + 2  # uniform patterns 0..P plus one bin for all non-uniform ones


def block_histograms(face: np.ndarray, grid: int = GRID, points: int = LBP_POINTS,
                     radius: float = LBP_RADIUS) -> np.ndarray:
    """Normalised uniform-LBP histograms of the grid x grid blocks of a face crop: (grid², P+2)."""
    codes = local_binary_pattern(face, points, radius, method="uniform").astype(np.int64)
    bins = points + 2
    h, w = codes.shape
    rows = np.minimum(np.arange(h) * grid // h, grid - 1)
    cols = np.minimum(np.arange(w) * grid // w, grid - 1)
    block = rows[:, None] * grid + cols[None, :]
    hist = np.bincount((block * bins + codes).ravel(), minlength=grid * grid * bins)
    hist = hist.reshape(grid * grid, bins).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def block_distances(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """Eq. 3, d_k: chi-square distance of each block's histograms over the bins (0/0 taken as 0)."""
    num = (h1 - h2) ** 2
    den = h1 + h2
    ratio = np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
    return ratio.sum(axis=-1) / h1.shape[-1]


def feature_difference(h1: np.ndarray, h2: np.ndarray, lam: int) -> np.ndarray:
    """Eq. 3, FD: mean of the λ largest block distances. Broadcasts over leading axes."""
    d = block_distances(h1, h2)
    if not 1 <= lam <= d.shape[-1]:
        raise ValueError(f"lambda must be in 1..{d.shape[-1]}, got {lam}")
    return -np.sort(-d, axis=-1)[..., :lam].mean(axis=-1)


def spot_apex(histograms: np.ndarray, lam: int) -> tuple[int, np.ndarray]:
    """The apex: the frame with the largest FD to H̄, the mean of the onset and offset histograms.

    `histograms` is (frames, blocks, bins) from onset to offset. Returns (position, FD curve).
    """
    mean_hist = (histograms[0] + histograms[-1]) / 2
    fd = feature_difference(histograms, mean_hist[None], lam)
    return int(np.argmax(fd)), fd
