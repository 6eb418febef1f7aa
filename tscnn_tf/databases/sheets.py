"""Annotation sheets and folders of the real releases: found by name, read cell by cell.

Releases differ: xlsx, xls or csv; a header in row 1 or below a block of notes; unnamed blank
columns; numbers stored as text or as floats; a doubled top folder after unzipping. These
helpers hide that, so each reader only says which names it wants.
"""
from __future__ import annotations

import csv
import dataclasses
import fnmatch
import io
import logging
import re
from pathlib import Path

from tscnn_tf.databases.base import Scope, scope_of

log = logging.getLogger("tscnn_tf")
DELIMITERS = ",;\t"


@dataclasses.dataclass
class TextTable:
    """A delimited text file's rows and how it was read."""

    rows: list[list[str]]
    encoding: str
    delimiter: str


def decode(raw: bytes) -> tuple[str, str]:
    """(text, encoding) of a sheet saved as UTF-8 (with or without BOM), UTF-16 or Latin-1."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "UTF-16"
    if raw[:200].count(b"\0") > len(raw[:200]) // 4:  # UTF-16 without a byte-order mark
        return raw.decode("utf-16-le", errors="replace"), "UTF-16-LE"
    try:
        return raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "Latin-1 (cp1252)"


def read_text_table(path) -> TextTable:
    """Rows of a delimited text sheet. The encoding and the delimiter (comma, semicolon, as
    spreadsheets write in many locales, or tab) are detected, not assumed."""
    text, encoding = decode(Path(path).read_bytes())
    if encoding != "UTF-8":
        log.warning("%s: read as %s text; UTF-8 is the expected encoding", path, encoding)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(DELIMITERS, key=first.count) if any(d in first for d in DELIMITERS) else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return TextTable(rows, encoding, delimiter)


def cell_text(value) -> str:
    """A cell as stripped text: 6.0 -> '6', NaN/None -> '', inner runs of spaces collapsed."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        if value.is_integer():
            return str(int(value))
    return re.sub(r"\s+", " ", str(value)).strip()


def read_rows(path, sheet=0) -> list[list[str]]:
    """Every row of a sheet (xlsx, xls or csv) as text cells; nothing is taken as a header."""
    import pandas as pd
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation sheet not found: {path}")
    if path.suffix.lower() == ".csv":
        return [[cell_text(v) for v in row] for row in read_text_table(path).rows]
    else:
        # calamine reads xls and xlsx alike; pandas deprecates its xlrd (xls) engine.
        frame = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object,
                              engine="calamine")
    return [[cell_text(v) for v in row] for row in frame.itertuples(index=False)]


def sheet_names(path) -> list[str]:
    import pandas as pd
    with pd.ExcelFile(path, engine="calamine") as book:
        return [str(name) for name in book.sheet_names]


def column_key(name: str) -> str:
    """'Onset Frame', 'onset_frame', ' OnsetFrame ' -> 'onsetframe'."""
    return re.sub(r"[\s_]+", "", name).lower()


def find_header(rows: list[list[str]], required: tuple[str, ...], path="") -> int:
    """Index of the first row holding every `required` column name (compared by column_key)."""
    wanted = {column_key(r) for r in required}
    for i, row in enumerate(rows):
        if wanted <= {column_key(c) for c in row if c}:
            return i
    raise ValueError(f"{path}: no header row with the columns {list(required)}")


def records(rows: list[list[str]], header: int, aliases: dict[str, tuple[str, ...]],
            path="") -> list[tuple[int, dict[str, str]]]:
    """(sheet row number, {field: cell}) for the non-empty rows below `header`.

    `aliases` maps each field to the column names that may hold it, in order of preference.
    """
    keys = [column_key(c) for c in rows[header]]
    columns = {}
    for field, names in aliases.items():
        found = next((keys.index(column_key(n)) for n in names if column_key(n) in keys), None)
        if found is None:
            raise ValueError(f"{path}: no column for {field!r} (looked for {list(names)}) in "
                             f"header {rows[header]}")
        columns[field] = found
    out = []
    for i, row in enumerate(rows[header + 1:], start=header + 2):
        if not any(row):
            continue
        out.append((i, {f: row[c] if c < len(row) else "" for f, c in columns.items()}))
    return out


