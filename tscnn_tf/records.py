"""The record format: one feature spec, used by the writer (`to_example`) and reader (`parse`)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tscnn_tf.features import INPUT_SIZE

# key -> (dtype, shape); `None` in a shape is the block-stack depth n².
SPEC = {
    "apex_gray": (tf.float32, (INPUT_SIZE, INPUT_SIZE, 1)),
    "blocks": (tf.float32, (INPUT_SIZE, INPUT_SIZE, None)),
    "flow": (tf.float32, (INPUT_SIZE, INPUT_SIZE, 4)),      # min-max normalised (eq. 5)
    "flow_raw": (tf.float32, (INPUT_SIZE, INPUT_SIZE, 4)),  # pixels of the 48 x 48 grid
    "label": (tf.int64, ()),
    "label_name": (tf.string, ()),
    "subject": (tf.string, ()),
    "sample_id": (tf.string, ()),
    "db": (tf.string, ()),
    "onset": (tf.int64, ()),
    "apex_given": (tf.int64, ()),  # -1 when the database gives none
    "apex_spotted": (tf.int64, ()),
    "apex_used": (tf.int64, ()),
    "offset": (tf.int64, ()),
    "params": (tf.string, ()),     # FeatureConfig.fingerprint() of the extraction
}


def feature_spec(blocks: int) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec for records made with an n x n block stack (n = `blocks`)."""
    return {key: tf.io.FixedLenFeature(
                tuple(blocks * blocks if d is None else d for d in shape), dtype)
            for key, (dtype, shape) in SPEC.items()}


def to_example(features: dict) -> bytes:
    """Serialise one sample's feature dict (as made by `features.sample_features`)."""
    out = {}
    for key, (dtype, _) in SPEC.items():
        value = features[key]
        if dtype == tf.float32:
            out[key] = tf.train.Feature(float_list=tf.train.FloatList(
                value=np.asarray(value, np.float32).ravel()))
        elif dtype == tf.int64:
            out[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            out[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
    return tf.train.Example(features=tf.train.Features(feature=out)).SerializeToString()


def parse(serialized: tf.Tensor, blocks: int) -> dict[str, tf.Tensor]:
    """Parse one serialised record into tensors of the shapes in SPEC."""
    return tf.io.parse_single_example(serialized, feature_spec(blocks))


def write_shard(path: str, examples: list[bytes]) -> None:
    """Write serialised examples to `path` (call with a temporary name, then rename)."""
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example)
