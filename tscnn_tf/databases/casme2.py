"""CASME II: `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg` (or `Cropped/.../reg_img46.jpg`) and
`CASME2-coding-*.xlsx` / `CASME2_label_Ver_2.xls`. Paper: 5 classes, 247 samples, 26 subjects."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection
from tscnn_tf.databases.custom import build_samples

CLASSES = ("happiness", "surprise", "disgust", "repression", "others")
KNOWN_LABELS = CLASSES + ("fear", "sadness")
SHEETS = ("CASME2-coding*.xls*", "CASME2_label*.xls*", "CASME2*coding*.csv")
FRAME_DIRS = {"raw": ("CASME2_RAW_selected", "CASME2_RAW", "CASME2-RAW"),
              "cropped": ("Cropped", "CASME2_Cropped", "CASME2-Cropped")}
COLUMNS = {"subject": ("Subject",), "clip": ("Filename",),
           "onset": ("OnsetFrame", "Onset Frame"), "apex": ("ApexFrame", "Apex Frame"),
           "offset": ("OffsetFrame", "Offset Frame"), "label": ("Estimated Emotion", "Emotion")}


def clip_folder(subject_dir: Path, clip: str, listed=()) -> Path:
    """Clip folders come with and without the trailing `f` (`EP02_01f`, `EP03_02`); the other
    spelling only when it is not a clip of its own in the sheet (`listed`: sub17 has both
    `EP05_03` and `EP05_03f`)."""
    for name in (clip, clip + "f", clip[:-1] if clip.endswith("f") else None):
        if name and (name == clip or name not in listed) and (subject_dir / name).is_dir():
            return subject_dir / name
    return subject_dir / clip


def annotation_rows(data_dir, image_set: str = "auto", scope: Scope | None = None) -> list[dict]:
    """The coding sheet's rows in the custom reader's form, with their frame folders."""
    scope = scope or Scope(data_dir)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "CASME II coding sheet", scope)
    root = sheets.frames_root(data_dir, FRAME_DIRS, image_set, scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename"), sheet)
    out, records = [], sheets.records(rows, header, COLUMNS, sheet)
    listed = {(sheets.padded(r["subject"], 2, "sub"), r["clip"]) for _, r in records}
    for line, r in records:
        subject = sheets.padded(r["subject"], 2, "sub")
        out.append({**r, "subject": subject, "label": sheets.normalise_label(r["label"]),
                    "media": clip_folder(root / subject, r["clip"],
                                         {c for s, c in listed if s == subject}),
                    "where": f"{sheet.name} row {line}"})
    return out


def read_casme2(data_dir, classes=None, image_set: str = "auto", db: str = "casme2",
                follow_symlinks: bool = False) -> Database:
    """The paper's 5 classes by default; `classes=[]` keeps every label (for MEGC2019)."""
    selected = class_selection(classes, CLASSES)
    scope = Scope(data_dir, follow_symlinks)
    return build_samples(db, data_dir, annotation_rows(data_dir, image_set, scope), selected,
                         KNOWN_LABELS, scope)
