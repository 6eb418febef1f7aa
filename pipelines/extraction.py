"""The local feature stage, as a library: database -> faces -> apex -> flow (and LBP-TOP) ->
sharded TFRecords + manifest.json, in worker processes; dry runs, manifests and the checks that
refuse mixing records (also used by `pipelines.beam_extract` and `tscnn_tf.experiment`).

The command is `python -m pipelines.extract_features` (its thin entry). Shards are written under
a temporary name and renamed when complete; a re-run skips every sample already in a finished
shard made with the same parameters, so an interrupted run resumes.
"""
from __future__ import annotations

import datetime
import json
import logging
import multiprocessing
import os
from pathlib import Path

from tscnn_tf import claims, lbptop
from tscnn_tf.artifacts import (PARTIAL_PREFIX, atomic_write, check_writable_dir, disk_full,
                                free_space, megabytes, package_versions, write_json_atomic)
from tscnn_tf.databases import read_database
from tscnn_tf.errors import ToolkitError
from tscnn_tf.features import FeatureConfig, init_worker, process_sample

log = logging.getLogger("tscnn_tf")
SHARD_SUFFIX = ".tfrecord"
INDEX_SUFFIX = ".index.json"
MANIFEST = "manifest.json"
APEX_TOLERANCE = 2  # frames


class ExtractionError(ToolkitError):
    """The run cannot go on (no usable sample, records made with other parameters, ...)."""


def finished_shards(output_dir: Path) -> list[dict]:
    """Indexes of complete shards; removes leftovers of an interrupted run."""
    for leftover in output_dir.glob(PARTIAL_PREFIX + "*"):
        log.warning("removing unfinished file from an interrupted run: %s", leftover.name)
        leftover.unlink()
    indexes = []
    for index_path in sorted(output_dir.glob("*" + INDEX_SUFFIX)):
        shard = index_path.with_name(index_path.name[: -len(INDEX_SUFFIX)] + SHARD_SUFFIX)
        if not shard.is_file():  # the index is written first; its shard never got renamed
            index_path.unlink()
            continue
        indexes.append(json.loads(index_path.read_text()))
    return indexes


def clear_records(output_dir: Path) -> None:
    for pattern in ("*" + SHARD_SUFFIX, "*" + INDEX_SUFFIX, MANIFEST):
        for path in output_dir.glob(pattern):
            path.unlink()


def check_compatible(indexes: list[dict], database, config: FeatureConfig) -> None:
    """Refuse to mix records made with other parameters, classes or annotations."""
    wanted = {"params": config.to_dict(), "class_names": database.class_names, "db": database.name}
    for index in indexes:
        found = {k: index[k] for k in wanted}
        if found != wanted:
            raise ExtractionError(
                f"{index['shard']} was made with {found}, not {wanted}. Use another --output_dir, "
                "or --overwrite to replace the records.")
    current = {s.sample_id: s.fingerprint() for s in database.samples}
    stale = [e["sample_id"] for index in indexes for e in index["samples"]
             if current.get(e["sample_id"]) != e["fingerprint"]]
    if stale:
        raise ExtractionError(f"{len(stale)} recorded sample(s) no longer match the annotations "
                              f"(e.g. {stale[0]}); use --overwrite to re-extract.")


def sample_entry(sample, features: dict, shard: str) -> dict:
    keys = ("sample_id", "subject", "label", "label_name", "onset", "offset", "apex_given",
            "apex_spotted", "apex_used")
    return {**{k: features[k] for k in keys}, "clip": sample.clip, "shard": shard,
            "face_box": features.get("face_box"), "lbptop": features.get("lbptop") is not None,
            "fingerprint": sample.fingerprint(), "warnings": list(sample.warnings)}


def no_space(output_dir: Path, what: str, needed: int) -> ExtractionError:
    """The one error of a full disk under the feature stage (the unfinished file is gone)."""
    return ExtractionError(
        f"no space left on the disk of {output_dir}: {what} needed about {megabytes(needed)} "
        f"({megabytes(free_space(output_dir))} free); free some space and run the same command "
        "again: the finished shards are kept and the run resumes")


