"""Apex spotting (paper Section II.A, eq. 3): uniform LBP per block, feature difference FD.

Pure numpy on arrays of face crops, so it is testable without any face detection.
"""
from __future__ import annotations

import numpy as np
from skimage.feature import local_binary_pattern

from tscnn_tf.face import GRID

LBP_POINTS, LBP_RADIUS = 8, 3
LBP_BINS = LBP_POINTS + 2  # uniform patterns 0..P plus one bin for all non-uniform ones


def uniform_lbp(image: np.ndarray, points: int = LBP_POINTS,
                radius: float = LBP_RADIUS) -> np.ndarray:
    """Uniform LBP codes (0..P+1), equal to scikit-image's `local_binary_pattern(image, P, R,
    "uniform")` and several times faster: all pixels at once per sampling point.

    It repeats scikit-image's arithmetic step for step (offsets rounded to 5 decimals, bilinear
    interpolation in the same order, 0 outside the image, `neighbour - centre >= 0`), so that
    the codes are identical, not merely close (tested).
    """
    img = np.ascontiguousarray(image, dtype=np.float64)
    h, w = img.shape
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(img, pad)  # reads outside the image give 0, as scikit-image's mode 'C'
    angles = 2 * np.pi * np.arange(points) / points
    row_offsets = np.round(-radius * np.sin(angles), 5)
    col_offsets = np.round(radius * np.cos(angles), 5)
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    ones = np.zeros((h, w), np.int64)
    changes = np.zeros((h, w), np.int64)
    previous = None
    def shifted(dy: int, dx: int) -> np.ndarray:  # image[y + dy, x + dx] for every pixel
        return padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]

    for dr_off, dc_off in zip(row_offsets, col_offsets):
        r, c = rows + dr_off, cols + dc_off
        r0, c0 = np.floor(r), np.floor(c)
        # floor/ceil move every row (column) by the same whole number, so the four bilinear
        # corners are shifted views of the image; only the weights vary (in the last bits).
        (y0, y1), (x0, x1) = (int(r0[0]), int(np.ceil(r[0]))), (int(c0[0]), int(np.ceil(c[0])))
        if y0 == y1 and x0 == x1:  # a whole-pixel offset: the weights are exactly 1 and 0
            bit = shifted(y0, x0) - img >= 0
        else:
            dr, dc = (r - r0)[:, None], (c - c0)[None, :]
            top = (1 - dc) * shifted(y0, x0) + dc * shifted(y0, x1)
            bottom = (1 - dc) * shifted(y1, x0) + dc * shifted(y1, x1)
            bit = ((1 - dr) * top + dr * bottom) - img >= 0
        ones += bit
        if previous is not None:
            changes += bit != previous
        previous = bit
    return np.where(changes <= 2, ones, points + 1)


LBP_IMPLEMENTATIONS = {
    "numpy": uniform_lbp,
    "skimage": lambda image, points, radius: local_binary_pattern(
        image, points, radius, method="uniform").astype(np.int64),
}


def block_histograms(face: np.ndarray, grid: int = GRID, points: int = LBP_POINTS,
                     radius: float = LBP_RADIUS, implementation: str = "numpy") -> np.ndarray:
    """Normalised uniform-LBP histograms of the grid x grid blocks of a face crop: (grid², P+2).

    implementation: "numpy" (`uniform_lbp`, the default) or "skimage"; the histograms are equal.
    """
    codes = LBP_IMPLEMENTATIONS[implementation](face, points, radius)
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
