"""The learned spotter trains end to end on long-video databases in their release formats
(issue 26): CAS(ME)² (`rawpic/` + `CAS(ME)^2code_final.xlsx`), SAMM long videos
(`SAMM_longvideos/` + `SAMM_LongVideos_V2_Release.xlsx`, 200 fps) and CAS(ME)³ part A
(`part_A/spNO.k/<task>/color/` + `CAS(ME)3_part_A_v2.xls`). The frames are realistic synthetic
long videos written as the releases' frame files, and the sheets hold their ground truth."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import db_fixtures as fx
from tscnn_tf.databases import synthetic_long

ROOT = Path(__file__).resolve().parents[1]


def render_frames(folder: Path, seed: int, seconds: float, fps: float, name, first: int = 1):
    """A realistic synthetic long video as frame files `name(n)` numbered from `first`; its
    intervals in those numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "render.avi"
    truth = synthetic_long.render_realistic_video(path, np.random.default_rng(seed), seconds, fps)
    capture = cv2.VideoCapture(str(path))
    n = first
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.imwrite(str(folder / name(n)), frame[..., 0])
        n += 1
    capture.release()
    path.unlink()
    return [(i.onset + first, i.apex + first, i.offset + first, i.type, i.label) for i in truth]


def casme_sq_tree(root: Path) -> None:
    rows = []
    for k, folder in enumerate(("s15", "s16", "s19"), start=1):
        truth = render_frames(root / "rawpic" / folder / f"{int(folder[1:])}_0101disgustingteeth",
                              k, 6, 30.0, lambda m: f"img{m}.jpg")
        rows += [[k, f"disgust1_{n}", on, ap, off, "AU4", "negative", f"{kind}-expression", "x"]
                 for n, (on, ap, off, kind, _) in enumerate(truth, start=1)]
    fx.write_sheet(root / "CAS(ME)^2code_final.xlsx", None, {
        "CASFEcode_final": rows,
        "naming rule1": [[int(f[1:]), f, k] for k, f in enumerate(("s15", "s16", "s19"), 1)],
        "naming rule2": [[101, "disgust1"]]})


def samm_lv_tree(root: Path) -> None:
    rows = [[f"note {k}"] for k in range(9)]
    rows.append(["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration",
                 "Type", "Action Units", "Notes"])
    for k, subject in enumerate(("006", "007", "008"), start=1):
        name = f"{subject}_1"
        truth = render_frames(root / "SAMM_longvideos" / name, 10 + k, 6, 200.0,
                              lambda m, n=name: f"{n}_{m:05d}.jpg")
        rows += [[subject, f"{name}_{n}", 1, on, ap, off, 0,
                  "Micro - 1/2" if kind == "micro" else "Macro", "AU12", ""]
                 for n, (on, ap, off, kind, _) in enumerate(truth, start=1)]
    fx.write_sheet(root / "SAMM_LongVideos_V2_Release.xlsx", rows)


def casme3_tree(root: Path) -> None:
    rows = [["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "emotion"]]
    for k in range(1, 4):
        subject = f"spNO.{k}"
        truth = render_frames(root / "part_A" / subject / "a" / "color", 20 + k, 6, 30.0,
                              lambda m: f"{m}.jpg", first=0)
        rows += [[subject, "a", on, ap, off, "AU4", f"{kind}-expression", label]
                 for on, ap, off, kind, label in truth]
    fx.write_sheet(root / "CAS(ME)3_part_A_v2.xls", None,
                   {"AU+Emotion": rows, "eye blink": [["Subject", "Filename", "Onset", "Offset"]]})


@pytest.mark.parametrize("db,build", [("casme_sq", casme_sq_tree), ("samm_lv", samm_lv_tree),
                                      ("casme3", casme3_tree)])
def test_a_spotter_trains_on_the_release_format(db, build, tmp_path):
    build(tmp_path / "db")
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.train", "--task=spotting", f"--db={db}",
                          f"--data_dir={tmp_path / 'db'}", f"--workdir={tmp_path / 'w'}",
                          f"--export_dir={tmp_path / 'e'}", "--spot_epochs=1",
                          "--spot_window_s=3"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "w" / "results.json").read_text())
    assert results["task"] == "spotting" and results["db"] == db and results["num_folds"] == 3
    truth = results["overall"]["tp"] + results["overall"]["fn"]
    assert truth == results["baseline"]["overall"]["tp"] + results["baseline"]["overall"]["fn"] > 0
    metadata = json.loads((tmp_path / "e" / "metadata.json").read_text())
    assert metadata["trained_on"]["db"] == db and len(metadata["trained_on"]["subjects"]) == 3
