"""The learned spotter (issue 26 §2-3): targets and intervals, its numpy forward pass against
Keras, `train --task=spotting` end to end (results, resume, export), `spot --spotter`, and the
refusals: a database of clips, a damaged export, an input slower than the spotter's rate, a
fold without expressions."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tscnn_tf import learned_spotting as ls
from tscnn_tf.databases.base import Interval
from tscnn_tf.spot_features import NUM_FEATURES, FeatureSettings, check_rate, RateError
from tscnn_tf.spotter_model import forward_numpy

ROOT = Path(__file__).resolve().parents[1]


def run(module, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def error_line(result) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def test_targets_rise_to_the_apex_and_decode_back_to_the_interval():
    frames = np.arange(0, 300, 2)  # samples every 2 input frames
    truth = [Interval(40, 52, 70, "micro", None), Interval(150, 200, 260, "macro", None)]
    y = ls.targets(truth, frames, 50.0)
    assert y.shape == (150, 2) and y.max() == 1.0
    assert y[frames == 52, 0] == 1.0 and y[frames < 40, 0].max() == 0 and y[:, 0][frames > 70].max() == 0
    assert y[frames == 200, 1] == 1.0 and y[frames == 150, 1] == 0
    found = ls.decode(y, frames, {"micro": 0.5, "macro": 0.5})
    assert [i["type"] for i in found] == ["micro", "macro"]
    for spotted, t in zip(found, truth):
        inter = min(spotted["offset"], t.offset) - max(spotted["onset"], t.onset) + 1
        union = max(spotted["offset"], t.offset) - min(spotted["onset"], t.onset) + 1
        assert inter / union >= 0.85, (spotted, t)
        assert abs(spotted["apex"] - t.apex) <= 4


def test_overlapping_intervals_of_the_two_types_keep_the_stronger():
    frames = np.arange(100)
    scores = np.zeros((100, 2))
    scores[40:50, 0] = 0.9
    scores[35:60, 1] = 0.6
    (kept,) = ls.decode(scores, frames, {"micro": 0.5, "macro": 0.5})
    assert kept["type"] == "micro"


def test_the_numpy_forward_pass_is_the_keras_model():
    from tscnn_tf.spotter_model import build_spotter, weights_of
    rng = np.random.default_rng(0)
    model = build_spotter(NUM_FEATURES, 16, dropout=0.1, mean=rng.normal(size=NUM_FEATURES),
                          variance=rng.uniform(0.5, 2, NUM_FEATURES))
    x = rng.normal(size=(1, 137, NUM_FEATURES)).astype(np.float32)
    keras_scores = np.asarray(model(x, training=False))[0]
    assert np.abs(forward_numpy(weights_of(model), x[0]) - keras_scores).max() < 1e-5


def test_an_input_slower_than_the_spotters_rate_is_refused_in_one_line():
    check_rate(20.0, FeatureSettings(rate=20.0))
    check_rate(23.976, FeatureSettings(rate=20.0))
    with pytest.raises(RateError, match="15 frames/s.*20 times a second"):
        check_rate(15.0, FeatureSettings(rate=20.0))


def test_thresholds_are_chosen_on_the_given_videos_only():
    frames = np.arange(200)
    truth = [Interval(50, 60, 70, "micro", None)]
    scores = np.zeros((200, 2))
    scores[52:69, 0] = 0.42  # the expression, weakly
    scores[120:130, 0] = 0.3  # something else
    chosen = ls.choose_thresholds([{"truth": truth, "frames": frames}], [scores])
    assert 0.3 < chosen["micro"] <= 0.42 and chosen["macro"] == 0.5


# -- end to end -------------------------------------------------------------------------------
TINY = ["--task=spotting", "--db=synthetic_long", "--synthetic_long_subjects=4",
        "--synthetic_long_seconds=8", "--synthetic_long_fps=30", "--spot_epochs=2",
        "--spot_window_s=4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("spotting")
    result = run("tscnn_tf.train", *TINY, f"--workdir={root / 'w'}", f"--export_dir={root / 'e'}")
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "stdout": result.stdout, "stderr": result.stderr}


def test_train_task_spotting_writes_loso_results_beside_the_lbp_baseline(trained):
    results = json.loads((trained["root"] / "w" / "results.json").read_text())
    assert results["task"] == "spotting" and results["num_folds"] == 4
    for key in ("f1", "precision", "recall", "per_fold", "baseline", "fingerprint"):
        assert key in results
    assert [f["fold"] for f in results["per_fold"]] == ["sub01", "sub02", "sub03", "sub04"]
    for fold in results["per_fold"]:
        assert {"micro", "macro", "overall", "baseline", "thresholds", "val_subjects"} <= set(fold)
        assert fold["fold"] not in fold["val_subjects"]
        assert set(fold["baseline"]) == {"micro", "macro", "overall"}
    for source in (results, results["baseline"]):
        assert {"tp", "fp", "fn", "precision", "recall", "f1"} <= set(source["overall"])
    truth = sum(r["overall"]["tp"] + r["overall"]["fn"] for r in results["per_fold"])
    assert results["overall"]["tp"] + results["overall"]["fn"] == truth > 0
    assert "LBP baseline overall" in trained["stdout"]


def test_no_test_subject_influences_its_fold(trained):
    """Each fold's training and validation subjects exclude its test subject."""
    for fold_dir in sorted((trained["root"] / "w" / "folds").iterdir()):
        result = json.loads((fold_dir / "result.json").read_text())
        used = set(result["train_subjects"]) | set(result["val_subjects"])
        assert result["fold"] not in used and len(used) == 3
        assert {v["video"].split("_")[0] for v in result["videos"]} == {result["fold"]}


