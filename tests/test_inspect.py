"""python -m tscnn_tf.inspect: contact sheets of records and HTML run reports (issue 17 §8)."""
import base64
import csv
import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from tscnn_tf import plots
from tscnn_tf.features import block_stack
from tscnn_tf.metrics import evaluate

ROOT = Path(__file__).resolve().parent.parent


def read_png(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def manifest_of(records) -> dict:
    return json.loads((records / "manifest.json").read_text())


def test_sample_tile_holds_what_it_claims():
    n, size = 3, plots.PANEL
    flow_raw = np.zeros((48, 48, 4), np.float32)
    flow_raw[..., 0] = 2.0                      # onset->apex: 2 px to the right everywhere
    blocks = np.full((48, 48, n * n), 0.5, np.float32)
    sample = {"subject": "sub01", "label_name": "positive", "clip": "EP01", "onset": 3,
              "offset": 30, "apex_given": 15, "apex_spotted": 14, "apex_used": 14,
              "blocks": blocks, "flow_raw": flow_raw}
    tile = plots.sample_tile(sample, n, "spotted", show_faces=False)
    assert tile.shape[:2] == plots.tile_shape(False, False)
    top = plots.GAP + 3 * plots._TEXT_H + 4
    apex, right, rest = (tile[top:top + size, plots.GAP + k * (size + 4):][:, :size]
                         for k in range(3))
    assert np.all(apex[size // 2 - 10, size // 2 - 10] == 128)   # the face itself
    assert tuple(apex[5, round(size / 3)]) == (255, 210, 0)        # the n x n block grid
    assert np.all(right == right[0, 0]) and tuple(right[0, 0]) == (255, 0, 0)  # hue 0, full
    assert not rest.any()                                          # no flow: black
    assert plots.apex_text(sample, "spotted") == "apex 14 spotted (given 15)"
    assert plots.apex_text(sample, "given") == "apex 14 given (= spotted)"
    assert plots.apex_text({**sample, "apex_given": -1}, "given") == "apex 14 spotted (none given)"


def test_selection_filters_by_class_and_shows_every_group_first(records_3_subjects):
    entries = manifest_of(records_3_subjects)["samples"]  # 3 subjects x 3 classes
    groups = plots.select_samples(entries, limit=3)
    assert [t for t, _ in groups] == ["sub01", "sub02", "sub03"]
    assert sorted(e["label_name"] for _, g in groups for e in g) == [
        "negative", "positive", "surprise"]  # each subject starts at another class
    by_class = plots.select_samples(entries, classes=["positive", "surprise"], sort="class")
    assert [t for t, _ in by_class] == ["positive", "surprise"]
    assert [[e["subject"] for e in g] for _, g in by_class] == [["sub01", "sub02", "sub03"]] * 2
    assert sum(len(g) for _, g in plots.select_samples(entries, limit=100)) == 9


@pytest.mark.parametrize("limit,columns", [(4, 2), (None, 4)])
def test_contact_sheet_has_a_tile_per_sample_where_the_layout_says(records_3_subjects, tmp_path,
                                                                   limit, columns):
    out = plots.contact_sheet(records_3_subjects, tmp_path / "sheet.png", limit=limit,
                              columns=columns, faces=False)
    shown = min(limit or 9, 9)
    sizes = [len(ids) for _, ids in out["groups"]]
    assert out["shown"] == sum(sizes) == shown and out["total"] == 9
    th, tw = plots.tile_shape(False, False)
    height = plots.HEADER_H + sum(plots.GROUP_H + math.ceil(k / columns) * (th + plots.GAP)
                                  for k in sizes) + plots.GAP
    sheet = read_png(tmp_path / "sheet.png")
    assert sheet.shape == (height, max(plots.GAP + columns * (tw + plots.GAP), plots.MIN_WIDTH), 3)
    _, _, places = plots.sheet_layout(sizes, columns, (th, tw))
    assert len(places) == shown
    for y, x in places:  # each place holds a tile: its apex panel's block grid is drawn there
        apex_top, apex_left = y + plots.GAP + 3 * plots._TEXT_H + 4, x + plots.GAP
        assert tuple(sheet[apex_top + 5, apex_left + round(plots.PANEL / 3)]) == (255, 210, 0)
    if limit == 4:  # sub02 has one tile: the slot beside it is empty
        y, x = places[2]
        assert (sheet[y:y + th, x + tw + plots.GAP:x + 2 * tw] == 255).all()


def test_class_filter_keeps_only_that_class(records_3_subjects, tmp_path):
    out = plots.contact_sheet(records_3_subjects, tmp_path / "pos.png", classes=["positive"],
                              faces=False)
    labels = {e["sample_id"]: e["label_name"] for e in manifest_of(records_3_subjects)["samples"]}
    ids = [i for _, group in out["groups"] for i in group]
    assert len(ids) == out["total"] == 3 and {labels[i] for i in ids} == {"positive"}


def test_onset_and_offset_faces_are_the_feature_stage_crops(records_3_subjects):
    manifest = manifest_of(records_3_subjects)
    db = Path(manifest["data_dir"])
    before = sorted(p.name for p in db.rglob("*"))
    entries = manifest["samples"][:2]
    warnings = []
    faces = plots.realigned_faces(manifest, entries, warnings)
    assert warnings == [] and set(faces) == {e["sample_id"] for e in entries}
    blocks = plots.read_record_arrays(records_3_subjects, manifest,
                                      [e["sample_id"] for e in entries])
    n = manifest["params"]["blocks"]
    for entry in entries:
        onset, apex, offset = faces[entry["sample_id"]]
        assert onset.shape == offset.shape == (manifest["params"]["face_size"],) * 2
        # the re-made apex crop gives the record's block stack: the same alignment
        assert np.abs(block_stack(apex, n) - blocks[entry["sample_id"]]["blocks"]).max() < 1e-6
    assert sorted(p.name for p in db.rglob("*")) == before  # the database was only read
    changed = {**manifest, "data_fingerprint": "other"}
    assert plots.realigned_faces(changed, entries, warnings) == {}
    assert "no longer holds the data" in warnings[0]


def fake_run(workdir: Path, records: Path, wrong: int) -> list[dict]:
    """A run folder as train.aggregate writes it, with `wrong` misclassified samples."""
    manifest = manifest_of(records)
    names = manifest["class_names"]
    rows = []
    for k, e in enumerate(manifest["samples"]):
        pred = (e["label"] + 1) % len(names) if k < wrong else e["label"]
        rows.append({"sample_id": e["sample_id"], "subject": e["subject"], "fold": e["subject"],
                     "label": e["label"], "pred": pred,
                     **{f"p_{c}": 0.8 if i == pred else 0.1 for i, c in enumerate(names)}})
    workdir.mkdir()
    with open(workdir / "predictions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    results = evaluate([r["label"] for r in rows], [r["pred"] for r in rows], names)
    results.update(per_fold={}, fingerprint="f00dfeed1234", warnings=[], config={
        "fingerprint": "f00dfeed1234", "experiment": {"run": {"records_dir": str(records)}},
        "identity": {"records": {"params": manifest["params"], "class_names": names,
                                 "data_fingerprint": manifest["data_fingerprint"]},
                     "train": {"streams": "L+S+T", "variant": "tiny"}}})
    (workdir / "results.json").write_text(json.dumps(results))
    return rows


class Page(HTMLParser):
    """The sections of a report and the images under each."""

    def __init__(self):
        super().__init__()
        self.sections, self.open, self.heading = {}, [], None

    def handle_starttag(self, tag, attrs):
        if tag not in ("img", "meta", "br"):
            self.open.append(tag)
        if tag == "img":
            self.sections.setdefault(self.heading, []).append(dict(attrs))

    def handle_endtag(self, tag):
        assert self.open.pop() == tag  # well nested

    def handle_data(self, data):
        if self.open and self.open[-1] == "h2":
            self.heading = data


def test_run_report_shows_results_and_misclassified_first(records_3_subjects, tmp_path):
    rows = fake_run(tmp_path / "run", records_3_subjects, wrong=2)
    out = plots.run_report(tmp_path / "run", tmp_path / "report.html", faces=False)
    assert (out["misclassified"], out["shown"], out["total"]) == (2, 9, 9)
    text = (tmp_path / "report.html").read_text()
    page = Page()
    page.feed(text)
    assert page.open == []
    assert "77.78%" in text and "f00dfeed1234" in text and "UAR" in text
    sections = {k.split(":")[0]: v for k, v in page.sections.items() if k}
    wrong = [i for i in sections["Misclassified samples"] if i["class"] == "tile"]
    right = [i for i in sections["Correctly classified samples"] if i["class"] == "tile"]
    assert len(wrong) == 2 and len(right) == 7
    assert text.index("Misclassified samples") < text.index("Correctly classified samples")
    assert {w["alt"].split(":")[0] for w in wrong} == {r["sample_id"] for r in rows[:2]}
    assert [i["class"] for i in sections["Confusion matrix"]] == ["confusion"]
    tile = cv2.imdecode(np.frombuffer(base64.b64decode(wrong[0]["src"].split(",", 1)[1]),
                                      np.uint8), cv2.IMREAD_COLOR)
    assert tile.shape[:2] == plots.tile_shape(False, True)
    limited = plots.run_report(tmp_path / "run", tmp_path / "few.html", limit=3, faces=False)
    assert limited["shown"] == 3
    assert (tmp_path / "few.html").read_text().count('class="tile"') == 3


def test_a_report_of_other_records_is_refused(records_3_subjects, tmp_path):
    fake_run(tmp_path / "run", records_3_subjects, wrong=1)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    results["config"]["identity"]["records"]["params"]["blocks"] = 5
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    with pytest.raises(plots.InspectError, match="not the run's .*params"):
        plots.run_report(tmp_path / "run", tmp_path / "report.html", faces=False)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("case,message", [
    ("missing records", "no records folder"), ("empty records", "no manifest.json"),
    ("output is a folder", "is a folder"), ("missing folder", "does not exist"),
    ("not a png", "must end in .png"), ("unknown class", "not in the records' classes"),
    ("lost shard", "are missing"), ("corrupt shard", "unreadable records")])
def test_bad_sheet_inputs_are_refused_before_drawing(records_3_subjects, tmp_path, case, message):
    records, output, classes = records_3_subjects, tmp_path / "sheet.png", None
    if case == "missing records":
        records = tmp_path / "nothing"
    elif case == "empty records":
        records = tmp_path / "empty"
        records.mkdir()
    elif case == "output is a folder":
        output = tmp_path
    elif case == "missing folder":
        output = tmp_path / "no" / "sheet.png"
    elif case == "not a png":
        output = tmp_path / "sheet.jpg"
    elif case == "unknown class":
        classes = ["happiness"]
    else:
        records = tmp_path / "copy"
        records.mkdir()
        (records / "manifest.json").write_bytes((records_3_subjects / "manifest.json").read_bytes())
        if case == "corrupt shard":
            for shard in manifest_of(records)["shards"]:
                (records / shard).write_bytes(b"not a record" * 100)
    with pytest.raises(plots.InspectError, match=message):
        plots.contact_sheet(records, output, classes=classes, faces=False)
    assert list(tmp_path.glob("*.png")) == list(tmp_path.glob("*.jpg")) == []


def test_the_command_reports_one_error_line(tmp_path):
    (tmp_path / "run").mkdir()
    done = subprocess.run([sys.executable, "-m", "tscnn_tf.inspect", f"--run={tmp_path / 'run'}",
                           f"--output={tmp_path / 'report.html'}"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: no results.json in {tmp_path / 'run'}: not a run folder, or no fold has "
        f"finished yet (python -m tscnn_tf.train --workdir={tmp_path / 'run'})"]
    assert not (tmp_path / "report.html").exists()