class ShardWriter:
    """Buffers serialised samples; each full buffer becomes one atomically renamed shard."""

    def __init__(self, output_dir: Path, database, config: FeatureConfig, first_number: int,
                 samples_per_shard: int):
        from tscnn_tf import records  # TensorFlow only in the writing process
        self._records = records
        self.output_dir, self.database, self.config = output_dir, database, config
        self.number, self.samples_per_shard = first_number, samples_per_shard
        self.examples: list[bytes] = []
        self.entries: list[tuple] = []
        self.written: list[dict] = []

    def add(self, sample, features: dict) -> None:
        self.examples.append(self._records.to_example(features))
        self.entries.append((sample, features))
        if len(self.examples) >= self.samples_per_shard:
            self.flush()

    def flush(self) -> None:
        if not self.examples:
            return
        name = f"{self.database.name}-{self.number:05d}"
        shard = name + SHARD_SUFFIX
        index = {"shard": shard, "db": self.database.name, "params": self.config.to_dict(),
                 "class_names": self.database.class_names,
                 "samples": [sample_entry(s, f, shard) for s, f in self.entries]}
        # The index is written first and the shard renamed last: it exists only once complete.
        try:
            with atomic_write(self.output_dir / shard) as partial:
                self._records.write_shard(str(partial), self.examples)
                write_json_atomic(self.output_dir / (name + INDEX_SUFFIX), index)
        except Exception as e:
            if disk_full(e):
                raise no_space(self.output_dir, f"the shard {shard}",
                               sum(map(len, self.examples))) from None
            raise
        self.written.append(index)
        self.number += 1
        self.examples, self.entries = [], []


def polled(results, every_s: float = 0.5):
    """The pool's results, waiting at most `every_s` at a time: a Ctrl-C that the kernel hands
    to another thread of this process (TensorFlow's, a claim's heartbeat) would otherwise wait
    for the next result, and after the last one be raised where Python ignores it."""
    while True:
        try:
            yield results.next(timeout=every_s)
        except multiprocessing.TimeoutError:
            continue
        except StopIteration:
            return


def run_samples(samples, config: FeatureConfig, num_workers: int, progress: bool):
    """Yield process_sample results, in worker processes when num_workers > 1."""
    from tqdm import tqdm
    bar = tqdm(total=len(samples), desc="features", unit="clip", disable=not progress)
    if num_workers <= 1 or len(samples) <= 1:
        init_worker(config)
        results = map(process_sample, samples)
        pool = None
    else:
        # spawn: fresh interpreters that never import TensorFlow (not fork-safe).
        pool = multiprocessing.get_context("spawn").Pool(
            num_workers, initializer=init_worker, initargs=(config, True))
        results = polled(pool.imap_unordered(process_sample, samples))
    try:
        for result in results:
            bar.update()
            yield result
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()


def apex_agreement(entries: list[dict], tolerance: int = APEX_TOLERANCE) -> dict:
    """Share of samples whose spotted apex is within ±tolerance frames of the given apex."""
    errors = [abs(e["apex_spotted"] - e["apex_given"]) for e in entries if e["apex_given"] >= 0]
    if not errors:
        return {"compared": 0}
    return {"compared": len(errors), "tolerance": tolerance,
            "within_tolerance": sum(err <= tolerance for err in errors),
            "share": sum(err <= tolerance for err in errors) / len(errors),
            "mean_abs_error": sum(errors) / len(errors)}


def face_usage(entries: list[dict], failed: list[dict]) -> dict:
    """Where each recorded sample's landmarks came from (detector, border or frame box), and the
    share of the clips that reached the face stage whose face was usable."""
    boxes: dict[str, int] = {}
    for e in entries:
        boxes[str(e.get("face_box"))] = boxes.get(str(e.get("face_box")), 0) + 1
    lost = sum(f.get("kind") == "no face found" for f in failed)
    return {"face_box": boxes, "no_face": lost,
            "usable_share": len(entries) / (len(entries) + lost) if entries or lost else None}


def dropped_rows(database) -> list[dict]:
    return [{"subject": d.subject, "clip": d.clip, "reason": d.reason, "kind": d.kind}
            for d in database.dropped]


def summarize(db: str, entries: list[dict], class_names: list[str], dropped: list[dict],
              fps: float | None = None) -> dict:
    """The dry-run / manifest counts: per class, per subject, and what was dropped and why."""
    per_class = {name: 0 for name in class_names}
    per_subject: dict[str, int] = {}
    for e in entries:
        per_class[e["label_name"]] += 1
        per_subject[e["subject"]] = per_subject.get(e["subject"], 0) + 1
    per_reason: dict[str, int] = {}
    for d in dropped:
        per_reason[d["kind"]] = per_reason.get(d["kind"], 0) + 1
    return {"db": db, "num_samples": len(entries), "num_subjects": len(per_subject),
            "per_class": per_class, "per_subject": dict(sorted(per_subject.items())),
            "dropped": dropped, "dropped_per_reason": per_reason, "fps": fps}


