"""The MEGC2019 composite: CASME II + SMIC-HS + SAMM in 3 classes (0 negative, 1 positive,
2 surprise), listed in `combined_3class_gt.csv` (no header: dataset, subject, filename, class).

`data_dir` holds the CSV and the three databases (each as its own reader finds it). Subjects
are prefixed with their database (`casme2_sub01`, `smic_s1`, `samm_006`), so LOSO runs over all
68. Onset, apex and offset come from each database's own annotations. Paper figures: 442
samples over 68 subjects.

Each row is matched to its own clip by the database's naming: numbers with or without leading
zeros (the list's `s01_ne_01` is SMIC-HS's folder `s1_ne_01`), and CASME II's trailing `f` read
as optional only when the other spelling names no clip of its own (`sub17` has two clips,
`EP05_03` and `EP05_03f`). A row that finds no clip, or only a dropped one, is counted by reason.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import OUTSIDE, Database, Dropped, Sample, Scope, log
from tscnn_tf.databases.casme2 import read_casme2
from tscnn_tf.databases.samm import read_samm
from tscnn_tf.databases.smic import read_smic

CLASSES = ("negative", "positive", "surprise")
PARTS = {"casme2": read_casme2, "smic": read_smic, "samm": read_samm}
# Each part's own labels in the composite's classes (MEGC2019); `others` is in none.
THREE_CLASSES = {"happiness": "positive", "positive": "positive", "surprise": "surprise",
                 **{label: "negative" for label in ("negative", "disgust", "repression", "anger",
                                                    "contempt", "fear", "sadness")}}


def subject_key(text: str) -> str:
    """`sub01`, `01`, `1`, `s1`, `006` -> `1`: the number, however it is written."""
    numbers = re.findall(r"\d+", text)
    return str(int(numbers[-1])) if numbers else text.strip().lower()


def clip_key(text: str) -> str:
    """A clip name with its numbers unpadded, in lower case: `s01_ne_01` and `s1_ne_01` ->
    `s1_ne_1`, `EP05_03f` -> `ep5_3f` (the trailing `f` is kept: it can tell two clips apart)."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), text.strip().lower())


def spellings(dataset: str, clip: str) -> list[str]:
    """The clip keys a ground-truth name may mean, best first: the name itself, then, for
    CASME II, the other spelling of its optional trailing `f`."""
    key = clip_key(clip)
    if dataset != "casme2":
        return [key]
    return [key, key[:-1] if key.endswith("f") else key + "f"]


def index_part(database: Database) -> dict[tuple[str, str], dict[str, list]]:
    """A part's samples and dropped rows by (subject key, clip key)."""
    index: dict[tuple[str, str], dict[str, list]] = {}
    for kind, items in (("samples", database.samples), ("dropped", database.dropped)):
        for item in items:
            entry = index.setdefault((subject_key(item.subject), clip_key(item.clip)),
                                     {"samples": [], "dropped": []})
            entry[kind].append(item)
    return index


def find_clip(index: dict, dataset: str, subject: str, clip: str) -> Sample | tuple[str, str]:
    """The part's own sample for a ground-truth row, or why there is none as (kind, reason).

    A spelling is taken only when nothing of the part (sample or dropped row) answers to an
    earlier one, so a row never borrows another clip's frames.
    """
    for key in spellings(dataset, clip):
        entry = index.get((subject_key(subject), key))
        if entry is None:
            continue
        found, dropped = entry["samples"], entry["dropped"]
        if len(found) == 1:
            return found[0]
        if found:
            kind = "several samples of the clip (the ground truth names one)"
            return kind, f"{kind}: {', '.join(s.sample_id for s in found)}"
        return dropped[0].kind, f"{dataset} {dropped[0].reason}"
    return f"no {dataset} annotation or frames", f"no {dataset} annotation or frames"


