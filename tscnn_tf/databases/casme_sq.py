"""CAS(ME)²: `rawpic/s15/15_0101disgustingteeth/img001.jpg` (also `rawvideo/s15/<name>.avi`,
`selectedpic/s15/anger1_1/`, `cropped/15/anger1_1/`) and `CAS(ME)^2code_final.xlsx`.

The first sheet has no header: subject, clip (`anger1_1`), onset, apex, offset, AUs, emotion,
type, self-report. `offset == 0` means "use the apex". Sheets `naming rule1` (participant ->
folder `s15`) and `naming rule2` (`0101` -> `disgust1`) map sheet names to folder names.
Paper: 3 classes anger, happy, disgust taken from the clip prefix; macro+micro (341) or micro only.
"""
from __future__ import annotations

import re
from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Dropped, Scope, class_selection, parse_int
from tscnn_tf.databases.custom import build_samples

CLASSES = ("anger", "happy", "disgust")
SHEETS = ("CAS(ME)^2code_final*.xls*", "CAS(ME)2code_final*.xls*", "*code_final*.xls*")
EXPRESSION_TYPES = ("all", "micro")


def naming_rules(sheet: Path) -> tuple[dict[str, str], dict[str, str]]:
    """participant -> subject folder (`4` -> `s20`), expression name -> code (`disgust1` -> `0101`).

    `naming rule1` of the real release has no header and three columns: the folder's number
    (20), the folder (`s20`) and the participant number the code sheet uses (4). The
    participant is the number that is not the folder's own; reading the first number as the
    participant attaches another person's frames to the label.
    """
    names = sheets.sheet_names(sheet)
    def rows_of(key):
        name = next((n for n in names if sheets.column_key(n) == key), None)
        return sheets.read_rows(sheet, name) if name is not None else []
    participants = {}
    for row in rows_of("namingrule1"):
        cells = [c for c in row if c]
        folder = next((c for c in cells if re.fullmatch(r"s\d+", c, re.IGNORECASE)), None)
        numbers = [int(c) for c in cells if c.isdigit()]
        if folder is None or not numbers:
            continue  # a title or header row
        if len(numbers) > 1 and int(folder[1:]) in numbers:
            numbers.remove(int(folder[1:]))  # the folder's own number
        participants[str(numbers[0])] = folder.lower()
    codes = {}
    for row in rows_of("namingrule2"):
        code = next((c for c in row if c.isdigit()), None)
        name = next((c for c in row if re.fullmatch(r"[A-Za-z]+\d*", c)), None)
        if code and name:
            codes[name.lower()] = f"{int(code):04d}"
    return participants, codes


def code_rows(sheet: Path) -> list[tuple[str, list[str], tuple[str, str] | None]]:
    """(where, the 9 cells, problem) for every non-blank row of the code sheet but a header row
    on top; `problem` is (kind, detail) when the participant or clip cell cannot be used (`x1`,
    `1.5`, empty), else None and the participant cell is the plain number."""
    out = []
    for line, cells in enumerate(sheets.read_rows(sheet, 0), start=1):
        if not any(cells):
            continue
        cells = (cells + [""] * 9)[:9]
        participant = parse_int(cells[0])
        if not out and participant is None and parse_int(cells[2]) is None:
            out.append(None)  # a header row (the release has none; some copies add one)
            continue
        problem = None
        if participant is None:
            problem = ("invalid participant" if cells[0] else "empty participant", repr(cells[0]))
        elif not cells[1]:
            problem = ("empty clip", "")
        else:
            cells[0] = str(participant)
        out.append((f"{sheet.name} row {line}", cells, problem))
    return [row for row in out if row is not None]


def media_roots(data_dir: Path, scope: Scope | None = None) -> dict[str, Path | None]:
    """The release's frame and video folders, found once per read."""
    return {"data_dir": data_dir, **{top: sheets.find_dir(data_dir, (top,), scope=scope)
                                     for top in ("rawpic", "rawvideo", "selectedpic", "cropped")}}


