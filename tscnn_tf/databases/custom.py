"""The custom database format: `annotations.csv` + `<subject>/<clip>/` frames or `<clip>.mp4`.

Columns (by name, any order, case-insensitive): subject, clip, onset, apex, offset, label.
`apex` may be empty (or `/`): the apex is then spotted. Comma, semicolon or tab delimiters and
UTF-8, UTF-16 or Latin-1 text are read alike.
"""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import (Database, Dropped, Sample, Scope, log, parse_frame,
                                     resolve_media, unsafe_name)

COLUMNS = ("subject", "clip", "onset", "apex", "offset", "label")
NO_APEX = ("", "/", "-", "\\")  # how sheets write "not coded"


def read_annotations(csv_path: str | Path) -> list[dict[str, str]]:
    """Rows of an annotation CSV with lower-cased, stripped column names; checks the columns."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"annotation file not found: {csv_path}")
    table = sheets.read_text_table(csv_path)
    rows = table.rows
    first = next((i for i, row in enumerate(rows) if any(row)), None)
    header = [c.strip().lower() for c in rows[first]] if first is not None else []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{csv_path}: missing column(s) {missing}. Read the header {header} as "
            f"{table.encoding} text with the delimiter {table.delimiter!r}; expected the columns "
            f"{list(COLUMNS)}. Save the sheet as CSV (comma-separated, UTF-8) with that header row.")
    out = []
    for line, row in enumerate(rows[first + 1:], start=first + 2):
        if not any(row):
            continue
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)
                 if name}
        out.append({**cells, "where": f"row {line}"})
    return out


def build_samples(db: str, data_dir: Path, rows: list[dict[str, str]],
                  class_names: list[str] | None, known_labels=None,
                  scope: Scope | None = None) -> Database:
    """Validate annotation rows into `Sample`s; every unusable row becomes a `Dropped`.

    A row holds subject, clip, onset, apex, offset and label as text. Optional keys: `media`, the
    clip's frame folder (or video path without suffix; default data_dir/subject/clip),
    `where`, how to name the row in messages, and `warnings`, the reader's repairs of the row.
    Media must lie inside `data_dir` (resolved) unless `scope` follows symlinks; the sheets
    and folders the reader's `scope` refused are added to the drops. With
    `known_labels`, a label outside `class_names` is reported as unused if known, else unknown.
    Several rows of one clip with other onsets/offsets are several expressions: each becomes a
    sample whose id ends in `@<onset>-<offset>`; a repeated row is dropped.
    """
    data_dir = Path(data_dir)
    scope = scope or Scope(data_dir)
    dropped: list[Dropped] = []
    candidates: list[tuple[Sample, str]] = []
    seen: set[tuple] = set()
    for line, row in enumerate(rows, start=2):
        subject, clip, label = row["subject"], row["clip"], row["label"]
        where = row.get("where", f"row {line}")

        def drop(kind, detail=""):
            dropped.append(Dropped.of(subject, clip, where, kind, detail))

        if not subject or not clip:
            drop("empty subject or clip")
            continue
        if unsafe_name(subject) or unsafe_name(clip):
            drop("subject or clip is a path, not a name", f"{subject!r}/{clip!r}")
            continue
        (onset, onset_note), (offset, offset_note) = parse_frame(row["onset"]), parse_frame(row["offset"])
        if onset is None or offset is None:
            drop("invalid onset/offset", f"{row['onset']!r}/{row['offset']!r}")
            continue
        if offset == 0 < onset:
            drop("offset 0 (not coded)", f"onset {onset}")
            continue
        if onset > offset:
            drop("onset after offset", f"onset {onset}, offset {offset}")
            continue
        if not label:
            drop("empty label")
            continue
        if class_names is not None and label not in class_names:
            if known_labels is None:
                drop("unknown or unused label", repr(label))
            elif label in known_labels:
                drop("unused label (not one of the selected classes)", repr(label))
            else:
                drop("unknown label", repr(label))
            continue
        key = (subject, clip, onset, offset)
        if key in seen:
            drop("duplicate row", f"same clip, onset {onset} and offset {offset} as an earlier row")
            continue
        seen.add(key)
        sample = Sample(db, subject, clip, label, -1, onset, offset,
                        warnings=list(row.get("warnings", [])))
        apex_text = row["apex"]
        sample.apex, apex_note = parse_frame(apex_text)
        sample.warnings += [n for n in (onset_note, apex_note, offset_note) if n]
        if sample.apex is None and apex_text not in NO_APEX:
            sample.warnings.append(f"invalid apex {apex_text!r}; it will be spotted instead")
        elif sample.apex is not None and sample.apex == onset < offset:
            sample.warnings.append(f"apex {onset} equals the onset (no onset->apex motion); it "
                                   "will be spotted instead")
            sample.apex = None
        reason = resolve_media(sample, Path(row["media"]) if row.get("media")
                               else data_dir / subject / clip, scope)
        if reason:
            drop(*reason)
            continue
        candidates.append((sample, f"{onset}-{offset}"))
    clips: dict[tuple[str, str], int] = {}
    for sample, _ in candidates:
        clips[sample.subject, sample.clip] = clips.get((sample.subject, sample.clip), 0) + 1
    for sample, part in candidates:
        if clips[sample.subject, sample.clip] > 1:
            sample.part = part  # the sheet's onset-offset, before any repair
    samples = [s for s, _ in candidates]
    if class_names is None:
        class_names = sorted({s.label_name for s in samples})
    for s in samples:
        s.label = class_names.index(s.label_name)
        for w in s.warnings:
            log.warning("%s: %s", s.sample_id, w)
    dropped += scope.refused
    for d in dropped:
        log.warning("%s/%s/%s dropped: %s", db, d.subject, d.clip, d.reason)
    return Database(db, list(class_names), samples, dropped)


def read_custom(data_dir: str | Path, classes: list[str] | None = None,
                db: str = "custom", follow_symlinks: bool = False) -> Database:
    """Read a database in the custom format. `classes` fixes the class order and drops others."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data_dir does not exist: {data_dir}")
    scope = Scope(data_dir, follow_symlinks)
    sheet = data_dir / "annotations.csv"
    if not scope.admit(sheet, "sheet"):
        raise FileNotFoundError(f"{sheet} resolves outside {data_dir}: not read "
                                "(--follow_symlinks opts in)")
    rows = read_annotations(sheet)
    return build_samples(db, data_dir, rows, list(classes) if classes else None, scope=scope)
