"""The MEGC2019 composite: CASME II + SMIC-HS + SAMM in 3 classes (0 negative, 1 positive,
2 surprise), listed in `combined_3class_gt.csv` (no header: dataset, subject, filename, class).

`data_dir` holds the CSV and the three databases (each as its own reader finds it). Subjects
are prefixed with their database (`casme2_sub01`, `smic_s1`, `samm_006`), so LOSO runs over all
68. Onset, apex and offset come from each database's own annotations. Paper figures: 442
samples over 68 subjects.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Dropped, log
from tscnn_tf.databases.casme2 import read_casme2
from tscnn_tf.databases.samm import read_samm
from tscnn_tf.databases.smic import read_smic

CLASSES = ("negative", "positive", "surprise")
PARTS = {"casme2": read_casme2, "smic": read_smic, "samm": read_samm}


def subject_key(text: str) -> str:
    """`sub01`, `01`, `1`, `s1`, `006` -> `1`: the number, however it is written."""
    numbers = re.findall(r"\d+", text)
    return str(int(numbers[-1])) if numbers else text.strip().lower()


def clip_key(text: str) -> str:
    return re.sub(r"f$", "", text.strip().lower())  # CASME II's optional trailing f


def read_megc2019(data_dir, classes=None, image_set: str = "auto", db: str = "megc2019") -> Database:
    data_dir = Path(data_dir)
    gt = sheets.newest_sheet(data_dir, ("combined_3class_gt.csv",), "MEGC2019 ground truth")
    class_names = list(classes or CLASSES)
    parts: dict[str, dict] = {}
    missing: dict[str, str] = {}
    for name, reader in PARTS.items():
        options = {"image_set": image_set} if name != "samm" else {}
        try:
            part = reader(data_dir, classes=[], **options)
        except (FileNotFoundError, ValueError) as e:
            missing[name] = str(e)
            log.warning("megc2019: %s unavailable: %s", name, e)
            continue
        parts[name] = {"samples": {(subject_key(s.subject), clip_key(s.clip)): s
                                   for s in part.samples},
                       "dropped": {(subject_key(d.subject), clip_key(d.clip)): d
                                   for d in part.dropped}}
    samples, dropped = [], []
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
        key = (subject_key(subject), clip_key(clip))
        sample = parts[dataset]["samples"].get(key)
        if sample is None:
            part_drop = parts[dataset]["dropped"].get(key)
            if part_drop is None:
                drop(f"no {dataset} annotation or frames")
            else:
                drop(part_drop.kind, part_drop.reason)
            continue
        samples.append(dataclasses.replace(
            sample, db=db, subject=f"{dataset}_{sample.subject}", label_name=CLASSES[index],
            label=class_names.index(CLASSES[index]), warnings=list(sample.warnings)))
    seen, unique = set(), []
    for s in samples:
        if s.sample_id in seen:
            dropped.append(Dropped(s.subject, s.clip, "duplicate row in the ground truth"))
        else:
            seen.add(s.sample_id)
            unique.append(s)
    for d in dropped:
        log.warning("%s/%s/%s dropped: %s", db, d.subject, d.clip, d.reason)
    return Database(db, class_names, unique, dropped)