def test_a_second_run_resumes_and_trains_nothing(trained):
    before = {p: p.stat().st_mtime_ns for p in (trained["root"] / "w" / "folds").glob("*/result.json")}
    result = run("tscnn_tf.train", *TINY, f"--workdir={trained['root'] / 'w'}",
                 f"--export_dir={trained['root'] / 'e'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fold 1/4" not in result.stderr and "final spotter: all" not in result.stderr
    after = {p: p.stat().st_mtime_ns for p in (trained["root"] / "w" / "folds").glob("*/result.json")}
    assert before == after


def test_other_settings_in_the_same_workdir_are_refused(trained):
    line = error_line(run("tscnn_tf.train", *TINY, "--spot_width=8",
                          f"--workdir={trained['root'] / 'w'}", "--nofinal_model"))
    assert "other settings" in line and "--overwrite" in line


def test_the_export_holds_keras_tflite_numpy_and_metadata(trained):
    export = trained["root"] / "e"
    assert {p.name for p in export.iterdir()} == set(ls.FILES)
    metadata = json.loads((export / "metadata.json").read_text())
    assert metadata["task"] == "spotting" and metadata["fps"] == 20.0
    assert metadata["scales"] == {"micro_s": 0.1, "macro_s": 0.5}
    results = json.loads((trained["root"] / "w" / "results.json").read_text())
    assert metadata["fingerprint"] == results["fingerprint"]
    assert metadata["trained_on"]["subjects"] == ["sub01", "sub02", "sub03", "sub04"]
    assert metadata["parity"]["numpy_vs_keras_max_abs"] < 1e-4
    export_model = ls.load_spotter(export)
    import tensorflow as tf
    interpreter = tf.lite.Interpreter(model_path=str(export / "spotter.tflite"))
    x = np.random.default_rng(0).normal(size=(1, 50, NUM_FEATURES)).astype(np.float32)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    tflite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    assert np.abs(tflite - export_model.scores(x[0])).max() < 1e-4


def test_spot_with_the_learned_spotter_streams_json_with_restarts(trained, tmp_path):
    video = next((trained["root"] / "w" / "synthetic_long_db").glob("sub01_long.avi"))
    result = run("tscnn_tf.spot", f"--video={video}", f"--spotter={trained['root'] / 'e'}",
                 "--json", f"--visualize={tmp_path / 'scores.png'}")
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["frames"] == 240 and out["frames_with_face"] == 240
    assert out["restarts"]["count"] == 0
    assert all(set(i) == {"onset", "apex", "offset", "score", "type"} for i in out["intervals"])
    assert (tmp_path / "scores.png").stat().st_size > 0
    scored = run("tscnn_tf.spot", "--db=synthetic_long",
                 f"--data_dir={trained['root'] / 'w' / 'synthetic_long_db'}",
                 f"--spotter={trained['root'] / 'e'}", f"--output_dir={tmp_path / 'out'}",
                 "--synthetic_videos=4", "--synthetic_seconds=8", "--fps=30",
                 "--synthetic_style=realistic")
    assert scored.returncode == 0, scored.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "spotting_results.json").read_text())
    assert results["spotter"]["fingerprint"] == json.loads(
        (trained["root"] / "e" / "metadata.json").read_text())["fingerprint"]


