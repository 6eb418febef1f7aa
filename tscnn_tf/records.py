"""The record format: one feature spec, used by the writer (`to_example`) and reader (`parse`).

Optional fields (`OPTIONAL`) are absent from some records: those made before the feature stage
wrote them, and those of clips they cannot describe (`lbptop` needs 9 frames). The manifest's
`fields` lists what every record of a folder holds (`manifest_fields`); `parse` reads the
always-present fields plus the optional ones asked for, so old records parse as before.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.lbptop import lbptop_size

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
    "lbptop": (tf.float32, (lbptop_size(),)),  # LBP-TOP histograms (lbptop.py's defaults)
}
OPTIONAL = ("lbptop",)
REQUIRED = tuple(key for key in SPEC if key not in OPTIONAL)


def manifest_fields(manifest: dict) -> tuple[str, ...]:
    """The fields every record of a manifest holds: its `fields`; for a manifest written before
    `fields` was recorded, what its entries say (`record_fields`), else the required ones."""
    if manifest.get("fields"):
        return tuple(manifest["fields"])
    return tuple(record_fields(manifest["samples"]) if manifest.get("samples") else REQUIRED)


def record_fields(entries: list[dict]) -> list[str]:
    """The fields every record of these manifest entries holds (an entry says `lbptop: true`
    when its record holds the histograms; entries of older versions say nothing)."""
    return [key for key in SPEC if key in REQUIRED or all(e.get(key) for e in entries)]


def feature_spec(blocks: int, fields=()) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec for records made with an n x n block stack (n = `blocks`): the required
    fields and the optional ones named in `fields` (which every record parsed must then hold)."""
    fields = set(fields or ())
    if unknown := fields - set(SPEC):
        raise ValueError(f"no record field {sorted(unknown)}; the records have {list(SPEC)}")
    return {key: tf.io.FixedLenFeature(
                tuple(blocks * blocks if d is None else d for d in shape), dtype)
            for key, (dtype, shape) in SPEC.items() if key in REQUIRED or key in fields}


def to_example(features: dict) -> bytes:
    """Serialise one sample's feature dict (as made by `features.sample_features`); an
    optional field that is None or missing is left out."""
    out = {}
    for key, (dtype, _) in SPEC.items():
        value = features.get(key) if key in OPTIONAL else features[key]
        if value is None:
            continue
        if dtype == tf.float32:
            out[key] = tf.train.Feature(float_list=tf.train.FloatList(
                value=np.asarray(value, np.float32).ravel()))
        elif dtype == tf.int64:
            out[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            out[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
    return tf.train.Example(features=tf.train.Features(feature=out)).SerializeToString()


def parse(serialized: tf.Tensor, blocks: int, fields=()) -> dict[str, tf.Tensor]:
    """Parse one serialised record into tensors of the shapes in SPEC: the required fields and
    the optional ones in `fields` (e.g. `manifest_fields(manifest)`)."""
    return tf.io.parse_single_example(serialized, feature_spec(blocks, fields))


def write_shard(path: str, examples: list[bytes]) -> None:
    """Write serialised examples to `path` (call with a temporary name, then rename)."""
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example)
