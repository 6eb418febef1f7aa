"""HTNet, the Hierarchical Transformer Network (`--model=htnet`).

Wang, Zhang, Luo, Sankaranarayana, "HTNet for micro-expression recognition", Neurocomputing 602
(2024) 128196, arXiv:2307.14637. Reported on the MEGC2019 composite (442 clips, LOSO,
3 classes): UF1 .8603, UAR .8475.

The paper: the onset->apex optical flow (u, v and optical strain, as STSTNet's input) is cut
into four facial areas, left eye, right eye, left lip, right lip; transformer layers attend
locally inside small blocks of patches, block-aggregation layers (convolution, norm, max-pool)
merge neighbouring blocks level by level up to the whole face, and the mean of the last level's
tokens is classified.

Choices (sizes from the authors' public training script where the paper leaves them open; the
code here is this toolkit's own):
- Input `flow_raw` channels 0, 1; strain on the 48-px grid; u, v, strain area-averaged to
  28 x 28 (u, v times 28/48); min-max normalised per sample and channel.
- Regions: the authors crop 14 x 14 around five facial landmarks of the 28 x 28 image, centres
  clamped to [7, 21]. Our alignment (paper eq. 1-2, `face.face_geometry`) fixes the face in
  the 48-px crop: inner eye corners at (16, 16) and (32, 16), subnasale at y = 32 (6 x 6 grid
  of 8-px blocks). Eye centres then fall near (8, 16) and (40, 16), mouth corners near
  (12.5, 39.5) and (35.5, 39.5); on the 28-px grid, clamped as the authors do, the centres are
  (7, 9), (21, 9), (7, 21), (21, 21), so the static crops are rows 2-16 (eyes) and 14-28 (lips),
  columns 0-14 (left) and 14-28 (right) (`REGIONS`; image left = the subject's right).
- The four 14 x 14 areas are tiled into one 28 x 28 image in facial order (eyes on top, left on
  the left).
- Patches 7 x 7, embedded by one dense layer to `dim` (a 4 x 4 token grid); `levels` = 3
  hierarchy levels; at level l the grid is split into 2^l x 2^l blocks of equal token count and
  self-attention runs inside each block; dims dim, 2 dim, 4 dim and heads h, 2h, 4h; `depths`
  (2, 2, 10) transformer blocks per level; dim 256, 3 heads (head size dim // heads).
  With the authors' 28 px and patch 7 every block holds one token, so tokens meet only in the
  aggregation convolutions (as in their code); a smaller `patch` gives true local attention.
- Transformer block: pre-norm (layer norm over channels), multi-head attention (queries, keys,
  values without bias, output projection with bias), residual; feed-forward dense 4 x dim, GELU,
  dense dim, residual; dropout 0. A learned positional offset per position in a block, shared
  by the channels (as the authors').
- Aggregation between levels: conv 3x3 "same" to the next dim -> layer norm -> max-pool 3x3
  stride 2 "same" (Keras pads the end only, PyTorch's padding 1 both sides).
- Head: layer norm -> mean over tokens -> dense softmax.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.models.layers import PACKAGE, apply_onset_apex_flow

SIZE, REGION = 28, 14
# name -> (top row, left column) of a REGION x REGION area on the SIZE x SIZE flow image
REGIONS = {"left_eye": (2, 0), "right_eye": (2, 14), "left_lip": (14, 0), "right_lip": (14, 14)}
VARIANTS = {
    "full": {"patch": 7, "dim": 256, "heads": 3, "depths": (2, 2, 10)},
    "tiny": {"patch": 7, "dim": 8, "heads": 2, "depths": (1, 1, 1)},
}
FIELDS = ("flow_raw",)


def fields() -> tuple[str, ...]:
    return FIELDS


@keras.saving.register_keras_serializable(PACKAGE)
class FacialRegions(layers.Layer):
    """The four REGION x REGION areas of REGIONS tiled into one 2·REGION square (eyes on top)."""

    def call(self, x):
        crops = {k: x[:, r:r + REGION, c:c + REGION] for k, (r, c) in REGIONS.items()}
        top = ops.concatenate([crops["left_eye"], crops["right_eye"]], axis=2)
        bottom = ops.concatenate([crops["left_lip"], crops["right_lip"]], axis=2)
        return ops.concatenate([top, bottom], axis=1)


@keras.saving.register_keras_serializable(PACKAGE)
class Patches(layers.Layer):
    """(B, H, W, C) -> (B, H/p, W/p, p·p·C): each p x p patch flattened."""

    def __init__(self, patch: int, **kwargs):
        super().__init__(**kwargs)
        self.patch = int(patch)

    def call(self, x):
        p, (h, w, c) = self.patch, x.shape[1:]
        x = ops.reshape(x, (-1, h // p, p, w // p, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h // p, w // p, p * p * c))

    def get_config(self):
        return {**super().get_config(), "patch": self.patch}


@keras.saving.register_keras_serializable(PACKAGE)
class BlockTransformer(layers.Layer):
    """`depth` pre-norm transformer blocks whose attention stays inside each of the
    blocks x blocks equal blocks of a (B, H, W, C) token grid."""

    def __init__(self, blocks: int, depth: int, heads: int, mlp_mult: int = 4,
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.blocks, self.depth, self.heads = int(blocks), int(depth), int(heads)
        self.mlp_mult, self.dropout = int(mlp_mult), float(dropout)

    def build(self, input_shape):
        _, h, w, dim = input_shape
        self.grid = (h // self.blocks, w // self.blocks)
        seq = self.grid[0] * self.grid[1]
        self.position = self.add_weight(shape=(seq, 1), initializer="random_normal",
                                        name="position")
        head = dim // self.heads
        self.layers_ = []
        for i in range(self.depth):
            parts = [
                layers.LayerNormalization(epsilon=1e-5, name=f"attn_norm{i}"),
                layers.MultiHeadAttention(self.heads, head, dropout=self.dropout,
                                          use_bias=False, output_shape=dim, name=f"attn{i}"),
                layers.LayerNormalization(epsilon=1e-5, name=f"ff_norm{i}"),
                layers.Dense(dim * self.mlp_mult, activation="gelu", name=f"ff_in{i}"),
                layers.Dense(dim, name=f"ff_out{i}"),
                layers.Dropout(self.dropout)]
            parts[0].build((None, seq, dim))
            parts[1].build((None, seq, dim), (None, seq, dim))
            parts[2].build((None, seq, dim))
            parts[3].build((None, seq, dim))
            parts[4].build((None, seq, dim * self.mlp_mult))
            self.layers_.append(parts)

    def call(self, x, training=None):
        _, h, w, dim = x.shape
        b, (gh, gw) = self.blocks, self.grid
        t = ops.reshape(x, (-1, b, gh, b, gw, dim))
        t = ops.reshape(ops.transpose(t, (0, 1, 3, 2, 4, 5)), (-1, gh * gw, dim))
        t = t + ops.cast(self.position, t.dtype)
        for norm1, attn, norm2, ff_in, ff_out, drop in self.layers_:
            y = norm1(t)
            t = t + attn(y, y, training=training)
            t = t + drop(ff_out(drop(ff_in(norm2(t)), training=training)), training=training)
        t = ops.transpose(ops.reshape(t, (-1, b, b, gh, gw, dim)), (0, 1, 3, 2, 4, 5))
        return ops.reshape(t, (-1, h, w, dim))

    def get_config(self):
        return {**super().get_config(), "blocks": self.blocks, "depth": self.depth,
                "heads": self.heads, "mlp_mult": self.mlp_mult, "dropout": self.dropout}


def apply_aggregation(x, dim: int, name: str):
    """Conv 3x3 -> layer norm -> max-pool 3x3/2: merges neighbouring blocks, halves the grid."""
    x = layers.Conv2D(dim, 3, padding="same", name=f"{name}_conv")(x)
    x = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm")(x)
    return layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)


def build(num_classes: int, variant: str = "full", patch: int | None = None,
          dim: int | None = None, heads: int | None = None, depths=None,
          dropout: float = 0.0, normalise: str = "minmax") -> keras.Model:
    """HTNet on the four facial areas of the onset->apex u, v, strain in `flow_raw`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    patch, dim, heads = patch or spec["patch"], dim or spec["dim"], heads or spec["heads"]
    depths = tuple(depths or spec["depths"])
    levels = len(depths)
    tokens = SIZE // patch
    if SIZE % patch or tokens % 2 ** (levels - 1):
        raise ValueError(f"patch {patch} must divide {SIZE} into a grid that {levels} levels "
                         f"can halve {levels - 1} times")
    flow_raw = keras.Input((INPUT_SIZE, INPUT_SIZE, 4), name="flow_raw")
    x = apply_onset_apex_flow(flow_raw, SIZE, strain=True, normalise=normalise)
    x = FacialRegions(name="facial_regions")(x)
    x = Patches(patch, name="patches")(x)
    x = layers.Dense(dim, name="patch_embedding")(x)
    for i, level in enumerate(reversed(range(levels))):
        mult = 2 ** i
        x = BlockTransformer(2 ** level, depths[i], heads * mult, dropout=dropout,
                             name=f"level{i}_transformer")(x)
        if level:
            x = apply_aggregation(x, dim * mult * 2, f"level{i}_aggregate")
    x = layers.LayerNormalization(epsilon=1e-5, name="head_norm")(x)
    x = layers.GlobalAveragePooling2D(name="head_mean")(x)
    out = layers.Dense(num_classes, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model({"flow_raw": flow_raw}, out, name="htnet")