def format_summary(summary: dict) -> str:
    """The summary as a plain-text table."""
    lines = [f"database {summary['db']}: {summary['num_samples']} samples, "
             f"{summary['num_subjects']} subjects, {len(summary['dropped'])} dropped",
             f"  {'class':<20}{'samples':>8}"]
    lines += [f"  {name:<20}{count:>8}" for name, count in summary["per_class"].items()]
    lines.append(f"  {'subject':<20}{'samples':>8}")
    lines += [f"  {name:<20}{count:>8}" for name, count in summary["per_subject"].items()]
    if summary["dropped"]:
        lines.append("  dropped:")
        lines += [f"    {d['subject']}/{d['clip']}: {d['reason']}" for d in summary["dropped"]]
        lines.append(f"  {'drop reason':<60}{'rows':>6}")
        lines += [f"  {kind:<60}{count:>6}"
                  for kind, count in summary.get("dropped_per_reason", {}).items()]
    return "\n".join(lines)


def dry_run(db: str, data_dir, reader_options: dict | None = None,
            provenance: dict | None = None) -> dict:
    """Read and validate the database without extracting anything; returns the summary (with
    `provenance`, the effective settings and flagfiles, when given)."""
    database = read_database(db, data_dir, **(reader_options or {}))
    summary = summarize(database.name, [{"label_name": s.label_name, "subject": s.subject}
                                        for s in database.samples], database.class_names,
                        dropped_rows(database), database.fps)
    return {**summary, "data_fingerprint": database.content_fingerprint(), **(provenance or {})}


