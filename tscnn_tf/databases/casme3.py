"""CAS(ME)³ (Li et al., TPAMI 2022), 30 fps.

Part A (`casme3`): frames `part_A/spNO.1/a/color/1.jpg` (subject `spNO.<k>`, task letter,
unpadded frame numbers with gaps: most videos miss 7-8 frames at the start and a few later).
Each task folder is a long video with several expressions. Micro-expressions in
`cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, sheet `label`, header row 1: Subject, Filename
(the task letter), Onset, Apex, Offset, AU, Objective class, emotion. 860 rows over 94 subjects.

Part C (`casme3_c`): `CAS(ME)3_part_C_ME.xlsx` (columns sub, count, onset, offset, au,
emotion; no apex: always spotted) and frames `<sub:02d>/<count>/color/<N>.jpg`.

Class protocols of the literature (`protocol`): 7 (happy, surprise, sad, disgust, fear, anger,
others), 4 (negative, positive, surprise, others) and 3 (the 4 without others).
"""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope
from tscnn_tf.databases.custom import build_samples

EMOTIONS = ("happy", "surprise", "sad", "disgust", "fear", "anger", "others")
NEGATIVE = ("sad", "disgust", "fear", "anger")
PROTOCOLS = {
    "7": {e: e for e in EMOTIONS},
    "4": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise",
          "others": "others"},
    "3": {**{e: "negative" for e in NEGATIVE}, "happy": "positive", "surprise": "surprise"},
}
PROTOCOL_CLASSES = {"7": EMOTIONS, "4": ("negative", "positive", "surprise", "others"),
                    "3": ("negative", "positive", "surprise")}
SHEET_A = ("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "cas(me)3_part_A_ME_label*v2*.xls*",
           "*part_A_ME_label*.xls*")
SHEET_C = ("CAS(ME)3_part_C_ME.xlsx", "*part_C_ME*.xls*")
COLUMNS_A = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset",),
             "apex": ("Apex",), "offset": ("Offset",), "label": ("emotion", "Emotion")}
COLUMNS_C = {"subject": ("sub",), "clip": ("count",), "onset": ("onset",),
             "offset": ("offset",), "label": ("emotion",)}


def protocol_label(emotion: str, protocol: str) -> str:
    """The sheet's emotion (`Others`, ` happy `) as a class of the protocol; an emotion the
    protocol leaves out keeps its name, so it is reported as unused."""
    emotion = sheets.normalise_label(emotion)
    return PROTOCOLS[protocol].get(emotion, emotion)


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")


def read_casme3(data_dir, classes=None, protocol: str = "7", db: str = "casme3",
                follow_symlinks: bool = False) -> Database:
    """Part A micro-expressions in the class `protocol` (3, 4 or 7)."""
    check_protocol(protocol)
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SHEET_A, "CAS(ME)³ part A micro-expression sheet",
                                scope)
    names = sheets.sheet_names(sheet) if sheet.suffix != ".csv" else []
    rows = sheets.read_rows(sheet, "label" if "label" in names else 0)
    header = sheets.find_header(rows, ("Subject", "Filename", "Onset"), sheet)
    root = sheets.find_dir(data_dir, ("part_A", "Part_A", "part A"), scope=scope) or data_dir
    out = []
    for line, r in sheets.records(rows, header, COLUMNS_A, sheet):
        out.append({**r, "label": protocol_label(r["label"], protocol),
                    "media": root / r["subject"] / r["clip"] / "color",
                    "where": f"{sheet.name} row {line}"})
    selected = list(classes) if classes else list(PROTOCOL_CLASSES[protocol])
    return build_samples(db, data_dir, out, selected, tuple(EMOTIONS) + PROTOCOL_CLASSES["4"],
                         scope)


def read_casme3_c(data_dir, classes=None, protocol: str = "7", db: str = "casme3_c",
                  follow_symlinks: bool = False) -> Database:
    """Part C micro-expressions (no apex given) in the class `protocol`."""
    check_protocol(protocol)
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SHEET_C, "CAS(ME)³ part C sheet", scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("sub", "count", "onset"), sheet)
    root = sheets.find_dir(data_dir, ("part_C", "Part_C", "part C"), scope=scope) or data_dir
    out = []
    for line, r in sheets.records(rows, header, COLUMNS_C, sheet):
        subject = sheets.padded(r["subject"], 2)
        out.append({**r, "subject": subject, "apex": "",
                    "label": protocol_label(r["label"], protocol),
                    "media": root / subject / r["clip"] / "color",
                    "where": f"{sheet.name} row {line}"})
    selected = list(classes) if classes else list(PROTOCOL_CLASSES[protocol])
    return build_samples(db, data_dir, out, selected, tuple(EMOTIONS) + PROTOCOL_CLASSES["4"],
                         scope)