def label_warning(dataset: str, sample: Sample, class_name: str) -> list[str]:
    """A warning when the part's own label is not the ground truth's class."""
    own = THREE_CLASSES.get(sample.label_name)
    if own == class_name:
        return []
    return [f"ground truth class {class_name}, but {dataset} labels the clip {sample.label_name!r}"]


def read_parts(data_dir: Path, image_set: str, follow_symlinks: bool = False
               ) -> tuple[dict, dict[str, str], list[Dropped]]:
    """Every part that can be read, indexed; why each other one cannot; and the sheets and
    folders the parts refused as links out of `data_dir` (no row of the list, but counted)."""
    parts, missing, refused = {}, {}, []
    for name, reader in PARTS.items():
        options = {"image_set": image_set} if name != "samm" else {}
        if follow_symlinks:
            options["follow_symlinks"] = True
        try:
            part = reader(data_dir, classes=[], **options)
        except (FileNotFoundError, ValueError) as e:
            missing[name] = str(e)
            log.warning("megc2019: %s unavailable: %s", name, e)
            continue
        parts[name] = index_part(part)
        refused += [d for d in part.dropped if not d.subject and d.kind.endswith(OUTSIDE)]
    return parts, missing, refused


def read_megc2019(data_dir, classes=None, image_set: str = "auto", db: str = "megc2019",
                  follow_symlinks: bool = False) -> Database:
    """Every row of `combined_3class_gt.csv` as a sample of its own clip, or a counted drop."""
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    gt = sheets.newest_sheet(data_dir, ("combined_3class_gt.csv",), "MEGC2019 ground truth", scope)
    class_names = list(classes or CLASSES)
    parts, missing, refused = read_parts(data_dir, image_set, follow_symlinks)
    samples, rows_of = [], {}
    dropped = list(scope.refused) + refused
    for line, row in enumerate(sheets.read_rows(gt), start=1):
        dataset, subject, clip, label = (row + [""] * 4)[:4]
        dataset = dataset.lower().replace(" ", "").replace("-", "")
        dataset = {"casmeii": "casme2", "smichs": "smic"}.get(dataset, dataset)
        where = f"{gt.name} row {line}"

        def drop(kind, detail=""):
            dropped.append(Dropped.of(subject, clip, where, kind, detail))

        if dataset not in PARTS:
            if line > 1 or dataset not in ("dataset", "database"):  # tolerate a header row
                drop("unknown dataset", repr(dataset))
            continue
        index = int(label) if label.isdigit() else -1
        if not 0 <= index < len(CLASSES):
            drop("unknown class", repr(label))
            continue
        if CLASSES[index] not in class_names:
            drop("unused label (not one of the selected classes)", repr(CLASSES[index]))
            continue
        if dataset in missing:
            drop(f"{dataset} not found", missing[dataset])
            continue
        found = find_clip(parts[dataset], dataset, subject, clip)
        if not isinstance(found, Sample):
            dropped.append(Dropped(subject, clip, f"{where}: {found[1]}", found[0]))
            continue
        if found.sample_id in rows_of:
            drop("duplicate row in the ground truth",
                 f"{found.sample_id} is already row {rows_of[found.sample_id]}")
            continue
        rows_of[found.sample_id] = line
        notes = label_warning(dataset, found, CLASSES[index])
        if clip_key(clip) != clip_key(found.clip):
            notes.append(f"ground truth names {clip!r}: read as {dataset}'s clip {found.clip!r}")
        samples.append(dataclasses.replace(
            found, db=db, subject=f"{dataset}_{found.subject}", label_name=CLASSES[index],
            label=class_names.index(CLASSES[index]), warnings=list(found.warnings) + notes))
        for note in notes:
            log.warning("%s: %s", samples[-1].sample_id, note)
    for d in dropped:
        log.warning("%s/%s/%s dropped: %s", db, d.subject, d.clip, d.reason)
    return Database(db, class_names, samples, dropped)
