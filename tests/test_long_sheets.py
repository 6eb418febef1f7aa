"""Long-video sheets (SAMM-LV, CAS(ME)², CAS(ME)³ part A): nothing doubled, nothing dropped
uncounted. Every non-blank row is either an interval (a sample, for the CAS(ME)² clip reader)
or a drop counted by kind, in `spot --db --dry_run` and in the feature stage's dry run."""
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from pipelines.extract_features import dry_run
from tests import db_fixtures as fx
from tscnn_tf.databases import long_videos

ROOT = Path(__file__).resolve().parents[1]


def spot_summary(db: str, data_dir: Path, tmp_path: Path) -> dict:
    out = tmp_path / "summary.json"
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", f"--db={db}",
                          f"--data_dir={data_dir}", "--dry_run", f"--summary_json={out}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text())


def edit_sheet(path: Path, sheet: str | None, change) -> None:
    book = openpyxl.load_workbook(path)
    change(book[sheet] if sheet else book.active)
    book.save(path)


def duplicate(row: int):
    return lambda ws: ws.append([c.value for c in ws[row]])


def casme_sq(root: Path) -> Path:
    fx.casme_sq(root, videos=3, rows_total=9, micro=9, offset_zero=0)
    return root / "CAS(ME)^2code_final.xlsx"


def test_samm_lv_exact_duplicate_row_is_counted_not_doubled(tmp_path):
    fx.samm_lv(tmp_path / "db", videos=4, subjects=2, micro=6, macro=2)
    edit_sheet(tmp_path / "db" / "SAMM_LongVideos_V2_Release.xlsx", None, duplicate(11))
    summary = spot_summary("samm_lv", tmp_path / "db", tmp_path)
    assert summary["intervals"] == {"micro": 6, "macro": 2}
    assert summary["dropped_per_reason"] == {"duplicate row": 1}


def test_casme_sq_exact_duplicate_row_is_counted_not_doubled(tmp_path):
    sheet = casme_sq(tmp_path / "db")
    edit_sheet(sheet, "CASFEcode_final", duplicate(1))
    summary = spot_summary("casme_sq", tmp_path / "db", tmp_path)
    assert summary["intervals"] == {"micro": 9, "macro": 0}
    assert summary["dropped_per_reason"] == {"duplicate row": 1}
    clips = dry_run("casme_sq", tmp_path / "db")  # the clip reader already counted it
    assert (clips["num_samples"], clips["dropped_per_reason"]) == (9, {"duplicate row": 1})


def test_one_interval_under_two_clip_names_is_held_once(tmp_path):
    """Same video, onset and offset in another row (`disgust1_1` as `disgust1_9`): ground truth
    never holds the same interval twice."""
    sheet = casme_sq(tmp_path / "db")
    edit_sheet(sheet, "CASFEcode_final", lambda ws: ws.append(
        [ws["A1"].value, "disgust1_9", *[c.value for c in ws[1]][2:]]))
    database = long_videos.read_casme_sq_long(tmp_path / "db")
    spans = [(v.name, i.onset, i.offset) for v in database.videos.values() for i in v.intervals]
    assert len(spans) == len(set(spans)) == 9
    assert [d.kind for d in database.dropped] == ["duplicate row"]


def test_casme3_long_duplicate_row_is_counted(tmp_path):
    fx.casme3_long(tmp_path / "db", videos=4, micro=3, macro=3)
    from tests.db_fixtures import write_sheet
    import pandas as pd
    sheet = tmp_path / "db" / "CAS(ME)3_part_A_v2.xls"
    rows = pd.read_excel(sheet, sheet_name="AU+Emotion", header=None).values.tolist()
    write_sheet(sheet, None, {"AU+Emotion": rows + [rows[1]], "eye blink": [["Subject"]]})
    summary = long_videos.read_casme3_long(tmp_path / "db").summary()
    assert summary["intervals"] == {"micro": 3, "macro": 3}
    assert summary["dropped_per_reason"] == {"duplicate row": 1}


@pytest.mark.parametrize("cells, kind", [(("x1", 1.5), "invalid participant"),
                                         ((None, None), "empty participant")])
def test_bad_participant_cells_are_counted_in_both_readers(cells, kind, tmp_path):
    """9 rows: 2 with a participant that is no number are counted, never skipped as titles."""
    sheet = casme_sq(tmp_path / "db")

    def spoil(ws):
        ws["A2"], ws["A5"] = cells
    edit_sheet(sheet, "CASFEcode_final", spoil)
    summary = spot_summary("casme_sq", tmp_path / "db", tmp_path)
    assert sum(summary["intervals"].values()) == 7
    assert summary["dropped_per_reason"] == {kind: 2}
    clips = dry_run("casme_sq", tmp_path / "db")
    assert clips["num_samples"] == 7 and clips["dropped_per_reason"] == {kind: 2}


def test_a_header_row_on_top_of_the_code_sheet_is_not_a_drop(tmp_path):
    sheet = casme_sq(tmp_path / "db")
    edit_sheet(sheet, "CASFEcode_final", lambda ws: ws.insert_rows(1))
    edit_sheet(sheet, "CASFEcode_final", lambda ws: [ws.cell(1, j + 1, name) for j, name in
                                                     enumerate(("participant", "clip", "onset"))])
    database = long_videos.read_casme_sq_long(tmp_path / "db")
    assert sum(len(v.intervals) for v in database.videos.values()) == 9
    assert database.dropped == []


def test_a_type_neither_micro_nor_macro_is_counted_not_taken_for_macro(tmp_path):
    sheet = casme_sq(tmp_path / "db")
    edit_sheet(sheet, "CASFEcode_final", lambda ws: ws.cell(3, 8, "blink"))
    summary = long_videos.read_casme_sq_long(tmp_path / "db").summary()
    assert summary["intervals"] == {"micro": 8, "macro": 0}
    assert summary["dropped_per_reason"] == {"unknown type": 1}
