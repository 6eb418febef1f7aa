"""4DME (Li et al., TAFFC 2022): about 267 micro-expression clips, 5 emotion categories, 22 AUs.
Sheet `4DME_Labelling_Micro_release v1.xlsx` with sub_ID, fold_name, Emotion, Onset, Apex,
Offset, AUs (AUs may carry a `(k)` marker, not parsed); frames `gray_micro/<sub>/<fold>/`.
The layout is the best public knowledge: no sheet was available to check it."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection
from tscnn_tf.databases.custom import build_samples

CLASSES = ("negative", "positive", "surprise", "repression", "others")
ALIASES = {"other": "others"}
SHEETS = ("4DME_Labelling_Micro_release*.xls*", "4DME*Micro*.xls*", "4DME*Micro*.csv")
COLUMNS = {"subject": ("sub_ID", "Subject"), "clip": ("fold_name", "Filename"),
           "onset": ("Onset",), "apex": ("Apex",), "offset": ("Offset",),
           "label": ("Emotion",)}


def read_fourdme(data_dir, classes=None, db: str = "fourdme",
                 follow_symlinks: bool = False) -> Database:
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "4DME micro-expression sheet", scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("sub_ID", "fold_name"), sheet)
    root = sheets.find_dir(data_dir, ("gray_micro",), scope=scope) or data_dir
    out = []
    for line, r in sheets.records(rows, header, COLUMNS, sheet):
        label = sheets.normalise_label(r["label"])
        out.append({**r, "subject": r["subject"].strip(), "label": ALIASES.get(label, label),
                    "media": root / r["subject"].strip() / r["clip"],
                    "where": f"{sheet.name} row {line}"})
    return build_samples(db, data_dir, out, class_selection(classes, CLASSES), CLASSES, scope)
