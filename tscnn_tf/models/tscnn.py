"""The TSCNN (paper Section II.C, Table 1) as a Keras functional model (`--model=tscnn`).

Three streams of identical structure: S (apex grey face), L (n x n block stack of the apex),
T (4-channel optical flow). Each: conv 5x5 valid -> max-pool 5x5/2 -> conv 3x3 x2 -> avg-pool
3x3/2 -> conv 3x3 x2 -> avg-pool 3x3/2 -> FC 1024; every hidden layer with PReLU (one α per
channel); the 1024-d features are concatenated (3072 for all three) -> softmax.
"""
from __future__ import annotations

import keras
from keras import layers

from tscnn_tf.features import INPUT_SIZE

STREAM_INPUTS = {"S": "apex_gray", "L": "blocks", "T": "flow"}
VARIANTS = {
    "full": {"filters": (64, 64, 64, 128, 128), "fc": 1024},  # Table 1
    "tiny": {"filters": (4, 4, 4, 8, 8), "fc": 16},            # same structure, for tests
}


def parse_streams(streams: str) -> tuple[str, ...]:
    """'L+S+T' -> ('L', 'S', 'T'); any non-empty combination of S, L, T (Table 9)."""
    parts = tuple(sorted(set(s.strip().upper() for s in streams.split("+") if s.strip())))
    if not parts or any(p not in STREAM_INPUTS for p in parts):
        raise ValueError(f"streams must combine S, L and T with '+', got {streams!r}")
    return parts


def input_channels(stream: str, blocks: int) -> int:
    return {"S": 1, "L": blocks * blocks, "T": 4}[stream]


def apply_conv(x, filters: int, kernel: int, padding: str, name: str):
    """Convolution at stride 1 followed by PReLU with one α per channel."""
    x = layers.Conv2D(filters, kernel, strides=1, padding=padding, name=f"{name}_conv")(x)
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x)


def apply_stream(x, filters, fc: int, dropout: float, name: str):
    """One recognition stream of Table 1: 5 convolutions, 3 poolings, 1 fully connected layer."""
    f1, f2, f3, f4, f5 = filters
    x = apply_conv(x, f1, 5, "valid", f"{name}_conv1")                  # 48 -> 44
    x = layers.MaxPooling2D(5, strides=2, name=f"{name}_maxpool1")(x)  # 44 -> 20
    x = apply_conv(x, f2, 3, "same", f"{name}_conv2")                   # padding 1
    x = apply_conv(x, f3, 3, "same", f"{name}_conv3")
    x = layers.AveragePooling2D(3, strides=2, name=f"{name}_avgpool1")(x)  # 20 -> 9
    x = apply_conv(x, f4, 3, "same", f"{name}_conv4")
    x = apply_conv(x, f5, 3, "same", f"{name}_conv5")
    x = layers.AveragePooling2D(3, strides=2, name=f"{name}_avgpool2")(x)  # 9 -> 4
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(fc, name=f"{name}_fc1")(x)
    x = layers.PReLU(name=f"{name}_fc1_prelu")(x)
    return layers.Dropout(dropout, name=f"{name}_fc1_dropout")(x)


def build_tscnn(num_classes: int, streams: str = "L+S+T", blocks: int = 3,
                variant: str = "full", dropout: float = 0.5) -> keras.Model:
    """The TSCNN with the given streams; inputs are named apex_gray, blocks and flow."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    inputs, features = {}, []
    for stream in parse_streams(streams):
        name = STREAM_INPUTS[stream]
        inputs[name] = keras.Input((INPUT_SIZE, INPUT_SIZE, input_channels(stream, blocks)), name=name)
        features.append(apply_stream(inputs[name], spec["filters"], spec["fc"], dropout, stream))
    fused = features[0] if len(features) == 1 else layers.Concatenate(name="fc2_concat")(features)
    fused = layers.Dropout(dropout, name="fc2_dropout")(fused)
    # float32 softmax even under a mixed-precision policy, for a stable loss.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="output")(fused)
    return keras.Model(inputs, outputs, name="tscnn_" + "".join(parse_streams(streams)))


def fields(streams: str = "L+S+T") -> tuple[str, ...]:
    """The record fields the TSCNN with these streams reads."""
    return tuple(STREAM_INPUTS[s] for s in parse_streams(streams))


def build(num_classes: int, streams: str = "L+S+T", blocks: int = 3, variant: str = "full",
          dropout: float = 0.5) -> keras.Model:
    """The registry's builder: `build_tscnn`."""
    return build_tscnn(num_classes, streams, blocks, variant, dropout)


def load_s_stream(model, path) -> int:
    """Copy the weights of every `S_*` layer of the pretrained model at `path` into `model`.

    Returns the number of layers copied; raises ValueError when the shapes do not match (a
    model pretrained at another size).
    """
    pretrained = keras.saving.load_model(path, compile=False)
    source = {layer.name: layer for layer in pretrained.layers if layer.name.startswith("S_")}
    copied = 0
    for layer in model.layers:
        if layer.name in source and layer.weights:
            new = source[layer.name].get_weights()
            if [w.shape for w in new] != [tuple(w.shape) for w in layer.weights]:
                raise ValueError(f"{path}: layer {layer.name} has shapes "
                                 f"{[w.shape for w in new]}, the model "
                                 f"{[tuple(w.shape) for w in layer.weights]} "
                                 "(pretrained with another --variant?)")
            layer.set_weights(new)
            copied += 1
    if not copied:
        raise ValueError(f"{path}: no S-stream layer to copy (does the model use stream S?)")
    return copied
