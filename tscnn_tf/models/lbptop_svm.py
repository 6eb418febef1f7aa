"""LBP-TOP + linear SVM (`--model=lbptop_svm`), the baseline of every micro-expression table.

Features: `tscnn_tf.lbptop.lbptop_histograms` of the aligned grey clip, stored by the feature
stage as the record field `lbptop` (5 x 5 blocks, radii 1, 1, 4, 8 points, u2: 4425 values).
Reported as the MEGC2019 baseline (See, Yap, Li, Hong, Wang, "MEGC 2019 - the second facial
micro-expressions grand challenge", FG 2019; LBP-TOP of Zhao & Pietikäinen 2007): composite
(442 clips, LOSO, 3 classes) UF1 .5882, UAR .5785.

The SVM is a Keras model so that it trains in the LOSO and exports, predicts and spots like
every other model:
- One dense layer (the class margins w_k·x + b_k) on the histograms times `scale` (4:
  `HISTOGRAM_SCALE`), L2 weight penalty `l2` (the SVM's ||w||² term, 1 / (2C) per sample in
  SVM terms; default 1e-4), trained by gradient descent.
- Loss: the Crammer-Singer multi-class squared hinge, mean over samples of
  max(0, 1 + max_{j≠y} m_j - m_y)², where m are the margins (`crammer_singer_squared_hinge`).
  The libsvm/LIBLINEAR baselines used one-vs-one or one-vs-rest; this is the single-machine
  multi-class form, chosen because it depends only on margin differences.
- Output: softmax over the margins, as every model of this toolkit returns "probabilities".
  They are not calibrated (no Platt scaling): a ranking of the classes by margin, nothing more.
  Because the loss uses only margin differences, it is computed exactly from the softmax output
  (m_j - m_y = log p_j - log p_y), so the model has one output like the others.
"""
from __future__ import annotations

import keras
from keras import layers, ops, regularizers

from tscnn_tf.lbptop import lbptop_size
from tscnn_tf.models.layers import PACKAGE

FIELDS = ("lbptop",)
# The histograms are multiplied by 4 before the margins: each 59-bin histogram sums to 1, so
# unscaled the LOSO's shared SGD (lr 1e-3, one step per epoch: no x10 for this model) barely
# moves the margins. Chosen on the synthetic main command by the mean best validation loss over
# the folds (validation subjects only): scale 1: 0.963 (loss hardly below its start), 4: 0.674,
# 10: 0.965 (unstable), 59 (mean 1 per value): 1797 (diverges at the first step). A linear
# SVM solved exactly (LIBLINEAR) is invariant to the scale up to its C.
HISTOGRAM_SCALE = 4.0
LOG_FLOOR = 1e-30  # log p is read as at least log(1e-30): margins gaps beyond ~69 saturate


def fields() -> tuple[str, ...]:
    return FIELDS


@keras.saving.register_keras_serializable(PACKAGE)
def crammer_singer_squared_hinge(y_true, y_pred):
    """Squared multi-class hinge on the margins behind softmax probabilities `y_pred`;
    `y_true` class indices (sparse, as the LOSO feeds them) or one-hot rows."""
    num_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
        one_hot = ops.cast(y_true, y_pred.dtype)
    else:
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), num_classes,
                              dtype=y_pred.dtype)
    log_p = ops.log(ops.maximum(y_pred, LOG_FLOOR))
    true = ops.sum(log_p * one_hot, axis=-1)
    rival = ops.max(log_p - 1e9 * one_hot, axis=-1)
    return ops.square(ops.relu(1.0 + rival - true))


def build(num_classes: int, features: int | None = None, l2: float = 1e-4,
          scale: float = HISTOGRAM_SCALE) -> keras.Model:
    """Linear SVM on the `lbptop` histograms (`features` long; default the LBP-TOP defaults'),
    each value multiplied by `scale` first."""
    x = keras.Input((features or lbptop_size(),), name="lbptop")
    scaled = layers.Rescaling(scale, name="histogram_scale")(x)
    margins = layers.Dense(num_classes, kernel_regularizer=regularizers.L2(l2),
                           name="svm_margins")(scaled)
    out = layers.Softmax(dtype="float32", name="output")(margins)
    return keras.Model({"lbptop": x}, out, name="lbptop_svm")
