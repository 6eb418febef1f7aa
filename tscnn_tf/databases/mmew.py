"""MMEW (Ben et al., TPAMI 2021): 300 micro-expressions, 90 fps, 1920x1080. Frames
`S03/happiness/S03-01-002/1.jpg`; sheet `MMEW_Micro_Exp.xlsx` with Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, remarks. 6 emotions and
others. The layout is the best public knowledge: no sheet was available to check it."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, class_selection
from tscnn_tf.databases.custom import build_samples

CLASSES = ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
ALIASES = {"other": "others", "happy": "happiness", "sad": "sadness"}
SHEETS = ("MMEW_Micro_Exp*.xls*", "MMEW*Micro*.csv")
COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("OnsetFrame", "Onset"),
           "apex": ("ApexFrame", "Apex"), "offset": ("OffsetFrame", "Offset"),
           "label": ("Estimated Emotion", "Emotion")}


def read_mmew(data_dir, classes=None, db: str = "mmew") -> Database:
    """Micro-expressions; frames under `<Subject>/<emotion>/<Filename>/` (the emotion folder
    is found by name, any case), or `<Subject>/<Filename>/`."""
    data_dir = Path(data_dir)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "MMEW micro-expression sheet")
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename"), sheet)
    root = sheets.find_dir(data_dir, ("Micro_Expression", "MMEW_Micro", "Micro")) or data_dir
    out = []
    for line, r in sheets.records(rows, header, COLUMNS, sheet):
        label = sheets.normalise_label(r["label"])
        label = ALIASES.get(label, label)
        subject = r["subject"].strip()
        emotion_dir = next((p for p in (root / subject).glob("*")
                            if p.is_dir() and sheets.normalise_label(p.name) in (label, r["label"].strip().lower())),
                           None) if (root / subject).is_dir() else None
        media = (emotion_dir or root / subject) / r["clip"]
        out.append({**r, "subject": subject, "label": label, "media": media,
                    "where": f"{sheet.name} row {line}"})
    return build_samples(db, data_dir, out, class_selection(classes, CLASSES), CLASSES)
