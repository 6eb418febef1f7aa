"""Small Keras layers that derive a model's inputs from the record fields inside the model.

A model reads record fields as they are (`flow_raw`: u, v onset->apex then u, v apex->offset,
in pixels of the 48 x 48 grid) and computes what its paper feeds the network here, so `.keras`,
SavedModel and TFLite exports take the same record fields as training. keras.ops only: no
py_function, nothing outside the TFLite builtins.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from tscnn_tf.features import INPUT_SIZE

PACKAGE = "tscnn_tf"


def area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of area averaging: output pixel i is the mean of the input
    over [i, i + 1) * size_in / size_out, partial pixels weighted by their overlap (the rule of
    OpenCV's INTER_AREA, which the reference implementations use to shrink their images)."""
    scale = size_in / size_out
    edges = np.arange(size_out + 1) * scale
    left, right = edges[:-1, None], edges[1:, None]
    pixels = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(right, pixels + 1) - np.maximum(left, pixels), 0, None)
    return (overlap / scale).astype(np.float32)


@keras.saving.register_keras_serializable(PACKAGE)
class SelectChannels(layers.Layer):
    """x[..., channels]: e.g. (0, 1) = u, v onset->apex of `flow_raw`."""

    def __init__(self, channels=(0, 1), **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)

    def call(self, x):
        return ops.stack([x[..., c] for c in self.channels], axis=-1)

    def get_config(self):
        return {**super().get_config(), "channels": list(self.channels)}


@keras.saving.register_keras_serializable(PACKAGE)
class AreaResize(layers.Layer):
    """Square images size_in -> size_out by area averaging, values times `scale` (the flow's
    displacements in pixels shrink with the grid: scale = size_out / size_in)."""

    def __init__(self, size_out: int, size_in: int = INPUT_SIZE, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.size_out, self.size_in, self.scale = int(size_out), int(size_in), float(scale)
        self.matrix = area_matrix(self.size_in, self.size_out)

    def call(self, x):
        a = ops.convert_to_tensor(self.matrix, dtype=x.dtype)
        x = ops.transpose(x, (0, 3, 1, 2))                  # (B, C, H, W)
        x = ops.matmul(ops.matmul(a, x), ops.transpose(a))  # A X Aᵀ per image and channel
        return ops.transpose(x, (0, 2, 3, 1)) * self.scale

    def get_config(self):
        return {**super().get_config(), "size_out": self.size_out, "size_in": self.size_in,
                "scale": self.scale}


def gradient(f, axis: int):
    """np.gradient along a spatial axis (1 = y, 2 = x) of (batch, H, W): central differences
    inside, one-sided differences at the two borders."""
    n = f.shape[axis]

    def take(start, stop):
        return f[:, start:stop] if axis == 1 else f[:, :, start:stop]

    inner = (take(2, n) - take(0, n - 2)) / 2
    return ops.concatenate([take(1, 2) - take(0, 1), inner, take(n - 1, n) - take(n - 2, n - 1)],
                           axis=axis)


@keras.saving.register_keras_serializable(PACKAGE)
class OpticalStrain(layers.Layer):
    """Optical strain magnitude of a flow (u, v) = x[..., 0], x[..., 1]:
    |ε| = sqrt(ε_xx² + ε_yy² + ε_xy² + ε_yx²), ε_xx = ∂u/∂x, ε_yy = ∂v/∂y,
    ε_xy = ε_yx = (∂u/∂y + ∂v/∂x) / 2, derivatives by finite differences (np.gradient).
    Output (batch, H, W, 1); dimensionless, so it needs no rescaling when the grid shrinks."""

    def call(self, x):
        u, v = x[..., 0], x[..., 1]
        exx, eyy = gradient(u, 2), gradient(v, 1)
        exy = (gradient(u, 1) + gradient(v, 2)) / 2
        return ops.sqrt(exx * exx + eyy * eyy + 2 * exy * exy)[..., None]


@keras.saving.register_keras_serializable(PACKAGE)
class MinMaxNormalise(layers.Layer):
    """Per sample and channel (x - min) / (max - min) over the image, 0 for a flat channel:
    the 8-bit flow and strain images the reference implementations train on, as floats."""

    def call(self, x):
        low = ops.min(x, axis=(1, 2), keepdims=True)
        high = ops.max(x, axis=(1, 2), keepdims=True)
        return (x - low) / ops.maximum(high - low, 1e-6)


def apply_onset_apex_flow(flow_raw, size: int, strain: bool, normalise: str, name: str = "flow"):
    """u, v onset->apex of `flow_raw` (and their optical strain, computed on the 48-px grid),
    area-resized to size x size with u, v scaled by size / 48, optionally min-max normalised
    per channel ("minmax") or left in pixels of the new grid ("none")."""
    if normalise not in ("minmax", "none"):
        raise ValueError(f"normalise must be 'minmax' or 'none', got {normalise!r}")
    uv = SelectChannels((0, 1), name=f"{name}_onset_apex_uv")(flow_raw)
    x = AreaResize(size, scale=size / INPUT_SIZE, name=f"{name}_uv_resize")(uv)
    if strain:
        eps = OpticalStrain(name=f"{name}_strain")(uv)
        eps = AreaResize(size, name=f"{name}_strain_resize")(eps)
        x = layers.Concatenate(name=f"{name}_uv_strain")([x, eps])
    if normalise == "minmax":
        x = MinMaxNormalise(name=f"{name}_minmax")(x)
    return x
