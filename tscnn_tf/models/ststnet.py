"""STSTNet, the Shallow Triple Stream Three-dimensional CNN (`--model=ststnet`).

Liong, Gan, See, Khor, Huang, "Shallow triple stream three-dimensional CNN (STSTNet) for
micro-expression recognition", IEEE FG 2019 (MEGC2019), arXiv:1902.03634. Reported on the
MEGC2019 composite (442 clips, LOSO, 3 classes): UF1 .7353, UAR .7605 (its Table III).

The input is a 28 x 28 x 3 "3-D" image of optical strain, horizontal and vertical flow between
onset and apex; three shallow convolution streams of different widths read the whole image,
their pooled maps are concatenated, average-pooled and classified by one dense layer.

Read from `flow_raw` channels 0, 1 (u, v onset->apex, pixels of the 48-px grid). Choices:
- Strain from finite differences of u, v on the 48-px grid (`layers.OpticalStrain`), then u, v
  and strain area-averaged to 28 x 28 (u, v scaled by 28/48), then min-max normalised per
  sample and channel (the paper's inputs are images); channel order u, v, strain.
- Streams: conv 3x3 with 3, 5 and 8 filters, stride 1, padding "same", each -> ReLU -> batch
  norm -> max-pool 3x3 stride 3 padding "same" (28 -> 10) -> dropout 0.5. The paper's Table I
  has neither batch norm nor dropout; the order ReLU before batch norm and the per-stream
  dropout follow the authors' PyTorch script (github.com/christy1206/STSTNet, main.py, added
  2021 beside their MATLAB layer graph; read, not copied), as does the port kept in HTNet's
  training script. That script pads the convolutions by 2 (28 -> 30) and the pooling by 1;
  both give 10 x 10 maps; "same" here keeps the maps 28 x 28 before the pooling.
- Concatenate (10 x 10 x 16) -> average-pool 2x2 stride 2 (-> 5 x 5 x 16) -> flatten (400) ->
  dense softmax.
"""
from __future__ import annotations

import keras
from keras import layers

from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.models.layers import apply_onset_apex_flow

VARIANTS = {"full": (3, 5, 8), "tiny": (1, 2, 2)}
FIELDS = ("flow_raw",)


def fields() -> tuple[str, ...]:
    return FIELDS


def apply_stream(x, filters: int, dropout: float, name: str):
    """conv 3x3 "same" -> ReLU -> batch norm -> max-pool 3x3/3 "same" -> dropout."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.MaxPooling2D(3, strides=3, padding="same", name=f"{name}_pool")(x)
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def build(num_classes: int, variant: str = "full", dropout: float = 0.5,
          normalise: str = "minmax", size: int = 28) -> keras.Model:
    """STSTNet on u, v and optical strain of the onset->apex flow in `flow_raw`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}")
    flow_raw = keras.Input((INPUT_SIZE, INPUT_SIZE, 4), name="flow_raw")
    x = apply_onset_apex_flow(flow_raw, size, strain=True, normalise=normalise)
    streams = [apply_stream(x, f, dropout, f"stream{i}")
               for i, f in enumerate(VARIANTS[variant], 1)]
    x = layers.Concatenate(name="streams_concat")(streams)
    x = layers.AveragePooling2D(2, strides=2, name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(num_classes, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model({"flow_raw": flow_raw}, out, name="ststnet")
