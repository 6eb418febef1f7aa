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


def op_error_reason(error) -> str:
    """The first line of a TensorFlow OpError's message without its graph-node decorations
    (`{{function_node ...}}`, `[Op:IteratorGetNext]`)."""
    import re
    text = (getattr(error, "message", "") or str(error) or type(error).__name__).splitlines()[0]
    text = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\]|\s*name:\s*$", "", text).strip(" '")
    return text or type(error).__name__


_read: dict = {}  # a shard this process read through (path, size, mtime, spec) -> its sample ids


def verify(records_dir, manifest: dict, error=None) -> None:
    """Read every shard of `records_dir` through, every record parsed with the manifest's spec,
    and check that it holds exactly the samples its manifest lists for it (`manifest.load`'s validated manifest; a sample whose shard is "" may
    be in any of them): a shard cut short, with bytes overwritten (its CRCs fail), rewritten
    with fewer or other records, or not a records file is `error` (default
    `manifest.RecordsError`) naming the shard, before anything trains on it."""
    from collections import Counter
    from tscnn_tf import manifest as manifest_lib
    error = error or manifest_lib.RecordsError
    listed: dict[str, Counter] = {}
    for entry in manifest["samples"]:
        listed.setdefault(entry["shard"], Counter())[entry["sample_id"]] += 1
    pooled, leftover = listed.pop("", Counter()), Counter()
    # The whole record is parsed, so a field of another shape or type (records of another
    # n, or made by another tool) is found here, not in the middle of training.
    spec = feature_spec(manifest["params"]["blocks"], manifest_fields(manifest))
    remedy = "extract the records again (re-run the feature stage), or copy them again"
    for shard in manifest_lib.shards_of(manifest):
        path = manifest_lib.shard_path(records_dir, shard, error)
        try:
            stat = path.stat()
        except OSError as e:
            raise error(f"record shard {path} cannot be read ({e.strerror or e}); {remedy}") \
                from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, tuple(sorted(spec)),
               manifest["params"]["blocks"])
        if key not in _read:
            found: Counter = Counter()
            try:
                ids = tf.data.TFRecordDataset(str(path)).map(
                    lambda s: tf.io.parse_single_example(s, spec)["sample_id"]).batch(4096)
                for batch in ids:
                    found.update(i.decode() for i in batch.numpy())
            except tf.errors.OpError as e:
                what = ("is damaged or truncated" if isinstance(e, tf.errors.DataLossError)
                        else "holds records that are not of the records format its manifest "
                        f"describes (n={manifest['params']['blocks']}, fields "
                        f"{', '.join(manifest_fields(manifest))}; docs/records.md)")
                raise error(f"record shard {path} {what} ({op_error_reason(e)}); {remedy}") \
                    from None
            _read[key] = found
        found = _read[key]
        wanted = listed.get(shard, Counter())
        if lost := sorted(wanted - found):
            raise error(f"record shard {path} holds {sum(found.values())} record(s), but its "
                        f"manifest lists {sum(wanted.values())}: {len(lost)} sample(s) are not "
                        f"in it (e.g. {lost[0]}); the shard was cut or rewritten: {remedy}")
        leftover.update(found - wanted)
    if lost := sorted(pooled - leftover):
        raise error(f"{len(lost)} sample(s) that {records_dir}/manifest.json lists are in none of "
                    f"its shards (e.g. {lost[0]}): a shard was cut or rewritten; {remedy}")
    if extra := sorted(leftover - pooled):
        raise error(f"the shards of {records_dir} hold {len(extra)} record(s) its manifest.json "
                    f"does not list (e.g. {extra[0]}): the records and their manifest differ; "
                    f"{remedy}")


