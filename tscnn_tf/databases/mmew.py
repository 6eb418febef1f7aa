"""MMEW (Ben et al., TPAMI 2021): 300 micro-expressions, 90 fps, 1920x1080. Frames
`S03/happiness/S03-01-002/1.jpg`; sheet `MMEW_Micro_Exp.xlsx` with Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, remarks. 6 emotions and
others. The layout is the best public knowledge: no sheet was available to check it."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection, unsafe_name
from tscnn_tf.databases.custom import build_samples

CLASSES = ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
ALIASES = {"other": "others", "happy": "happiness", "sad": "sadness"}
SHEETS = ("MMEW_Micro_Exp*.xls*", "MMEW*Micro*.csv")
COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("OnsetFrame", "Onset"),
           "apex": ("ApexFrame", "Apex"), "offset": ("OffsetFrame", "Offset"),
           "label": ("Estimated Emotion", "Emotion")}


def read_mmew(data_dir, classes=None, db: str = "mmew", follow_symlinks: bool = False) -> Database:
    """Micro-expressions; frames under `<Subject>/<emotion>/<Filename>/` (the emotion folder
    is found by name, any case), or `<Subject>/<Filename>/`."""
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "MMEW micro-expression sheet", scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename"), sheet)
    root = sheets.find_dir(data_dir, ("Micro_Expression", "MMEW_Micro", "Micro"),
                           scope=scope) or data_dir
    out = []
    for line, r in sheets.records(rows, header, COLUMNS, sheet):
        label = sheets.normalise_label(r["label"])
        label = ALIASES.get(label, label)
        subject = r["subject"].strip()
        names = (label, r["label"].strip().lower())
        # The subject folder is listed only once the row names a folder inside the scope.
        folder = root / subject
        listed = sorted(folder.iterdir()) if not unsafe_name(subject) and folder.is_dir() \
            and scope.allows(folder) else []
        emotion_dir = next((p for p in listed if p.is_dir()
                            and sheets.normalise_label(p.name) in names), None)
        media = (emotion_dir or root / subject) / r["clip"]
        out.append({**r, "subject": subject, "label": label, "media": media,
                    "where": f"{sheet.name} row {line}"})
    return build_samples(db, data_dir, out, class_selection(classes, CLASSES), CLASSES, scope)
