"""The custom database format: `annotations.csv` + `<subject>/<clip>/` frames or `<clip>.mp4`.

Columns (by name, any order, case-insensitive): subject, clip, onset, apex, offset, label.
`apex` may be empty (or `/`): the apex is then spotted.
"""
from __future__ import annotations

import csv
from pathlib import Path

from tscnn_tf.databases.base import Database, Dropped, Sample, log, parse_int, resolve_media

COLUMNS = ("subject", "clip", "onset", "apex", "offset", "label")


def read_annotations(csv_path: str | Path) -> list[dict[str, str]]:
    """Rows of an annotation CSV with lower-cased, stripped column names; checks the columns."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"annotation file not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; expected {list(COLUMNS)}")
        reader.fieldnames = header
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def build_samples(db: str, data_dir: Path | None, rows: list[dict[str, str]],
                  class_names: list[str] | None, known_labels=None) -> Database:
    """Validate annotation rows into `Sample`s; every unusable row becomes a `Dropped`.

    A row holds subject, clip, onset, apex, offset and label as text. Optional keys: `media`, the
    clip's frame folder (or video path without suffix; default data_dir/subject/clip), and
    `where`, how to name the row in messages (default its line in annotations.csv). With
    `known_labels`, a label outside `class_names` is reported as unused if known, else unknown.
    """
    dropped: list[Dropped] = []
    candidates: list[Sample] = []
    seen: set[tuple[str, str]] = set()
    for line, row in enumerate(rows, start=2):
        subject, clip, label = row["subject"], row["clip"], row["label"]
        where = row.get("where", f"row {line}")
        def drop(reason):
            dropped.append(Dropped(subject, clip, f"{where}: {reason}"))
        if not subject or not clip:
            drop("empty subject or clip")
            continue
        onset, offset = parse_int(row["onset"]), parse_int(row["offset"])
        if onset is None or offset is None:
            drop(f"invalid onset/offset {row['onset']!r}/{row['offset']!r}")
            continue
        if onset > offset:
            drop(f"onset {onset} after offset {offset}")
            continue
        if not label:
            drop("empty label")
            continue
        if class_names is not None and label not in class_names:
            if known_labels is None:
                drop(f"unknown or unused label {label!r}")
            elif label in known_labels:
                drop(f"unused label {label!r} (not one of the selected classes)")
            else:
                drop(f"unknown label {label!r}")
            continue
        if (subject, clip) in seen:
            drop("duplicate row")
            continue
        seen.add((subject, clip))
        sample = Sample(db, subject, clip, label, -1, onset, offset)
        apex_text = row["apex"]
        sample.apex = parse_int(apex_text)
        if sample.apex is None and apex_text not in ("", "/", "-"):
            sample.warnings.append(f"invalid apex {apex_text!r}; it will be spotted instead")
        reason = resolve_media(sample, Path(row["media"]) if row.get("media")
                               else data_dir / subject / clip)
        if reason:
            drop(reason)
            continue
        candidates.append(sample)
    if class_names is None:
        class_names = sorted({s.label_name for s in candidates})
    for s in candidates:
        s.label = class_names.index(s.label_name)
        for w in s.warnings:
            log.warning("%s: %s", s.sample_id, w)
    for d in dropped:
        log.warning("%s/%s/%s dropped: %s", db, d.subject, d.clip, d.reason)
    return Database(db, list(class_names), candidates, dropped)


def read_custom(data_dir: str | Path, classes: list[str] | None = None,
                db: str = "custom") -> Database:
    """Read a database in the custom format. `classes` fixes the class order and drops others."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir does not exist: {data_dir}")
    rows = read_annotations(data_dir / "annotations.csv")
    return build_samples(db, data_dir, rows, list(classes) if classes else None)
