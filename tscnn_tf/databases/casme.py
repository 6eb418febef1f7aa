"""CASME: `CASME_A/Section A/sub01/EP01_5/EP01_5-12.jpg` (subjects 1-7) and `CASME_B/Section B/
sub08/...` (8-19), annotated in `Section A.xls` and `Section B.xls`. Paper: 4 classes, 171."""
from __future__ import annotations

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection, parse_int
from tscnn_tf.databases.custom import NO_APEX, build_samples

CLASSES = ("tense", "disgust", "repression", "surprise")
FPS = 60
# An offset the sheet leaves uncoded (`\`): the onset plus 0.5 s, the longest a
# micro-expression lasts, cut at the clip folder's last frame.
UNCODED_OFFSET_FRAMES = FPS // 2
KNOWN_LABELS = CLASSES + ("happiness", "sadness", "fear", "contempt")
ALIASES = {"tenseness": "tense", "comtempt": "contempt"}
COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("OnsetF", "Onset Frame"),
           "apex": ("ApexF1", "ApexF", "Apex Frame"), "offset": ("OffsetF", "Offset Frame"),
           "label": ("Emotion", "Estimated Emotion")}


def section_rows(data_dir, section: str, scope: Scope | None = None) -> list[dict]:
    """Rows of `Section <section>.xls` with their frame folders under `Section <section>/`."""
    sheet = sheets.newest_sheet(data_dir, (f"Section {section}.xls*", f"Section_{section}.xls*",
                                           f"Section {section}.csv"), f"CASME Section {section} sheet",
                                scope)
    root = sheets.find_dir(data_dir, (f"Section {section}", f"Section_{section}"), scope=scope)
    if root is None:
        raise FileNotFoundError(f"no 'Section {section}' frame folder under {data_dir}"
                                f"{scope.note() if scope else ''}")
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename"), sheet)
    apex2 = {"apex2": ("ApexF2",)} if "apexf2" in map(sheets.column_key, rows[header]) else {}
    out = []
    for line, r in sheets.records(rows, header, {**COLUMNS, **apex2}, sheet):
        subject = sheets.padded(r["subject"], 2, "sub")
        label = sheets.normalise_label(r["label"])
        apex = r["apex"] if r["apex"] not in NO_APEX else r.get("apex2", "")
        offset, warnings = r["offset"], []
        if offset in NO_APEX and parse_int(r["onset"]) is not None:
            offset = str(parse_int(r["onset"]) + UNCODED_OFFSET_FRAMES)
            warnings.append(f"offset not coded ({r['offset']!r}); using onset + "
                            f"{UNCODED_OFFSET_FRAMES} frames (0.5 s), cut at the clip's last frame")
        out.append({**r, "apex": apex, "offset": offset, "subject": subject,
                    "label": ALIASES.get(label, label), "media": root / subject / r["clip"],
                    "where": f"{sheet.name} row {line}", "warnings": warnings})
    return out


def read_casme(data_dir, classes=None, db: str = "casme",
               follow_symlinks: bool = False) -> Database:
    """Sections A and B together; the paper's 4 classes by default."""
    selected = class_selection(classes, CLASSES)
    scope = Scope(data_dir, follow_symlinks)
    rows = section_rows(data_dir, "A", scope) + section_rows(data_dir, "B", scope)
    return build_samples(db, data_dir, rows, selected, KNOWN_LABELS, scope)