def extract_features(db: str, data_dir, output_dir, config: FeatureConfig,
                     reader_options: dict | None = None, num_workers: int | None = None,
                     samples_per_shard: int = 64, overwrite: bool = False,
                     progress: bool = True, provenance: dict | None = None) -> dict:
    """Extract every sample of `db` into TFRecords under `output_dir`; returns the manifest.

    Finished shards of the same database, classes, parameters and annotations are kept (an
    interrupted run resumes); others are refused, or with `overwrite` replaced. `provenance`
    (the effective settings and the flagfiles applied) is recorded in the manifest.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ExtractionError(f"--output_dir {output_dir} is a file, not a folder")
    check_writable_dir(output_dir)  # before any clip is processed, not after
    # One process extracts; others started on the same folder wait, then find every sample done.
    with claims.exclusive(claims.beside(output_dir), f"the records in {output_dir}"):
        database = read_database(db, data_dir, **(reader_options or {}))
        indexes = finished_shards(output_dir)
        try:
            check_compatible(indexes, database, config)
        except ExtractionError:
            if not overwrite:
                raise
            log.warning("--overwrite: replacing the records of other settings in %s", output_dir)
            clear_records(output_dir)
            indexes = []
        done = {e["sample_id"] for index in indexes for e in index["samples"]}
        todo = [s for s in database.samples if s.sample_id not in done]
        if done:
            log.info("resuming: %d sample(s) already extracted, %d to go", len(done), len(todo))
        numbers = [int(index["shard"][len(db) + 1:-len(SHARD_SUFFIX)]) for index in indexes]
        writer = ShardWriter(output_dir, database, config, max(numbers, default=-1) + 1,
                             samples_per_shard)
        failed = []
        workers = num_workers or os.cpu_count() or 1
        for sample, features, failure in run_samples(todo, config, workers, progress):
            if features is None:
                log.warning("%s skipped: %s", sample.sample_id, failure["reason"])
                failed.append({"subject": sample.subject, "clip": sample.clip, **failure})
            else:
                writer.add(sample, features)
        writer.flush()
        entries = [e for index in indexes + writer.written for e in index["samples"]]
        if old := sum("lbptop" not in e for index in indexes for e in index["samples"]):
            log.warning("%d sample(s) resumed from records of an older version hold no LBP-TOP "
                        "histograms; --model=lbptop_svm will refuse these records (--overwrite "
                        "re-extracts them all)", old)
        return write_manifest(output_dir, database, config, data_dir, entries, failed,
                              provenance=provenance)


def lbptop_summary(entries: list[dict]) -> dict:
    """The LBP-TOP settings of the `lbptop` field, and the samples whose record lacks it."""
    return {**lbptop.settings(), "on": "aligned face crops onset..offset at face_size",
            "missing": [e["sample_id"] for e in entries if not e.get("lbptop")]}


def write_manifest(output_dir: Path, database, config: FeatureConfig, data_dir,
                   entries: list[dict], failed: list[dict], shards: list[str] | None = None,
                   provenance: dict | None = None) -> dict:
    """The manifest of finished records (shared by the local and the Beam pipelines); `fields`
    lists the record fields every record holds."""
    from tscnn_tf.records import record_fields  # TensorFlow only in the writing process
    from tscnn_tf.manifest import FORMAT_VERSION
    entries = sorted(entries, key=lambda e: e["sample_id"])
    dropped = dropped_rows(database) + failed
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["shard"]] = counts.get(e["shard"], 0) + 1
    manifest = {
        "format": FORMAT_VERSION,
        **summarize(database.name, entries, database.class_names, dropped, database.fps),
        "class_names": database.class_names,
        "params": config.to_dict(),
        "params_fingerprint": config.fingerprint(),
        "fields": record_fields(entries),
        "lbptop": lbptop_summary(entries),
        "data_fingerprint": database.content_fingerprint(),
        "data_dir": str(data_dir),
        **(provenance or {}),
        "shards": sorted(shards if shards is not None else {e["shard"] for e in entries}),
        # What `records.verify` finds in each shard before training (the Beam pipeline does not
        # know which shard a sample went to: its entries name none).
        **({"shard_samples": counts} if all(e["shard"] for e in entries) else {}),
        "samples": entries,
        "skipped": dropped,
        "apex_spotting": apex_agreement(entries),
        "faces": face_usage(entries, failed),
        "versions": package_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if not entries:
        raise ExtractionError(f"no usable sample in {database.name} at {data_dir}: "
                              f"{len(dropped)} dropped; see the warnings above")
    try:
        write_json_atomic(Path(output_dir) / MANIFEST, manifest)
    except OSError as e:
        if disk_full(e):
            raise no_space(Path(output_dir), MANIFEST,
                           len(json.dumps(manifest, indent=1))) from None
        raise
    return manifest




def report(manifest: dict, output_dir) -> str:
    """What a finished run prints: the summary, apex agreement, faces, LBP-TOP and shards."""
    lines = [format_summary(manifest)]
    apex = manifest["apex_spotting"]
    if apex["compared"]:
        lines.append(f"apex spotting: {apex['share']:.1%} of {apex['compared']} clips within "
                     f"±{apex['tolerance']} frames of the given apex (mean |error| "
                     f"{apex['mean_abs_error']:.2f} frames, λ={manifest['params']['apex_lambda']})")
    faces = manifest["faces"]
    if faces["usable_share"] is not None:
        lines.append(f"faces: {faces['usable_share']:.1%} of the clips that reached the face "
                     f"stage were usable; landmarks from {faces['face_box']}, "
                     f"{faces['no_face']} without a face")
    if missing := manifest["lbptop"]["missing"]:
        lines.append(f"lbptop: {len(missing)} record(s) without LBP-TOP histograms (e.g. "
                     f"{missing[0]}; see its warnings): --model=lbptop_svm refuses these records, "
                     "every other model trains on them")
    lines.append(f"records: {len(manifest['shards'])} shard(s) in {output_dir}")
    return "\n".join(lines)


def command(config, output_dir: str | None, samples_per_shard: int = 64, dry: bool = False,
            summary_json: str | None = None) -> str:
    """`python -m pipelines.extract_features` for an ExperimentConfig: a dry run (its summary,
    also written to `summary_json`) or the extraction into `output_dir`. Returns what to print."""
    from tscnn_tf.databases import check_name
    check_name(config.data.db)  # a typo is named as one, not as a missing --data_dir
    data_dir = config.data.data_dir
    if data_dir is None and config.data.db == "synthetic":
        data_dir = str(Path(output_dir or ".") / "synthetic_db")
    if data_dir is None:
        raise ExtractionError("--data_dir is required for --db=" + config.data.db)
    if dry:
        if summary_json and not Path(summary_json).parent.is_dir():
            raise ExtractionError(f"cannot write --summary_json {summary_json}: the folder "
                                  f"{Path(summary_json).parent} does not exist")
        summary = dry_run(config.data.db, data_dir, config.data.reader_options(),
                          config.effective())
        if summary_json:
            write_json_atomic(Path(summary_json), summary)
        if not summary["num_samples"]:
            print(format_summary(summary))
            raise ExtractionError("no usable sample")
        return format_summary(summary)
    if not output_dir:
        raise ExtractionError("--output_dir is required")
    manifest = extract_features(
        config.data.db, data_dir, output_dir, config.features, config.data.reader_options(),
        config.run.num_workers, samples_per_shard, config.run.overwrite,
        provenance=config.effective())
    return report(manifest, output_dir)
