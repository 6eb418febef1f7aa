"""Long-video databases for spotting: videos and their ground-truth intervals (micro/macro).

    casme_sq  CAS(ME)² raw long videos: `rawpic/s15/15_0101disgustingteeth/img1.jpg`, intervals
              from every row of `CAS(ME)^2code_final.xlsx` (type micro-/macro-expression)
    samm_lv   SAMM long videos: `SAMM_longvideos/006_1/006_1_00001.jpg`,
              `SAMM_LongVideos_V2_Release.xlsx` (notes above the header; Filename `<video>_<k>`;
              Type `Macro` or `Micro - 1/2`; fractional frame numbers; apex -1)
    casme3    CAS(ME)³ part A long videos: `part_A/spNO.1/a/color/1.jpg`, sheet `AU+Emotion` of
              `CAS(ME)3_part_A_v2.xls` (an `Expression type` column)

Frame numbers are the sheets' (the integers in the file names). A row that cannot be used is
dropped with its reason, as in the clip readers.
"""
from __future__ import annotations

import re
from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import (Dropped, Interval, LongVideo, inside, list_frames,
                                     parse_frame)
from tscnn_tf.databases.casme_sq import SHEETS as CASME_SQ_SHEETS, media_roots, naming_rules

LONG_DATABASES = ("synthetic_long", "casme_sq", "samm_lv", "casme3")


def interval_of(onset_text, apex_text, offset_text, kind: str, label=None
                ) -> tuple[Interval | None, str | None, list[str]]:
    """(interval, drop reason, warnings) from a sheet's cells; apex 0, -1 or outside is None."""
    warnings = []
    (onset, n1), (apex, n2), (offset, n3) = (parse_frame(v) for v in
                                             (onset_text, apex_text, offset_text))
    warnings += [n for n in (n1, n2, n3) if n]
    if onset is None or offset is None:
        return None, "invalid onset/offset", warnings
    if onset > offset:
        return None, "onset after offset", warnings
    if apex is not None and not onset <= apex <= offset:
        apex = None
    return Interval(onset, apex, offset, kind, label), None, warnings


class LongDatabase:
    """Videos by name, and the rows dropped."""

    def __init__(self, name: str):
        self.name = name
        self.videos: dict[str, LongVideo] = {}
        self.dropped: list[Dropped] = []

    def drop(self, subject, clip, where, kind, detail=""):
        self.dropped.append(Dropped.of(subject, clip, where, kind, detail))

    def add(self, key: str, subject: str, folder: Path, fps: float, interval: Interval) -> None:
        if key not in self.videos:
            self.videos[key] = LongVideo(key, subject, str(folder), fps, [])
        self.videos[key].intervals.append(interval)

    def summary(self) -> dict:
        kinds = {"micro": 0, "macro": 0}
        for v in self.videos.values():
            for i in v.intervals:
                kinds[i.type] += 1
        per_reason: dict[str, int] = {}
        for d in self.dropped:
            per_reason[d.kind] = per_reason.get(d.kind, 0) + 1
        return {"db": self.name, "num_videos": len(self.videos),
                "num_subjects": len({v.subject for v in self.videos.values()}),
                "intervals": kinds,
                "dropped": [{"subject": d.subject, "clip": d.clip, "reason": d.reason,
                             "kind": d.kind} for d in self.dropped],
                "dropped_per_reason": per_reason}


def usable_folder(database: LongDatabase, data_dir: Path, folder: Path | None, subject, clip,
                  where) -> bool:
    if folder is None or not folder.is_dir():
        database.drop(subject, clip, where, "no frame folder", str(folder))
        return False
    if not inside(data_dir, folder):
        database.drop(subject, clip, where, "media outside the database folder", str(folder))
        return False
    return True


def read_casme_sq_long(data_dir, fps: float = 30.0) -> LongDatabase:
    """Every row of the CAS(ME)² code sheet as an interval of its raw long video."""
    data_dir = Path(data_dir)
    sheet = sheets.newest_sheet(data_dir, CASME_SQ_SHEETS, "CAS(ME)² code sheet")
    participants, codes = naming_rules(sheet)
    if not participants:
        raise ValueError(f"{sheet}: no 'naming rule1' sheet mapping participants to folders")
    roots = media_roots(data_dir)
    database = LongDatabase("casme_sq")
    folders: dict[tuple[str, str], Path | None] = {}
    for line, cells in enumerate(sheets.read_rows(sheet, 0), start=1):
        subject, clip, onset, apex, offset, _, emotion, kind, _ = (cells + [""] * 9)[:9]
        if not subject.isdigit() or not clip:
            continue
        where = f"{sheet.name} row {line}"
        folder_name = participants.get(str(int(subject)))
        if folder_name is None:
            database.drop(f"participant {subject}", clip, where, "participant not in naming rule1")
            continue
        if offset in ("0", "") and apex in ("0", ""):
            database.drop(folder_name, clip, where, "offset and apex both 0 or empty")
            continue
        if offset in ("0", ""):
            offset = apex  # the sheet's "offset 0: use the apex"
        stem = re.sub(r"_\d+$", "", clip.lower())
        code = codes.get(stem)
        key = (folder_name, code or stem)
        if key not in folders:
            number = int(folder_name[1:]) if folder_name[1:].isdigit() else folder_name
            found = sorted((roots["rawpic"] / folder_name).glob(f"{number}_{code}*")) \
                if roots["rawpic"] is not None and code else []
            folders[key] = found[0] if found else None
        folder = folders[key]
        if not usable_folder(database, data_dir, folder, folder_name, clip, where):
            continue
        interval, reason, _ = interval_of(onset, "" if apex == "0" else apex, offset,
                                          "micro" if "micro" in kind.lower() else "macro",
                                          sheets.normalise_label(emotion) or None)
        if interval is None:
            database.drop(folder_name, clip, where, reason, f"{onset}/{offset}")
            continue
        database.add(f"{folder_name}/{folder.name}", folder_name, folder, fps, interval)
    return database


