"""LBP-TOP (Zhao & Pietikäinen, IEEE TPAMI 29(6), 2007): local binary patterns on three
orthogonal planes of a grey clip, histogrammed per block, the classic micro-expression baseline.

Pure numpy, vectorised (every voxel at once per sampling point), no TensorFlow: the feature
stage calls it on the aligned grey clip and stores the result as the record field `lbptop`.

Defaults follow the CASME II baseline (Yan et al., PLoS ONE 2014) that the MEGC2019 recognition
baseline re-ran (LBP-TOP + linear SVM, composite UF1 .5882, UAR .5785 as reported by See et
al., FG 2019): 5 x 5 blocks, radii R_X = R_Y = 1, R_T = 4, 8 points on every plane, uniform
patterns. Not the rotation-invariant uniform LBP of `apex.py` (P + 2 bins): LBP-TOP uses the
u2 mapping, P(P - 1) + 3 = 59 bins for P = 8 (58 uniform patterns in code order, then one bin
for all others).

Conventions: sampling point p of P lies at angle θ = 2πp/P on an ellipse of the plane's two
radii, offset (-r_a sin θ, r_b cos θ) along the plane's axes (a, b) = XY: (y, x), XT: (t, x),
YT: (t, y); off-grid points by bilinear interpolation; bit = neighbour >= centre. Codes are
computed only where every neighbour lies inside the clip (t in [⌈R_T⌉, T - ⌈R_T⌉), likewise
y, x), the same voxels for all three planes. Blocks split the full H x W into a grid (edges
floor(i·H/n)); a voxel counts in the block of its (y, x). Each (block, plane) histogram is
normalised to sum 1 (all zeros if the block holds no interior voxel). Output order: block
(row-major), plane (XY, XT, YT), bin.
"""
from __future__ import annotations

import numpy as np

from tscnn_tf.errors import ToolkitError

BLOCKS, RADII, POINTS = 5, (1.0, 1.0, 4.0), 8  # radii (R_X, R_Y, R_T)
PLANES = ("XY", "XT", "YT")
AXES = {"XY": (1, 2), "XT": (0, 2), "YT": (0, 1)}  # clip axes (t=0, y=1, x=2) of (a, b)


class LbpTopError(ToolkitError):
    """A clip LBP-TOP cannot describe (too few frames for R_T, too small for the blocks)."""


def u2_bins(points: int = POINTS) -> int:
    return points * (points - 1) + 3


def u2_table(points: int = POINTS) -> np.ndarray:
    """Code (0 .. 2^P - 1) -> u2 bin: uniform codes (<= 2 circular 0/1 changes) numbered in
    increasing code order, every other code in the last bin."""
    codes = np.arange(2 ** points)
    bits = (codes[:, None] >> np.arange(points)) & 1
    changes = np.sum(bits != np.roll(bits, 1, axis=1), axis=1)
    uniform = changes <= 2
    table = np.full(2 ** points, u2_bins(points) - 1, np.int64)
    table[uniform] = np.arange(int(uniform.sum()))
    return table


def radii_xyt(radius) -> tuple[float, float, float]:
    """A scalar radius for all three axes, or (R_X, R_Y, R_T)."""
    r = np.broadcast_to(np.asarray(radius, np.float64), (3,))
    if np.any(r <= 0):
        raise LbpTopError(f"LBP-TOP radii must be positive, got {radius!r}")
    return float(r[0]), float(r[1]), float(r[2])


def plane_codes(clip: np.ndarray, plane: str, radii, points: int, margin) -> np.ndarray:
    """LBP codes (0 .. 2^P - 1) on `plane` of every interior voxel: (T', H', W')."""
    rx, ry, rt = radii
    r_axis = {0: rt, 1: ry, 2: rx}
    a, b = AXES[plane]
    size = [n - 2 * m for n, m in zip(clip.shape, margin)]

    def view(shift):  # clip[voxel + shift] for every interior voxel
        return clip[tuple(slice(m + s, m + s + n) for m, s, n in zip(margin, shift, size))]

    centre = view((0, 0, 0))
    codes = np.zeros(size, np.int64)
    for p in range(points):
        theta = 2 * np.pi * p / points
        offset = np.zeros(3)
        offset[a] = -r_axis[a] * np.sin(theta)
        offset[b] = r_axis[b] * np.cos(theta)
        offset = np.round(offset, 9)
        low = np.floor(offset).astype(int)
        frac = offset - low
        value = np.zeros(size)
        for corner in np.ndindex(2, 2, 2):
            weight = np.prod([f if c else 1 - f for c, f in zip(corner, frac)])
            if weight:
                value += weight * view(tuple(low + corner))
        codes |= (value >= centre).astype(np.int64) << p
    return codes


def lbptop_histograms(clip, blocks: int = BLOCKS, radius=RADII,
                      points: int = POINTS) -> np.ndarray:
    """Normalised u2 LBP-TOP histograms of a grey clip (T, H, W):
    float32 (blocks² · 3 · (P(P-1)+3),), i.e. 4425 values with the defaults."""
    clip = np.asarray(clip, np.float64)
    if clip.ndim != 3:
        raise LbpTopError(f"LBP-TOP needs a grey clip (frames, height, width), got shape "
                          f"{clip.shape}")
    radii = radii_xyt(radius)
    rx, ry, rt = radii
    margin = tuple(int(np.ceil(r)) for r in (rt, ry, rx))
    t, h, w = clip.shape
    if t < 2 * margin[0] + 1:
        raise LbpTopError(f"LBP-TOP with R_T = {rt:g} needs at least {2 * margin[0] + 1} "
                          f"frames; the clip has {t}")
    if min(h - 2 * margin[1], w - 2 * margin[2]) < blocks:
        raise LbpTopError(f"a {h}x{w} clip is too small for {blocks}x{blocks} LBP-TOP blocks")
    table, bins = u2_table(points), u2_bins(points)
    ys = np.arange(margin[1], h - margin[1]) * blocks // h
    xs = np.arange(margin[2], w - margin[2]) * blocks // w
    block = np.broadcast_to((ys[:, None] * blocks + xs[None, :])[None], (t - 2 * margin[0],
                                                                         *ys.shape, *xs.shape))
    out = np.zeros((blocks * blocks, len(PLANES), bins))
    for i, plane in enumerate(PLANES):
        index = block * bins + table[plane_codes(clip, plane, radii, points, margin)]
        out[:, i] = np.bincount(index.ravel(), minlength=blocks * blocks * bins).reshape(
            blocks * blocks, bins)
    totals = out.sum(axis=2, keepdims=True)
    return np.divide(out, totals, out=np.zeros_like(out), where=totals > 0).astype(
        np.float32).ravel()


def lbptop_size(blocks: int = BLOCKS, points: int = POINTS) -> int:
    """Length of `lbptop_histograms`' output."""
    return blocks * blocks * len(PLANES) * u2_bins(points)


def settings() -> dict:
    """The fixed settings of the feature stage's `lbptop` field, as the manifest records them."""
    return {"blocks": BLOCKS, "radius": list(RADII), "points": POINTS, "mapping": "u2",
            "size": lbptop_size(), "min_frames": 2 * int(np.ceil(RADII[2])) + 1}