def levels(root: Path, max_depth: int, scope: Scope):
    """(depth, entries) for depth 1..max_depth below `root`, sorted; a folder the scope refuses
    is counted and never listed."""
    folders = [root] if scope.admit(root, "folder") else []
    for depth in range(1, max_depth + 1):
        entries = []
        for folder in folders:
            try:
                entries += sorted(folder.iterdir())
            except OSError:
                continue
        yield depth, entries
        if depth < max_depth:
            folders = [p for p in entries if p.is_dir() and scope.admit(p, "folder")]


def find_files(root, patterns: tuple[str, ...], max_depth: int = 4,
               scope: Scope | None = None) -> list[Path]:
    """Files matching any glob pattern at the shallowest depth under `root` (at most
    `max_depth` folders down) that has any: deeper levels, such as frame folders, are not read.
    A file or folder that resolves outside the scope (default: `root`) is refused and counted."""
    root = Path(root)
    scope = scope_of(root, scope)
    for _, entries in levels(root, max_depth + 1, scope):
        found = [p for pattern in patterns for p in entries
                 if fnmatch.fnmatchcase(p.name, pattern) and p.is_file()]
        found = [p for p in dict.fromkeys(found) if scope.admit(p, "sheet")]
        if found:
            return found
    return []


def find_dir(root, names: tuple[str, ...], max_depth: int = 3,
             scope: Scope | None = None) -> Path | None:
    """The shallowest folder named one of `names` under `root` (else `root` itself, if so named),
    descending through a doubled top folder (`X/X/`) left by unzipping. Folders that resolve
    outside the scope (default: `root`) are refused and counted."""
    root = Path(root)
    scope = scope_of(root, scope)
    wanted = {n.lower() for n in names}
    candidates = []
    for _, entries in levels(root, max_depth, scope):
        candidates = [p for p in entries if p.name.lower() in wanted and p.is_dir()
                      and scope.admit(p, "folder")]
        if candidates:
            break
    if not candidates:
        if root.name.lower() not in wanted:
            return None
        candidates = [root]
    found = candidates[0]
    while (found / found.name).is_dir() and scope.admit(found / found.name, "folder"):
        found = found / found.name
    return found


def subfolders(folder: Path, scope: Scope, pattern: str = "*") -> list[Path]:
    """The sub-folders of `folder` named like `pattern`; those outside the scope are refused
    (counted) and never listed."""
    if not folder.is_dir() or not scope.admit(folder, "folder"):
        return []
    return [p for p in sorted(folder.iterdir())
            if fnmatch.fnmatchcase(p.name, pattern) and p.is_dir() and scope.admit(p, "folder")]


def normalise_label(text: str) -> str:
    """'  Happiness ' -> 'happiness'."""
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def frames_root(data_dir, names: dict[str, tuple[str, ...]], image_set: str = "auto",
                scope: Scope | None = None) -> Path:
    """The folder of the raw or cropped frames (`image_set` raw|cropped|auto: raw if present)."""
    if image_set not in ("auto", "raw", "cropped"):
        raise ValueError(f"image_set must be auto, raw or cropped, got {image_set!r}")
    for kind in (("raw", "cropped") if image_set == "auto" else (image_set,)):
        found = find_dir(data_dir, names[kind], scope=scope)
        if found is not None:
            return found
    wanted = names["raw"] + names["cropped"] if image_set == "auto" else names[image_set]
    raise FileNotFoundError(f"no frame folder named one of {list(wanted)} under {data_dir}"
                            f"{scope.note() if scope else ''}")


def newest_sheet(data_dir, patterns: tuple[str, ...], what: str,
                 scope: Scope | None = None) -> Path:
    """The sheet of the first pattern that matches anything; of several, the last by name (so
    the newest of dated releases). Sheets outside the scope (default: `data_dir`) are refused."""
    scope = scope_of(data_dir, scope)
    for pattern in patterns:
        found = find_files(data_dir, (pattern,), scope=scope)
        if found:
            return sorted(found, key=lambda p: p.name)[-1]
    raise FileNotFoundError(f"no {what} ({' or '.join(patterns)}) under {data_dir}"
                            f"{scope.note()}")


def padded(subject: str, width: int, prefix: str = "") -> str:
    """'1', '01', '1.0', 'sub01' -> prefix + zero-padded number; other text is kept."""
    digits = re.fullmatch(rf"(?:{re.escape(prefix)})?0*(\d+)", subject.strip(), re.IGNORECASE)
    return f"{prefix}{int(digits.group(1)):0{width}d}" if digits else subject.strip()
