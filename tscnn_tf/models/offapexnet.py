"""OFF-ApexNet (`--model=offapexnet`).

Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition system", Signal
Processing: Image Communication 74 (2019) 129-139, doi:10.1016/j.image.2019.02.005
(arXiv:1805.08699, there with Liong first).

What the public record states (sources: docs/models.md, "Where the figures and sizes come
from"; the paper's own layer table could not be read for this toolkit):
- input: the horizontal (u) and vertical (v) optical flow between the onset and the apex frame,
  28 x 28 each ("28 x 28 x 2", STSTNet, arXiv:1902.03634v1, Table V, by the same authors);
- one CNN stream per flow component; the stream features are concatenated and classified by
  fully connected layers;
- depth 5 (the longest chain of convolution and fully connected layers) and 2.77 M parameters
  (STSTNet Table V).

Layer sizes: those of the two-stream re-implementation in
github.com/ECNU-Cross-Innovation-Lab/PRICAI2021-Off-TANet (models/off_apexnet.py; read, not
copied), of the two public re-implementations found the one that matches depth 5: per stream
conv 5x5 with 6 filters -> max-pool 2x2 stride 2 (28 -> 14) -> conv 5x5 with 16 filters ->
max-pool 2x2 stride 2 (14 -> 7) -> flatten (784); concatenated (1568) -> FC 1024 -> dropout 0.5
-> FC 1024 -> dropout 0.5 -> softmax. With 3 classes this has 2,664,475 parameters, 4 % fewer
than the 2.77 M of STSTNet Table V; none of the variants tried (valid padding, 3x3 kernels,
fusion after the first FC) gives 2.77 M either, so these sizes are the best-supported reading,
not a confirmed one. (github.com/tvaranka/meb's OffApexNet is another reading: one stream on
the 2-channel image, 3x3 kernels, a single FC 1024: depth 4.)

Choices of this toolkit, where the sources are silent or disagree:
- Read from `flow_raw` channels 0, 1 (u, v onset->apex in pixels of the 48-px grid, this
  toolkit's flow, not the paper's); 48 -> 28 by area averaging, u and v times 28/48; then
  min-max normalised per sample and channel (`normalise="minmax"`: the paper trains on flow
  images); `normalise="none"` keeps pixels.
- Padding "same" in both convolutions (the 28 -> 14 -> 7 sizes above).
- ReLU after each convolution and each hidden FC (the Off-TANet re-implementation has no
  activation after its convolutions).
- Dropout 0.5 after each hidden FC (as that re-implementation; `dropout` changes it).
- Weights initialised by Keras' defaults (Glorot uniform, zero biases); no batch norm.
- Optimiser, learning rate, epochs and stopping: this toolkit's shared LOSO protocol, not the
  paper's.
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