def test_a_damaged_or_foreign_spotter_export_is_one_error_line(trained, tmp_path):
    import shutil
    video = next((trained["root"] / "w" / "synthetic_long_db").glob("sub01_long.avi"))
    damaged = tmp_path / "damaged"
    shutil.copytree(trained["root"] / "e", damaged)
    (damaged / "spotter.npz").write_bytes(b"not an npz")
    assert "does not match its metadata.json" in error_line(
        run("tscnn_tf.spot", f"--video={video}", f"--spotter={damaged}"))
    (damaged / "metadata.json").write_text("{broken")
    assert "damaged" in error_line(run("tscnn_tf.spot", f"--video={video}",
                                       f"--spotter={damaged}"))
    assert "not a spotter export" in error_line(
        run("tscnn_tf.spot", f"--video={video}", f"--spotter={tmp_path}"))
    slow = run("tscnn_tf.spot", f"--video={video}", f"--spotter={trained['root'] / 'e'}",
               "--fps=12")
    assert "12 frames/s" in error_line(slow) and "20 times a second" in error_line(slow)


def test_a_database_of_clips_is_refused_for_spotting(tmp_path):
    line = error_line(run("tscnn_tf.train", "--task=spotting", "--db=synthetic",
                          f"--workdir={tmp_path / 'w'}"))
    assert "long videos" in line and "--db=synthetic" in line
    assert not (tmp_path / "w").exists()


def test_a_fold_whose_training_subjects_hold_no_expression_is_refused():
    from tscnn_tf import spot_training
    from tscnn_tf.config import ExperimentConfig
    settings = spot_training.settings_of(ExperimentConfig())
    empty = {"x": np.zeros((40, NUM_FEATURES), np.float32), "y": np.zeros((40, 2), np.float32),
             "frames": np.arange(40), "truth": []}
    data = {s: [dict(empty, name=s)] for s in ("a", "b", "c")}
    with pytest.raises(spot_training.SpottingError, match="hold no expression"):
        spot_training.train_fold(data, ["a", "b"], settings, "c")


@pytest.mark.parametrize("edit,words", [
    (lambda m: m["features"].update(rate=-5), "features"),
    (lambda m: m["features"].update(rate=0), "features"),
    (lambda m: m["thresholds"].update(micro="abc"), "thresholds"),
    (lambda m: m.pop("thresholds"), "thresholds"),
    (lambda m: m.pop("sha256"), "SHA-256"),
    (lambda m: m["model"].update(dilations=[1, "x"]), "dilations"),
])
def test_hand_edited_metadata_values_are_refused_not_hung(trained, tmp_path, edit, words):
    import shutil
    copy = tmp_path / "edited"
    shutil.copytree(trained["root"] / "e", copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    edit(metadata)
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ls.SpotterError, match=words):
        ls.load_spotter(copy)


def test_lbp_settings_and_an_empty_spotter_are_refused(trained):
    video = next((trained["root"] / "w" / "synthetic_long_db").glob("sub01_long.avi"))
    assert "--threshold" in error_line(run("tscnn_tf.spot", f"--video={video}",
                                           f"--spotter={trained['root'] / 'e'}",
                                           "--threshold=0.9"))
    assert "--spotter is empty" in error_line(run("tscnn_tf.spot", f"--video={video}",
                                                  "--spotter="))


def test_a_workdir_of_the_other_task_is_refused_before_any_work(trained, tmp_path):
    line = error_line(run("tscnn_tf.train", "--db=synthetic", "--variant=tiny",
                          f"--workdir={trained['root'] / 'w'}"))
    assert "holds a spotting run" in line
    assert not (trained["root"] / "w" / "synthetic_db").exists()
    recognition = tmp_path / "r"
    recognition.mkdir()
    (recognition / "config.json").write_text(json.dumps({"fingerprint": "x", "identity": {
        "records": {}, "train": {}}}))
    line = error_line(run("tscnn_tf.train", *TINY, f"--workdir={recognition}"))
    assert "holds a recognition run" in line
    assert not (recognition / "synthetic_long_db").exists()


def test_a_spotter_export_given_as_a_clip_model_points_to_spotter(trained):
    video = next((trained["root"] / "w" / "synthetic_long_db").glob("sub01_long.avi"))
    line = error_line(run("tscnn_tf.spot", f"--video={video}",
                          f"--model={trained['root'] / 'e'}"))
    assert "learned spotter's export" in line and "--spotter" in line


def test_an_export_dir_holding_other_files_is_refused_and_kept(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("not the toolkit's")
    line = error_line(run("tscnn_tf.train", *TINY, f"--workdir={tmp_path / 'w'}",
                          f"--export_dir={mine}"))
    assert "not a spotter export" in line
    assert (mine / "thesis.txt").read_text() == "not the toolkit's"
    assert not (tmp_path / "w" / "synthetic_long_db").exists()
