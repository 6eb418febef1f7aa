"""Long-video databases for spotting: videos and their ground-truth intervals (micro/macro).

    casme_sq  CAS(ME)² raw long videos: `rawpic/s15/15_0101disgustingteeth/img1.jpg`, intervals
              from every row of `CAS(ME)^2code_final.xlsx` (type micro-/macro-expression)
    samm_lv   SAMM long videos: `SAMM_longvideos/006_1/006_1_00001.jpg`,
              `SAMM_LongVideos_V2_Release.xlsx` (notes above the header; Filename `<video>_<k>`;
              Type `Macro` or `Micro - 1/2`; fractional frame numbers; apex -1)
    casme3    CAS(ME)³ part A long videos: `part_A/spNO.1/a/color/1.jpg`, sheet `AU+Emotion` of
              `CAS(ME)3_part_A_v2.xls` (an `Expression type` column)

Frame numbers are the sheets' (the integers in the file names). A row that cannot be used is
dropped with its reason, as in the clip readers; a row repeating an interval (same video,
onset and offset) as `duplicate row`. Sheets, folders and frame files that resolve outside
`data_dir` are refused and counted unless `follow_symlinks`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import (IMAGE_EXTENSIONS, OUTSIDE, Dropped, Interval, LongVideo,
                                     Scope, list_frames, parse_frame, unsafe_name)
from tscnn_tf.databases.casme_sq import (SHEETS as CASME_SQ_SHEETS, code_rows, media_roots,
                                         naming_rules)

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


def expression_kind(text: str) -> str | None:
    """`micro` or `macro` from a type cell (`Micro - 1/2`, `macro-expression`); None otherwise."""
    text = text.lower()
    return "micro" if "micro" in text else ("macro" if "macro" in text else None)


class LongDatabase:
    """Videos by name, and the rows dropped."""

    def __init__(self, name: str, scope: Scope | None = None):
        self.name = name
        self.videos: dict[str, LongVideo] = {}
        self.dropped: list[Dropped] = []
        self.scope = scope
        self._rows: dict[tuple, str] = {}  # (video, onset, offset) -> the row that gave it
        self.linked: dict[Path, list[str]] = {}  # frame folder -> its frame files linking out

    def drop(self, subject, clip, where, kind, detail=""):
        self.dropped.append(Dropped.of(subject, clip, where, kind, detail))

    def add(self, key: str, subject: str, folder: Path, fps: float, interval: Interval,
            clip: str = "", where: str = "") -> None:
        """Add `interval` to video `key`; one the video already holds (same onset and offset)
        is dropped as a duplicate row."""
        first = self._rows.get((key, interval.onset, interval.offset))
        if first is not None:
            self.drop(subject, clip, where, "duplicate row", f"video {key}, onset "
                      f"{interval.onset} and offset {interval.offset} as {first}")
            return
        self._rows[key, interval.onset, interval.offset] = where or "an earlier row"
        if key not in self.videos:
            self.videos[key] = LongVideo(key, subject, str(folder), fps, [])
        self.videos[key].intervals.append(interval)

    def finish(self) -> "LongDatabase":
        """Add the sheets and folders the scope refused to the drops."""
        if self.scope is not None:
            self.dropped += self.scope.refused
        return self

    def summary(self) -> dict:
        kinds = {"micro": 0, "macro": 0}
        for v in self.videos.values():
            for i in v.intervals:
                kinds[i.type] += 1
        per_reason: dict[str, int] = {}
        for d in self.dropped:
            per_reason[d.kind] = per_reason.get(d.kind, 0) + 1
        return {"db": self.name, "num_videos": len(self.videos),
                "follow_symlinks": bool(self.scope and self.scope.follow_symlinks),
                "num_subjects": len({v.subject for v in self.videos.values()}),
                "intervals": kinds,
                "dropped": [{"subject": d.subject, "clip": d.clip, "reason": d.reason,
                             "kind": d.kind} for d in self.dropped],
                "dropped_per_reason": per_reason}


def linked_frames(folder: Path, scope: Scope) -> list[str]:
    """The frame files of `folder` (admitted) that link outside the scope."""
    if scope.follow_symlinks:
        return []
    with os.scandir(folder) as entries:
        links = [e.path for e in entries if e.is_symlink()
                 and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
    return scope.outside_frames(links)


def usable_folder(database: LongDatabase, folder: Path | None, subject, clip, where) -> bool:
    """Whether `folder` is a frame folder the scope allows, with no frame file linking out;
    else the row is dropped with its reason. The folder is not listed before it is allowed."""
    scope = database.scope
    if folder is not None and not scope.allows(folder):
        database.drop(subject, clip, where, f"media {OUTSIDE}", str(folder))
        return False
    if folder is None or not folder.is_dir():
        database.drop(subject, clip, where, "no frame folder", str(folder))
        return False
    if folder not in database.linked:  # a video holds many rows: its folder is scanned once
        database.linked[folder] = linked_frames(folder, scope)
    linked = database.linked[folder]
    if linked:
        database.drop(subject, clip, where, f"media {OUTSIDE}",
                      f"{len(linked)} frame file(s) link out, e.g. {linked[0]}")
        return False
    return True


def read_casme_sq_long(data_dir, fps: float = 30.0, follow_symlinks: bool = False) -> LongDatabase:
    """Every row of the CAS(ME)² code sheet as an interval of its raw long video."""
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, CASME_SQ_SHEETS, "CAS(ME)² code sheet", scope)
    participants, codes = naming_rules(sheet)
    if not participants:
        raise ValueError(f"{sheet}: no 'naming rule1' sheet mapping participants to folders")
    roots = media_roots(data_dir, scope)
    database = LongDatabase("casme_sq", scope)
    folders: dict[tuple[str, str], Path | None] = {}
    for where, cells, problem in code_rows(sheet):
        subject, clip, onset, apex, offset, _, emotion, kind, _ = cells
        if problem is not None:
            database.drop(f"participant {subject}", clip, where, *problem)
            continue
        folder_name = participants.get(subject)
        if folder_name is None:
            database.drop(f"participant {subject}", clip, where, "participant not in naming rule1")
            continue
        if offset in ("0", "") and apex in ("0", ""):
            database.drop(folder_name, clip, where, "offset and apex both 0 or empty")
            continue
        if expression_kind(kind) is None:
            database.drop(folder_name, clip, where, "unknown type", repr(kind))
            continue
        if offset in ("0", ""):
            offset = apex  # the sheet's "offset 0: use the apex"
        stem = re.sub(r"_\d+$", "", clip.lower())
        code = codes.get(stem)
        key = (folder_name, code or stem)
        if key not in folders:
            number = int(folder_name[1:]) if folder_name[1:].isdigit() else folder_name
            subject_dir = roots["rawpic"] / folder_name if roots["rawpic"] is not None else None
            if subject_dir is not None and not scope.allows(subject_dir):
                folders[key] = subject_dir  # refused below, never listed
            else:
                found = sorted(subject_dir.glob(f"{number}_{code}*")) \
                    if subject_dir is not None and code else []
                folders[key] = found[0] if found else None
        folder = folders[key]
        if not usable_folder(database, folder, folder_name, clip, where):
            continue
        interval, reason, _ = interval_of(onset, "" if apex == "0" else apex, offset,
                                          expression_kind(kind),
                                          sheets.normalise_label(emotion) or None)
        if interval is None:
            database.drop(folder_name, clip, where, reason, f"{onset}/{offset}")
            continue
        database.add(f"{folder_name}/{folder.name}", folder_name, folder, fps, interval, clip,
                     where)
    return database.finish()


SAMM_LV_SHEETS = ("SAMM_LongVideos_V2_Release*.xls*", "SAMM_LongVideos*.xls*")
SAMM_LV_COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset",),
                   "apex": ("Apex",), "offset": ("Offset",), "type": ("Type",)}


def read_samm_lv(data_dir, fps: float = 200.0, follow_symlinks: bool = False) -> LongDatabase:
    """SAMM long videos: `Filename` `<video>_<k>` is the k-th expression of `<video>`."""
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SAMM_LV_SHEETS, "SAMM long-video sheet", scope)
    rows = sheets.read_rows(sheet)
    header = sheets.find_header(rows, ("Subject", "Filename", "Type"), sheet)
    root = sheets.find_dir(data_dir, ("SAMM_longvideos", "SAMM_LongVideos", "SAMM_longvideo"),
                           scope=scope) or data_dir
    database = LongDatabase("samm_lv", scope)
    for line, r in sheets.records(rows, header, SAMM_LV_COLUMNS, sheet):
        where = f"{sheet.name} row {line}"
        video = r["clip"].rsplit("_", 1)[0] if "_" in r["clip"] else r["clip"]
        subject = sheets.padded(r["subject"], 3)
        kind = expression_kind(r["type"])
        if kind is None:
            database.drop(subject, r["clip"], where, "unknown type", repr(r["type"]))
            continue
        if unsafe_name(video):
            database.drop(subject, r["clip"], where, "subject or clip is a path, not a name",
                          repr(video))
            continue
        folder = root / video
        if not usable_folder(database, folder, subject, r["clip"], where):
            continue
        interval, reason, _ = interval_of(r["onset"], r["apex"], r["offset"], kind)
        if interval is None:
            database.drop(subject, r["clip"], where, reason, f"{r['onset']}/{r['offset']}")
            continue
        database.add(video, subject, folder, fps, interval, r["clip"], where)
    return database.finish()


CASME3_LONG_SHEETS = ("CAS(ME)3_part_A_v2.xls*", "CAS(ME)3_part_A*.xls*")
CASME3_LONG_COLUMNS = {"subject": ("Subject",), "clip": ("Filename",), "onset": ("Onset",),
                       "apex": ("Apex",), "offset": ("Offset",),
                       "type": ("Expression type", "Expression_type", "type")}


def read_casme3_long(data_dir, fps: float = 30.0, follow_symlinks: bool = False) -> LongDatabase:
    """CAS(ME)³ part A: every row of the `AU+Emotion` sheet as an interval of its task video."""
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, CASME3_LONG_SHEETS, "CAS(ME)³ part A sheet", scope)
    names = sheets.sheet_names(sheet)
    name = next((n for n in names if sheets.column_key(n) == "au+emotion"), 0)
    rows = sheets.read_rows(sheet, name)
    header = sheets.find_header(rows, ("Subject", "Filename", "Onset"), sheet)
    root = sheets.find_dir(data_dir, ("part_A", "Part_A", "part A"), scope=scope) or data_dir
    database = LongDatabase("casme3", scope)
    for line, r in sheets.records(rows, header, CASME3_LONG_COLUMNS, sheet):
        where = f"{sheet.name} row {line}"
        kind = expression_kind(r["type"])
        if kind is None:
            database.drop(r["subject"], r["clip"], where, "unknown type", repr(r["type"]))
            continue
        if unsafe_name(r["subject"]) or unsafe_name(r["clip"]):
            database.drop(r["subject"], r["clip"], where, "subject or clip is a path, not a name",
                          f"{r['subject']!r}/{r['clip']!r}")
            continue
        folder = root / r["subject"] / r["clip"] / "color"
        if not usable_folder(database, folder, r["subject"], r["clip"], where):
            continue
        interval, reason, _ = interval_of(r["onset"], r["apex"], r["offset"], kind)
        if interval is None:
            database.drop(r["subject"], r["clip"], where, reason, f"{r['onset']}/{r['offset']}")
            continue
        database.add(f"{r['subject']}/{r['clip']}", r["subject"], folder, fps, interval,
                     r["clip"], where)
    return database.finish()


def frame_numbers(video: LongVideo) -> list[int] | None:
    """The frame numbers of a frame-folder video in stream order (None for a video file)."""
    return list(list_frames(video.path)) if Path(video.path).is_dir() else None
