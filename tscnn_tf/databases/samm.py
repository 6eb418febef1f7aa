"""SAMM: `SAMM/006/006_1_2/006_05562.jpg` and `SAMM_Micro_FACS_Codes_v2.xlsx`, whose header is
the row starting with `Subject` (below a block of notes in the official release).
Paper: 5 classes, 136 samples."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection
from tscnn_tf.databases.custom import build_samples

CLASSES = ("anger", "contempt", "happiness", "surprise", "others")
KNOWN_LABELS = CLASSES + ("disgust", "fear", "sadness")
ALIASES = {"other": "others"}
SHEETS = ("SAMM_Micro_FACS_Codes*.xls*", "SAMM*Codes*.csv")
COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset Frame", "Onset"),
           "apex": ("Apex Frame", "Apex"), "offset": ("Offset Frame", "Offset"),
           "label": ("Estimated Emotion", "Emotion")}


def frames_root(data_dir, scope: Scope | None = None) -> Path:
    """The folder of the subject folders (`006/`): `SAMM/` (maybe doubled) or `data_dir`."""
    found = sheets.find_dir(data_dir, ("SAMM", "SAMM_CROP", "SAMM_cropped"), scope=scope)
    if found is not None and any(p.is_dir() and p.name.isdigit() for p in found.iterdir()):
        return found
    return Path(data_dir)


def annotation_rows(data_dir, scope: Scope | None = None) -> list[dict]:
    scope = scope or Scope(data_dir)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "SAMM FACS codes sheet", scope)
    root = frames_root(data_dir, scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename"), sheet)
    out = []
    for line, r in sheets.records(rows, header, COLUMNS, sheet):
        subject = sheets.padded(r["subject"], 3)
        label = sheets.normalise_label(r["label"])
        out.append({**r, "subject": subject, "label": ALIASES.get(label, label),
                    "media": root / subject / r["clip"], "where": f"{sheet.name} row {line}"})
    return out


def read_samm(data_dir, classes=None, db: str = "samm", follow_symlinks: bool = False) -> Database:
    """The paper's 5 classes by default; `classes=[]` keeps every label (for MEGC2019)."""
    selected = class_selection(classes, CLASSES)
    scope = Scope(data_dir, follow_symlinks)
    return build_samples(db, data_dir, annotation_rows(data_dir, scope), selected, KNOWN_LABELS,
                         scope)
