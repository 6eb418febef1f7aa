"""tf.data input pipelines and the ×10 training augmentation of Section III.B.

Augmentation is geometric and consistent across the three inputs: the block stack is
reassembled into the face before it is flipped or rotated, and the raw flow field is
resampled *and* its (u, v) vectors are transformed (a flip negates u, a rotation rotates
(u, v)) before the min-max normalisation of eq. 5 is applied again.
"""
from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import tensorflow as tf

from tscnn_tf import records
from tscnn_tf.artifacts import is_partial
from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.model import STREAM_INPUTS

# The record fields a model may read (its Keras inputs are named after them); the rest of a
# record (label, subject, sample id, apex bookkeeping) is parsed always.
FIELDS = ("apex_gray", "blocks", "flow", "flow_raw", "lbptop")
IMAGE_FIELDS = ("apex_gray", "blocks", "flow", "flow_raw")  # what the x10 expansion transforms

# (horizontal flip, rotation in degrees): the original, its flip, ±5° and ±10°, and their flips.
AUGMENTATIONS = tuple((flip, angle) for flip in (False, True) for angle in (0, 5, -5, 10, -10))


def load_manifest(records_dir) -> dict:
    """The validated manifest of a records folder (`tscnn_tf.manifest.load`)."""
    from tscnn_tf import manifest
    path = Path(records_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {records_dir}: run the feature stage first")
    return manifest.load(records_dir)


def field_names(fields) -> tuple[str, ...]:
    """Record field names from field names or TSCNN stream letters ('S' -> 'apex_gray')."""
    return tuple(dict.fromkeys(STREAM_INPUTS.get(f, f) for f in fields))


def stored_fields(manifest: dict) -> tuple[str, ...]:
    """The fields a model may read that every record of `manifest` holds (`lbptop` only in
    records of this version, and only when every clip had the frames for it)."""
    return tuple(f for f in records.manifest_fields(manifest) if f in FIELDS)


def parse_spec(blocks: int, fields) -> dict:
    """The parsing spec of the record fields `fields` (and flow_raw, from which augmentation
    renormalises flow) beside every non-feature key."""
    wanted = set(fields) | ({"flow_raw"} if "flow" in fields else set())
    spec = records.feature_spec(blocks, [f for f in wanted if f in records.OPTIONAL])
    return {k: v for k, v in spec.items() if k not in FIELDS or k in wanted}


def record_files(records_dir) -> list[str]:
    """The shards of a records folder: those its manifest lists (a stray *.tfrecord beside them
    is not read), or every finished *.tfrecord of a folder without a manifest."""
    from tscnn_tf import manifest
    if (Path(records_dir) / manifest.MANIFEST).is_file():
        listed = manifest.load(records_dir)
        return [str(manifest.shard_path(records_dir, s)) for s in manifest.shards_of(listed)]
    files = sorted(str(p) for p in Path(records_dir).glob("*.tfrecord") if not is_partial(p))
    if not files:
        raise FileNotFoundError(f"no *.tfrecord files in {records_dir}")
    return files


def point_matrix(flip: bool, angle_deg: float) -> tf.Tensor:
    """2x2 M with p_out - c = M (p_in - c) in image coordinates (x right, y down).

    A positive angle turns the content counter-clockwise on screen; the flip mirrors x.
    Flow vectors are displacements in the same coordinates, so they map as v_out = M v_in.
    """
    a = math.radians(angle_deg)
    rotation = tf.constant([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], tf.float32)
    mirror = tf.constant([[-1.0 if flip else 1.0, 0.0], [0.0, 1.0]], tf.float32)
    return rotation @ mirror


def warp(image: tf.Tensor, M: tf.Tensor) -> tf.Tensor:
    """Resample an (H, W, C) image so that content at p moves to c + M (p - c)."""
    size = tf.cast(tf.shape(image)[0], tf.float32)
    c = (size - 1.0) / 2.0
    inv = tf.linalg.inv(M)  # output pixel -> input pixel
    offset = tf.constant([1.0, 1.0]) * c - tf.linalg.matvec(inv, tf.constant([1.0, 1.0]) * c)
    transform = tf.stack([inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1], 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    return out[0]


def blocks_to_face(blocks: tf.Tensor, n: int) -> tf.Tensor:
    """(48, 48, n²) row-major block stack -> (48n, 48n, 1) face."""
    x = tf.reshape(blocks, (INPUT_SIZE, INPUT_SIZE, n, n))
    x = tf.transpose(x, (2, 0, 3, 1))
    return tf.reshape(x, (n * INPUT_SIZE, n * INPUT_SIZE, 1))


def face_to_blocks(face: tf.Tensor, n: int) -> tf.Tensor:
    """(48n, 48n, 1) face -> (48, 48, n²) row-major block stack."""
    x = tf.reshape(face, (n, INPUT_SIZE, n, INPUT_SIZE))
    x = tf.transpose(x, (1, 3, 0, 2))
    return tf.reshape(x, (INPUT_SIZE, INPUT_SIZE, n * n))


def minmax_normalize(x: tf.Tensor, mode: str = "channel") -> tf.Tensor:
    """Eq. 5 per channel or per flow field (u and v together), as flow.minmax_normalize; a flat
    group becomes 0."""
    groups = tf.reshape(x, (INPUT_SIZE, INPUT_SIZE, -1, 1 if mode == "channel" else 2))
    lo = tf.reduce_min(groups, axis=(0, 1, 3), keepdims=True)
    span = tf.reduce_max(groups, axis=(0, 1, 3), keepdims=True) - lo
    return tf.reshape(tf.math.divide_no_nan(groups - lo, span), tf.shape(x))


def transform_flow(flow_raw: tf.Tensor, M: tf.Tensor) -> tf.Tensor:
    """Move the (48, 48, 4) raw field spatially and map each (u, v) pair through M."""
    moved = warp(flow_raw, M)
    pairs = tf.reshape(moved, (INPUT_SIZE, INPUT_SIZE, 2, 2))
    return tf.reshape(tf.linalg.matvec(M, pairs), (INPUT_SIZE, INPUT_SIZE, 4))


def augment(example: dict, flip: bool, angle: float, n: int, flow_norm: str = "channel") -> dict:
    """One of the ten training variants of a parsed record; a pure function of its inputs.
    The image fields it holds are transformed; any other field (lbptop) is kept as it is."""
    M = point_matrix(flip, angle)
    out = dict(example)
    if "apex_gray" in example:
        out["apex_gray"] = warp(example["apex_gray"], M)
    if "blocks" in example:
        out["blocks"] = face_to_blocks(warp(blocks_to_face(example["blocks"], n), M), n)
    if "flow_raw" in example:
        out["flow_raw"] = transform_flow(example["flow_raw"], M)
        if "flow" in example:
            out["flow"] = minmax_normalize(out["flow_raw"], flow_norm)
    return out


def expand_x10(example: dict, n: int, flow_norm: str = "channel") -> tf.data.Dataset:
    """The ten variants of one example (Section III.B, Fig. 8) as a small dataset."""
    variants = [augment(example, flip, angle, n, flow_norm) for flip, angle in AUGMENTATIONS]
    return tf.data.Dataset.from_tensor_slices(
        {k: tf.stack([v[k] for v in variants]) for k in variants[0]})


def to_model_inputs(example: dict, fields):
    """({field: tensor} for the model's input fields, label); `fields` may be stream letters."""
    return {f: example[f] for f in field_names(fields)}, example["label"]


def file_versions(files) -> tuple[tuple, ...]:
    """(path, inode, size, mtime) of each file: records re-made in place (written atomically,
    so under a new inode) are other records to `sample_pool`."""
    return tuple((str(f), st.st_ino, st.st_size, st.st_mtime_ns)
                 for f, st in ((f, os.stat(f)) for f in files))


def sample_pool(files, blocks: int, fields: tuple[str, ...], augment_x10: bool,
                flow_norm: str = "channel") -> tf.data.Dataset:
    """Every record of `files` parsed (`fields` and the bookkeeping keys) into memory in
    sample-id order (`in_sample_order`), and when `augment_x10` ×10 expanded and cached on its
    first full pass.

    The work is deterministic and the same for every fold, so a LOSO does it once per process
    instead of once per fold (on the composite ~6 s a fold: `bench` models.sample_pool); each fold then filters its
    subjects out of the cache. Filtering after the expansion keeps the same samples in the same
    order, so the folds' batches are unchanged (tests/test_training_speed.py). The two most
    recent pools are kept (a fold's training and validation ones); on the composite, x10, the
    flow models' pool holds ~160 MB.
    """
    return _pool(file_versions(files), blocks, tuple(fields), augment_x10, flow_norm)


@functools.lru_cache(maxsize=2)
def _pool(versions, blocks, fields, augment_x10, flow_norm) -> tf.data.Dataset:
    spec = parse_spec(blocks, fields)
    ds = tf.data.TFRecordDataset([v[0] for v in versions])
    ds = in_sample_order(ds.map(lambda s: tf.io.parse_single_example(s, spec),
                                num_parallel_calls=tf.data.AUTOTUNE))
    if not augment_x10:
        return ds  # in memory already (in_sample_order's tensors): a cache would copy them
    return ds.flat_map(lambda e: expand_x10(e, blocks, flow_norm)).cache()


def in_sample_order(parsed: tf.data.Dataset) -> tf.data.Dataset:
    """Parsed records sorted by sample id. The feature stage writes records in the order its
    worker processes finish them (Beam in any order), so the same records can lie in other
    orders in two extractions; sorted, a fold's batches, and so its weights, depend on the
    records' content alone."""
    examples = list(parsed)
    if not examples:
        return parsed
    order = sorted(range(len(examples)), key=lambda i: examples[i]["sample_id"].numpy())
    return tf.data.Dataset.from_tensor_slices(
        {k: tf.stack([examples[i][k] for i in order]) for k in examples[0]})


def make_dataset(files: list[str], blocks: int, fields, subjects=None,
                 training: bool = False, augment_x10: bool = True, batch_size: int = 32,
                 shuffle_buffer: int = 4096, seed: int = 0, repeat: bool = False,
                 keep_meta: bool = False, flow_norm: str = "channel",
                 autotune: bool = False, stem=None) -> tf.data.Dataset:
    """Batches of ({input name: tensor}, label) from the records of `subjects` (all if None).

    `fields`: the record fields the model reads (its input names), or TSCNN stream letters;
    only these are parsed. keep_meta=True yields the whole parsed example instead (for
    predictions with provenance). flow_norm: how the records' flow was normalised (eq. 5), so
    augmented flow is renormalised the same way. A model reading no image field (lbptop) is not
    expanded x10: its features cannot be flipped or rotated. autotune=True keeps tf.data's
    autotuning on (TensorFlow's default; `bench` times it beside the fixed threads used here).
    `stem`: a model's weight-free front (`models.stem.split`), run once on each sample before
    the fold's cache; the batches then hold its outputs instead of the fields.
    """
    fields = field_names(fields)
    augment_x10 = training and augment_x10 and any(f in IMAGE_FIELDS for f in fields)
    ds = sample_pool(files, blocks, fields, augment_x10, flow_norm)
    if subjects is not None:
        wanted = tf.constant(sorted(subjects))
        ds = ds.filter(lambda e: tf.reduce_any(tf.equal(e["subject"], wanted)))
    if not keep_meta:
        ds = ds.map(lambda e: to_model_inputs(e, fields), num_parallel_calls=tf.data.AUTOTUNE)
        if stem is not None:  # once per sample, not in every epoch's steps
            ds = ds.batch(256).map(lambda x, y: (stem(x, training=False), y)).unbatch()
    # The fold's own cache: later epochs only shuffle and batch (filtering the pool each epoch
    # cost more than the shuffle).
    ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    # Overlap input work with training steps.
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds if autotune else ds.with_options(fixed_threads())


def fixed_threads() -> tf.data.Options:
    """Options that switch tf.data's autotuning off (AUTOTUNE then takes TensorFlow's fixed
    defaults).

    After the first epoch the pipeline only shuffles cached tensors, so there is nothing left to
    tune, but the autotuner's background work competes with the training step for the cores; on
    2 CPU cores it made OFF-ApexNet's steps ~1.7x slower (`python -m tscnn_tf.bench
    --sections=models` times both, docs/speed.md). The samples and their order are the same
    either way (deterministic maps, a seeded shuffle: tests/test_training_speed.py).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options