class RecordsWriter:
    """Records the toolkit trains from, written from features made elsewhere (precomputed
    flows, other crops, another detector): shards of `samples_per_shard` records, each written
    under a temporary name, and `manifest.json` last (docs/records.md).

        with RecordsWriter("my_records", db="mydb", class_names=["neg", "pos"], blocks=3) as w:
            for clip in clips:
                w.add(sample_id=clip.id, subject=clip.subject, label=clip.label,
                      apex_gray=clip.apex, blocks=clip.blocks, flow_raw=clip.flow)
        # python -m tscnn_tf.train --records_dir=my_records

    `params` (feature parameters, `FeatureConfig` fields) default to the toolkit's with
    `blocks`; `predict` and `spot` make features with them, so give the ones closest to how
    the features were made. `flow` (eq. 5) is made from `flow_raw` when not given.
    """

    def __init__(self, output_dir, db: str, class_names, blocks: int = 3,
                 params: dict | None = None, samples_per_shard: int = 64,
                 overwrite: bool = False):
        from pathlib import Path
        from tscnn_tf.config import FeatureConfig
        self.output_dir = Path(output_dir)
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise ValueError(f"{self.output_dir} is a file, not a folder")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        old = [p.name for p in self.output_dir.iterdir()
               if p.suffix == ".tfrecord" or p.name == "manifest.json"]
        if old and not overwrite:
            raise ValueError(f"{self.output_dir} already holds records ({sorted(old)[:3]}); give "
                             "an empty folder, or overwrite=True to replace them")
        for name in old:
            (self.output_dir / name).unlink()
        self.config = FeatureConfig(**{**FeatureConfig(blocks=blocks).to_dict(),
                                       **(params or {})})
        self.db, self.class_names = str(db), [str(c) for c in class_names]
        if not self.class_names:
            raise ValueError("class_names must name at least one class")
        self.samples_per_shard = max(1, int(samples_per_shard))
        self.entries: list[dict] = []
        self.examples: list[bytes] = []
        self.shards: list[str] = []
        self.digest = __import__("hashlib").sha1()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()

    def add(self, sample_id: str, subject: str, label, apex_gray, blocks, flow_raw, flow=None,
            onset: int = -1, apex: int = -1, offset: int = -1, clip: str | None = None,
            lbptop=None) -> None:
        """One sample: `label` a class index or name; `apex_gray` the 48 x 48 grey apex face in
        [0, 1]; `blocks` its n x n blocks (48 x 48 x n², each block resized to 48 x 48, row
        by row); `flow_raw` (48 x 48 x 4: u, v of onset->apex, then apex->offset, in pixels
        of the 48-px grid); optional frame numbers, clip name and LBP-TOP histograms."""
        from tscnn_tf.flow import minmax_normalize
        from tscnn_tf.lbptop import lbptop_size
        label = self.class_names.index(label) if isinstance(label, str) else int(label)
        if not 0 <= label < len(self.class_names):
            raise ValueError(f"{sample_id}: label {label} is not an index of {self.class_names}")
        if any(e["sample_id"] == str(sample_id) for e in self.entries):
            raise ValueError(f"{sample_id}: a sample of this id was added already")
        n = self.config.blocks
        arrays = {"apex_gray": np.asarray(apex_gray, np.float32).reshape(
                      (INPUT_SIZE, INPUT_SIZE, 1)) if np.size(apex_gray) == INPUT_SIZE ** 2
                  else np.asarray(apex_gray, np.float32),
                  "blocks": np.asarray(blocks, np.float32),
                  "flow_raw": np.asarray(flow_raw, np.float32)}
        arrays["flow"] = (np.asarray(flow, np.float32) if flow is not None else
                          minmax_normalize(arrays["flow_raw"], self.config.flow_norm))
        want = {"apex_gray": (INPUT_SIZE, INPUT_SIZE, 1), "blocks": (INPUT_SIZE, INPUT_SIZE, n * n),
                "flow": (INPUT_SIZE, INPUT_SIZE, 4), "flow_raw": (INPUT_SIZE, INPUT_SIZE, 4)}
        if lbptop is not None:
            arrays["lbptop"] = np.asarray(lbptop, np.float32).ravel()
            want["lbptop"] = (lbptop_size(),)
        for key, shape in want.items():
            if arrays[key].shape != shape:
                raise ValueError(f"{sample_id}: {key} has shape {arrays[key].shape}, the records "
                                 f"take {shape}")
            if not np.all(np.isfinite(arrays[key])):
                raise ValueError(f"{sample_id}: {key} holds NaN or infinite values")
        shard = f"{self.db}-{len(self.shards):05d}.tfrecord"
        values = {"label": label, "label_name": self.class_names[label], "subject": str(subject),
                  "sample_id": str(sample_id), "db": self.db, "onset": int(onset),
                  "apex_given": -1, "apex_spotted": int(apex), "apex_used": int(apex),
                  "offset": int(offset), "params": self.config.fingerprint()}
        example = to_example({**arrays, **values})
        self.digest.update(example)
        self.examples.append(example)
        self.entries.append({k: v for k, v in values.items() if k not in ("db", "params")}
                            | {"clip": str(clip or sample_id), "shard": shard,
                               "lbptop": lbptop is not None, "warnings": []})
        if len(self.examples) >= self.samples_per_shard:
            self._flush()

    def _flush(self) -> None:
        from tscnn_tf.artifacts import atomic_write
        if not self.examples:
            return
        shard = f"{self.db}-{len(self.shards):05d}.tfrecord"
        with atomic_write(self.output_dir / shard) as partial:
            write_shard(str(partial), self.examples)
        self.shards.append(shard)
        self.examples = []

    def close(self) -> dict:
        """Write the last shard and `manifest.json`; returns the manifest."""
        import datetime
        from tscnn_tf import manifest as manifest_lib
        from tscnn_tf.artifacts import package_versions, write_json_atomic
        if not self.entries:
            raise ValueError("no sample was added: nothing to write")
        self._flush()
        entries = sorted(self.entries, key=lambda e: e["sample_id"])
        counts: dict[str, int] = {}
        for e in entries:
            counts[e["shard"]] = counts.get(e["shard"], 0) + 1
        manifest = {
            "format": manifest_lib.FORMAT_VERSION, "db": self.db,
            "class_names": self.class_names, "params": self.config.to_dict(),
            "params_fingerprint": self.config.fingerprint(),
            "fields": record_fields(entries),
            "data_fingerprint": self.digest.hexdigest()[:12],
            "num_samples": len(entries), "num_subjects": len({e["subject"] for e in entries}),
            "shards": self.shards, "shard_samples": counts, "samples": entries,
            "made_by": "tscnn_tf.records.RecordsWriter", "versions": package_versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}
        manifest_lib.validate(manifest, str(self.output_dir / manifest_lib.MANIFEST), ValueError)
        write_json_atomic(self.output_dir / manifest_lib.MANIFEST, manifest)
        return manifest
