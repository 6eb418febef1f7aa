"""OFF-ApexNet (`--model=offapexnet`).

Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition system", Signal
Processing: Image Communication 74 (2019) 129-139 (arXiv:1805.08699).

The paper: the horizontal and vertical optical flow between the onset and the apex frame, each a
28 x 28 image, go through two CNN streams of the same structure (two convolution + pooling
stages); the two feature vectors are concatenated and classified by fully connected layers.

Read from `flow_raw` channels 0, 1 (u, v onset->apex, pixels of the 48-px grid). Choices, where
the paper (as read for this toolkit, from memory of its Figure 4 and Table 2) leaves them open
or where this toolkit departs:
- 48 -> 28 by area averaging, u and v scaled by 28/48, then min-max normalised per sample and
  channel (`normalise="minmax"`; the paper trains on flow images); `normalise="none"` keeps
  pixels.
- Each stream: conv 5x5 with 6 filters, padding "same", ReLU -> max-pool 2x2 stride 2 (28 -> 14)
  -> conv 5x5 with 16 filters, "same", ReLU -> max-pool 2x2 stride 2 (14 -> 7) -> flatten (784).
- Fusion: concatenate (1568) -> FC 1024 ReLU -> dropout 0.5 -> FC 1024 ReLU -> dropout 0.5 ->
  softmax. The dropout rate is this toolkit's choice (the paper's is not stated in what was read).
- Weights initialised by Keras' defaults (Glorot uniform, zero biases); no batch norm.
"""
from __future__ import annotations

import keras
from keras import layers

from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.models.layers import SelectChannels, apply_onset_apex_flow

VARIANTS = {
    "full": {"filters": (6, 16), "fc": 1024},
    "tiny": {"filters": (2, 4), "fc": 8},
}
FIELDS = ("flow_raw",)


def fields() -> tuple[str, ...]:
    return FIELDS


def apply_stream(x, filters, name: str):
    """Two stages of conv 5x5 "same" + ReLU + max-pool 2x2/2, flattened."""
    for i, f in enumerate(filters, 1):
        x = layers.Conv2D(f, 5, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"{name}_pool{i}")(x)
    return layers.Flatten(name=f"{name}_flatten")(x)


def apply_fusion(features, fc: int, dropout: float, num_classes: int):
    """Concatenated stream features -> FC -> FC -> softmax (float32 under mixed precision)."""
    x = layers.Concatenate(name="fusion_concat")(features)
    for i in (1, 2):
        x = layers.Dense(fc, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="output")(x)


def build(num_classes: int, variant: str = "full", dropout: float = 0.5,
          normalise: str = "minmax", size: int = 28) -> keras.Model:
    """OFF-ApexNet on the onset->apex u, v of `flow_raw`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    flow_raw = keras.Input((INPUT_SIZE, INPUT_SIZE, 4), name="flow_raw")
    uv = apply_onset_apex_flow(flow_raw, size, strain=False, normalise=normalise)
    streams = [apply_stream(SelectChannels((c,), name=f"{n}_select")(uv), spec["filters"], n)
               for c, n in ((0, "u"), (1, "v"))]
    out = apply_fusion(streams, spec["fc"], dropout, num_classes)
    return keras.Model({"flow_raw": flow_raw}, out, name="offapexnet")
