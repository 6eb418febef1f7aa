"""The learned spotter's temporal model: per-sample micro and macro scores from the motion
features of `spot_features` (a sequence of any length).

A 1-D convolutional network over time, non-causal (a frame is judged with what comes after
it, as the MEGC protocol allows): the features standardised with the training subjects'
statistics, a 1x1 projection, residual blocks of dilated convolutions (dilations 1, 2, 4, 8,
16: 63 samples of context, about 3 s at 20 samples a second, enough for a macro-expression),
and two sigmoid scores. Kept to layers a numpy forward pass can run (`forward_numpy`), so
spotting a stream needs no TensorFlow. (Outside `tscnn_tf.models`, whose registry of clip
models imports Keras: `spot --spotter` must start without it.)
"""
from __future__ import annotations

import numpy as np

OUTPUTS = ("micro", "macro")


def apply_residual_block(x, width: int, dilation: int, dropout: float, name: str):
    """x + conv(relu(conv(x))) with a dilated 3-tap convolution first."""
    import keras
    y = keras.layers.Conv1D(width, 3, padding="same", dilation_rate=dilation,
                            activation="relu", name=f"{name}_dilated")(x)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = keras.layers.Conv1D(width, 1, name=f"{name}_mix")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def build_spotter(num_features: int, width: int = 32, dilations=(1, 2, 4, 8, 16),
                  dropout: float = 0.1, seed: int = 0, mean=None, variance=None):
    """keras.Model: (batch, time, num_features) -> (batch, time, 2) scores (micro, macro).
    `mean` and `variance` (per feature) standardise the input: the training data's."""
    import keras
    keras.utils.set_random_seed(seed)
    mean = np.zeros(num_features) if mean is None else np.asarray(mean)
    variance = np.ones(num_features) if variance is None else np.asarray(variance)
    inputs = keras.Input((None, num_features), name="features")
    x = keras.layers.Normalization(axis=-1, mean=mean.tolist(), variance=variance.tolist(),
                                   name="standardise")(inputs)
    x = keras.layers.Conv1D(width, 1, activation="relu", name="project")(x)
    for d in dilations:
        x = apply_residual_block(x, width, d, dropout, name=f"block{d}")
    x = keras.layers.Activation("relu", name="relu")(x)
    outputs = keras.layers.Conv1D(len(OUTPUTS), 1, activation="sigmoid", name="scores")(x)
    return keras.Model(inputs, outputs, name="spotter")


def weights_of(model) -> dict[str, np.ndarray]:
    """The model's weights by layer name, for `forward_numpy` (and spotter.npz)."""
    out = {}
    for layer in model.layers:
        if layer.name == "standardise":
            out["standardise/mean"] = np.asarray(layer.mean).reshape(-1)
            out["standardise/variance"] = np.asarray(layer.variance).reshape(-1)
        elif hasattr(layer, "kernel"):
            out[f"{layer.name}/kernel"] = np.asarray(layer.kernel)
            out[f"{layer.name}/bias"] = np.asarray(layer.bias)
    return out


def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, dilation: int = 1) -> np.ndarray:
    """'same' 1-D convolution of (time, in) with a (taps, in, out) kernel."""
    taps = kernel.shape[0]
    if taps == 1:
        return x @ kernel[0] + bias
    pad = dilation * (taps - 1) // 2
    padded = np.pad(x, ((pad, dilation * (taps - 1) - pad), (0, 0)))
    out = np.broadcast_to(bias, (x.shape[0], kernel.shape[2])).copy()
    for tap in range(taps):
        out += padded[tap * dilation:tap * dilation + x.shape[0]] @ kernel[tap]
    return out


def forward_numpy(weights: dict[str, np.ndarray], features: np.ndarray,
                  dilations=(1, 2, 4, 8, 16)) -> np.ndarray:
    """The model's scores (time, 2) for one sequence (time, features), in numpy (float32)."""
    x = (features - weights["standardise/mean"]) / np.maximum(
        np.sqrt(weights["standardise/variance"]), 1e-7)  # as keras.layers.Normalization
    x = np.maximum(_conv(x.astype(np.float32), weights["project/kernel"],
                         weights["project/bias"]), 0)
    for d in dilations:
        y = np.maximum(_conv(x, weights[f"block{d}_dilated/kernel"],
                             weights[f"block{d}_dilated/bias"], d), 0)
        x = x + _conv(y, weights[f"block{d}_mix/kernel"], weights[f"block{d}_mix/bias"])
    x = np.maximum(x, 0)
    logits = _conv(x, weights["scores/kernel"], weights["scores/bias"])
    return np.exp(-np.logaddexp(0.0, -logits))  # the sigmoid, without overflow