SAMM_LV_SHEETS = ("SAMM_LongVideos_V2_Release*.xls*", "SAMM_LongVideos*.xls*")
SAMM_LV_COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset",),
                   "apex": ("Apex",), "offset": ("Offset",), "type": ("Type",)}


def read_samm_lv(data_dir, fps: float = 200.0) -> LongDatabase:
    """SAMM long videos: `Filename` `<video>_<k>` is the k-th expression of `<video>`."""
    data_dir = Path(data_dir)
    sheet = sheets.newest_sheet(data_dir, SAMM_LV_SHEETS, "SAMM long-video sheet")
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename", "Type"), sheet)
    root = sheets.find_dir(data_dir, ("SAMM_longvideos", "SAMM_LongVideos", "SAMM_longvideo")) \
        or data_dir
    database = LongDatabase("samm_lv")
    for line, r in sheets.records(rows, header, SAMM_LV_COLUMNS, sheet):
        where = f"{sheet.name} row {line}"
        video = r["clip"].rsplit("_", 1)[0] if "_" in r["clip"] else r["clip"]
        subject = sheets.padded(r["subject"], 3)
        kind = "micro" if "micro" in r["type"].lower() else (
            "macro" if "macro" in r["type"].lower() else None)
        if kind is None:
            database.drop(subject, r["clip"], where, "unknown type", repr(r["type"]))
            continue
        folder = root / video
        if not usable_folder(database, data_dir, folder, subject, r["clip"], where):
            continue
        interval, reason, _ = interval_of(r["onset"], r["apex"], r["offset"], kind)
        if interval is None:
            database.drop(subject, r["clip"], where, reason, f"{r['onset']}/{r['offset']}")
            continue
        database.add(video, subject, folder, fps, interval)
    return database


CASME3_LONG_SHEETS = ("CAS(ME)3_part_A_v2.xls*", "CAS(ME)3_part_A*.xls*")
CASME3_LONG_COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset",),
                       "apex": ("Apex",), "offset": ("Offset",),
                       "type": ("Expression type", "Expression_type", "type")}


def read_casme3_long(data_dir, fps: float = 30.0) -> LongDatabase:
    """CAS(ME)³ part A: every row of the `AU+Emotion` sheet as an interval of its task video."""
    data_dir = Path(data_dir)
    sheet = sheets.newest_sheet(data_dir, CASME3_LONG_SHEETS, "CAS(ME)³ part A sheet")
    names = sheets.sheet_names(sheet)
    name = next((n for n in names if sheets.column_key(n) == "au+emotion"), 0)
    rows = sheets.read_rows(sheet, name)
    header = sheets.find_header(rows, ("Subject", "Filename", "Onset"), sheet)
    root = sheets.find_dir(data_dir, ("part_A", "Part_A", "part A")) or data_dir
    database = LongDatabase("casme3")
    for line, r in sheets.records(rows, header, CASME3_LONG_COLUMNS, sheet):
        where = f"{sheet.name} row {line}"
        kind = "micro" if "micro" in r["type"].lower() else "macro"
        folder = root / r["subject"] / r["clip"] / "color"
        if not usable_folder(database, data_dir, folder, r["subject"], r["clip"], where):
            continue
        interval, reason, _ = interval_of(r["onset"], r["apex"], r["offset"], kind)
        if interval is None:
            database.drop(r["subject"], r["clip"], where, reason, f"{r['onset']}/{r['offset']}")
            continue
        database.add(f"{r['subject']}/{r['clip']}", r["subject"], folder, fps, interval)
    return database


def frame_numbers(video: LongVideo) -> list[int] | None:
    """The frame numbers of a frame-folder video in stream order (None for a video file)."""
    return list(list_frames(video.path)) if Path(video.path).is_dir() else None
