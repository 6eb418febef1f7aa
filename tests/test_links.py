"""One rule for symbolic links: by default nothing that resolves outside `data_dir` (sheet,
folder or frame file) is opened or listed, and each refusal is counted; `follow_symlinks`
opts in. Checked on every sheet reader of the issue (clip and long-video), on fixtures in the
releases' shapes (tests/db_fixtures.py)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.extract_features import dry_run
from tests import db_fixtures as fx
from tscnn_tf.databases import long_videos, read_database
from tscnn_tf.databases.base import IMAGE_EXTENSIONS

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = "media outside the database folder"
BUILDERS = {
    "casme3": lambda r: fx.casme3(r, rows_total=10, subjects=2, videos=5),
    "casme3_c": lambda r: fx.casme3_c(r, rows_total=6, subjects=3),
    "mmew": fx.mmew,
    "fourdme": fx.fourdme,
    "casme_sq": lambda r: fx.casme_sq(r, videos=3, rows_total=9, micro=9, offset_zero=0),
    "samm_lv": lambda r: fx.samm_lv(r, videos=4, subjects=2, micro=6, macro=2),
    "casme_sq_long": lambda r: fx.casme_sq(r, videos=3, rows_total=9, micro=9, offset_zero=0),
    "casme3_long": lambda r: fx.casme3_long(r, videos=4, micro=3, macro=3),
    "casme2": lambda r: fx.casme2(r, {"happiness": 3, "surprise": 3}, 3, extra_labels=()),
    "samm": lambda r: fx.samm(r, {"anger": 3, "happiness": 3}, 3, extra_labels=()),
    "casme": lambda r: fx.casme(r, {"tense": 10, "surprise": 10}, extra_labels=()),
    "smic": lambda r: fx.smic(r, {"negative": 3, "positive": 3}, 3),
}
SHEETLESS = ("smic",)
LONG = {"samm_lv": long_videos.read_samm_lv, "casme_sq_long": long_videos.read_casme_sq_long,
        "casme3_long": long_videos.read_casme3_long}


def read(db: str, data_dir: Path, **options) -> tuple[int, list[str], list[str]]:
    """(samples or intervals kept, the media paths they use, the drop kinds)."""
    if db in LONG:
        database = LONG[db](data_dir, **options)
        media = [p for v in database.videos.values() for p in (v.path, *Path(v.path).iterdir())]
        kept = sum(len(v.intervals) for v in database.videos.values())
    else:
        database = read_database(db, data_dir, **options)
        media = [p for s in database.samples for p in (s.frames or {}).values()]
        kept = len(database.samples)
    return kept, media, [d.kind for d in database.dropped]


def count(db, data_dir, **options) -> int:
    return read(db, data_dir, **options)[0]


@pytest.fixture
def listed(monkeypatch):
    """Every folder listed (os.scandir, os.listdir: what pathlib and glob use), resolved."""
    seen: list[Path] = []
    real_scandir, real_listdir = os.scandir, os.listdir

    def scandir(path="."):
        seen.append(Path(os.fspath(path)).resolve())
        return real_scandir(path)

    def listdir(path="."):
        seen.append(Path(os.fspath(path)).resolve())
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    return seen


def under(paths, folder: Path) -> list[Path]:
    return [p for p in paths if Path(p).resolve().is_relative_to(folder.resolve())]


def frame_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_dir() and any(
        f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir()))


def build(db, tmp_path) -> tuple[Path, Path, int]:
    data_dir, outside = tmp_path / "db", tmp_path / "elsewhere"
    BUILDERS[db](data_dir)
    outside.mkdir()
    return data_dir, outside, count(db, data_dir)


@pytest.mark.parametrize("db", [db for db in BUILDERS if db not in SHEETLESS])
def test_a_sheet_reached_through_a_symlinked_folder_is_not_read(db, tmp_path, listed):
    data_dir, outside, baseline = build(db, tmp_path)
    (outside / "meta").mkdir()
    for sheet in [p for p in data_dir.iterdir() if p.is_file()]:
        shutil.move(sheet, outside / "meta" / sheet.name)
    (data_dir / "meta").symlink_to(outside / "meta")
    with pytest.raises(FileNotFoundError, match="resolve outside.*--follow_symlinks"):
        read(db, data_dir)
    assert under(listed, outside) == []
    assert count(db, data_dir, follow_symlinks=True) == baseline


@pytest.mark.parametrize("db", list(BUILDERS))
def test_a_symlinked_media_folder_is_refused_and_counted(db, tmp_path, listed):
    data_dir, outside, baseline = build(db, tmp_path)
    folder = frame_folders(data_dir)[0]
    shutil.move(folder, outside / "clip")
    folder.symlink_to(outside / "clip")
    listed.clear()
    kept, media, kinds = read(db, data_dir)
    assert under(listed, outside) == []
    assert OUTSIDE in kinds and kept < baseline and under(media, outside) == []
    assert count(db, data_dir, follow_symlinks=True) == baseline


@pytest.mark.parametrize("db", list(BUILDERS))
def test_a_frame_file_linking_out_refuses_its_clip(db, tmp_path):
    data_dir, outside, baseline = build(db, tmp_path)
    folder = frame_folders(data_dir)[0]
    for frame in [f for f in sorted(folder.iterdir()) if f.suffix.lower() in IMAGE_EXTENSIONS]:
        shutil.move(frame, outside / frame.name)
        frame.symlink_to(outside / frame.name)
    kept, media, kinds = read(db, data_dir)
    assert OUTSIDE in kinds and kept < baseline and under(media, outside) == []
    assert count(db, data_dir, follow_symlinks=True) == baseline


def test_a_symlinked_top_folder_is_counted_and_not_searched(tmp_path, listed):
    data_dir, outside, baseline = build("samm_lv", tmp_path)
    shutil.move(data_dir / "SAMM_longvideos", outside / "SAMM_longvideos")
    (data_dir / "SAMM_longvideos").symlink_to(outside / "SAMM_longvideos")
    listed.clear()
    summary = long_videos.read_samm_lv(data_dir).summary()
    assert summary["dropped_per_reason"]["folder outside the database folder"] == 1
    assert summary["follow_symlinks"] is False
    assert sum(summary["intervals"].values()) == 0 and under(listed, outside) == []
    assert count("samm_lv", data_dir, follow_symlinks=True) == baseline


def test_a_data_dir_that_is_itself_a_symlink_is_read_whole(tmp_path):
    data_dir, _, baseline = build("samm_lv", tmp_path)
    (tmp_path / "link").symlink_to(data_dir)
    assert count("samm_lv", tmp_path / "link") == baseline


def test_a_dotdot_row_is_dropped_before_anything_outside_is_listed(tmp_path, listed):
    """MMEW listed `<root>/<Subject>/` to find the emotion folder before the row was dropped."""
    data_dir, outside, baseline = build("mmew", tmp_path)
    fx.write_frames(outside / "happiness" / "clip", range(1, 12), lambda m: f"{m}.jpg")
    import openpyxl
    book = openpyxl.load_workbook(data_dir / "MMEW_Micro_Exp.xlsx")
    book.active.append([f"../{outside.name}", "clip", 2, 5, 9, "AU4", "happiness", None])
    book.save(data_dir / "MMEW_Micro_Exp.xlsx")
    listed.clear()
    database = read_database("mmew", data_dir)
    assert len(database.samples) == baseline
    assert [d.kind for d in database.dropped].count("subject or clip is a path, not a name") == 1
    assert under(listed, outside) == []


def test_the_rule_and_its_counts_in_the_dry_run_summaries(tmp_path):
    """`spot --db --dry_run` and the feature stage's dry run: without and with the flag."""
    data_dir, outside, baseline = build("samm_lv", tmp_path)
    folder = frame_folders(data_dir)[0]
    shutil.move(folder, outside / "video")
    folder.symlink_to(outside / "video")
    for flag, expected in (("--nofollow_symlinks", False), ("--follow_symlinks", True)):
        out = tmp_path / f"summary{expected}.json"
        run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", "--db=samm_lv",
                              f"--data_dir={data_dir}", "--dry_run", f"--summary_json={out}",
                              flag], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, run.stderr[-2000:]
        summary = json.loads(out.read_text())
        assert summary["follow_symlinks"] is expected
        assert sum(summary["intervals"].values()) == baseline - (
            0 if expected else summary["dropped_per_reason"][OUTSIDE])
        assert (OUTSIDE in summary["dropped_per_reason"]) is not expected
    clips, outside_clips = tmp_path / "clips", tmp_path / "elsewhere_clips"
    BUILDERS["fourdme"](clips)
    folder = frame_folders(clips)[0]
    shutil.move(folder, outside_clips)
    folder.symlink_to(outside_clips)
    summary = dry_run("fourdme", clips)
    assert summary["dropped_per_reason"] == {OUTSIDE: 1}
    assert dry_run("fourdme", clips, {"follow_symlinks": True})["dropped_per_reason"] == {}


def test_a_reader_without_the_opt_in_refuses_the_flag_but_not_the_default(tmp_path, monkeypatch):
    """`--follow_symlinks` for a reader that cannot follow is an error, never silently ignored."""
    from tscnn_tf import databases
    from tscnn_tf.databases.base import Database
    monkeypatch.setitem(databases.READERS, "plain", lambda d, classes=None: Database(
        "plain", ["a"], [], []))
    assert databases.read_database("plain", tmp_path, follow_symlinks=False).name == "plain"
    with pytest.raises(ValueError, match="--follow_symlinks is not supported"):
        databases.read_database("plain", tmp_path, follow_symlinks=True)