def media_for(roots: dict, folder: str, clip: str, code: str | None, image_set: str,
              scope: Scope | None = None) -> Path:
    """The clip's frame folder or video (without suffix), raw frames first; a subject folder
    outside the scope is not listed."""
    scope = scope or Scope(roots["data_dir"])
    number = str(int(folder[1:])) if folder[1:].isdigit() else folder
    candidates = []
    if image_set in ("auto", "raw") and code:
        for top in ("rawpic", "rawvideo"):
            if roots[top] is not None and scope.allows(roots[top] / folder):
                candidates += sorted(p.with_suffix("") for p in (roots[top] / folder).glob(
                    f"{number}_{code}*"))
    if image_set in ("auto", "cropped"):
        for top, sub in (("selectedpic", folder), ("cropped", number)):
            if roots[top] is not None:
                candidates.append(roots[top] / sub / clip)
    for path in candidates:
        if path.is_dir() or any(path.with_suffix(e).is_file() for e in (".avi", ".mp4")):
            return path
    return candidates[0] if candidates else roots["data_dir"] / "rawpic" / folder / clip


def read_casme_sq(data_dir, classes=None, image_set: str = "auto",
                  expression_type: str = "all", db: str = "casme_sq",
                  follow_symlinks: bool = False) -> Database:
    """`expression_type`: 'all' (macro + micro, 341 in the paper) or 'micro'."""
    if expression_type not in EXPRESSION_TYPES:
        raise ValueError(f"expression_type must be one of {EXPRESSION_TYPES}")
    data_dir = Path(data_dir)
    scope = Scope(data_dir, follow_symlinks)
    sheet = sheets.newest_sheet(data_dir, SHEETS, "CAS(ME)² code sheet", scope)
    participants, codes = naming_rules(sheet)
    if not participants:
        raise ValueError(f"{sheet}: no 'naming rule1' sheet mapping participants to folders "
                         "(s15..s40); without it the code sheet's participant numbers would be "
                         "read as folder numbers, which belong to other people")
    roots = media_roots(data_dir, scope)
    rows, type_dropped = [], []
    for where, cells, problem in code_rows(sheet):
        subject, clip, onset, apex, offset, _, _, kind, _ = cells
        if problem is not None:
            type_dropped.append(Dropped.of(f"participant {subject}", clip, where, *problem))
            continue
        folder = participants.get(subject)
        if folder is None:
            type_dropped.append(Dropped.of(f"participant {subject}", clip, where,
                                           "participant not in naming rule1", subject))
            continue
        if expression_type == "micro" and "micro" not in kind.lower():
            type_dropped.append(Dropped.of(folder, clip, where, "not a micro-expression "
                                           "(micro-only selection)", kind or "untyped"))
            continue
        if offset in ("0", "") and apex in ("0", ""):
            type_dropped.append(Dropped.of(folder, clip, where, "offset and apex both 0 or empty"))
            continue
        if offset in ("0", ""):
            offset = apex  # the sheet's "offset 0: use the apex"
        if apex == "0":
            apex = ""
        expression = re.sub(r"_\d+$", "", clip.lower())
        label = re.match(r"[a-z]*", expression).group(0)
        # Frame numbers of the raw frames (img001 = 1) and of the video (0-based) differ by one.
        media = media_for(roots, folder, clip, codes.get(expression), image_set, scope)
        if not media.is_dir() and media.parent.parent.name == "rawvideo":
            onset, apex, offset = (str(int(v) - 1) if v.isdigit() else v
                                   for v in (onset, apex, offset))
        rows.append({"subject": folder, "clip": clip, "onset": onset, "apex": apex,
                     "offset": offset, "label": label, "media": media, "where": where})
    selected = class_selection(classes, CLASSES)
    database = build_samples(db, data_dir, rows, selected, scope=scope)
    database.dropped = type_dropped + database.dropped
    return database
