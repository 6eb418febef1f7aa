"""Bad input never destroys, never misreads, and ends in one clear line (issue 10)."""
import csv
import json
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines import extract_features as ef
from tscnn_tf import databases, features as features_lib, loso, predict
from tscnn_tf.databases import Sample, read_custom, read_database, synthetic
from tests.conftest import FAST

ROOT = Path(__file__).resolve().parent.parent
CLASSES = synthetic.CLASS_NAMES


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd)


def one_error_line(run) -> str:
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr[-2000:]
    return errors[0]


# Never destroy -------------------------------------------------------------------------------

@pytest.fixture
def users_folder(tmp_path):
    folder = tmp_path / "MY_DATA"
    folder.mkdir()
    (folder / "thesis.tex").write_text("five years of work")
    return folder


def test_synthetic_renderer_never_touches_a_folder_it_did_not_make(users_folder):
    with pytest.raises(synthetic.NotASyntheticFolder, match="refusing to render"):
        synthetic.generate(users_folder, seed=1, num_subjects=1, clips_per_class=1)
    assert (users_folder / "thesis.tex").read_text() == "five years of work"
    assert sorted(p.name for p in users_folder.iterdir()) == ["thesis.tex"]


def test_synthetic_renderer_reuses_or_replaces_only_its_own_folder(tmp_path):
    folder = tmp_path / "db"
    synthetic.generate(folder, seed=1, num_subjects=1, clips_per_class=1)
    marker = json.loads((folder / synthetic.MARKER).read_text())
    assert marker["finished"] is True and marker["num_subjects"] == 1
    stamp = (folder / "annotations.csv").stat().st_mtime_ns
    synthetic.generate(folder, seed=1, num_subjects=1, clips_per_class=1)  # same: kept
    assert (folder / "annotations.csv").stat().st_mtime_ns == stamp
    synthetic.generate(folder, seed=2, num_subjects=1, clips_per_class=1)  # ours: re-rendered
    assert json.loads((folder / synthetic.MARKER).read_text())["seed"] == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    synthetic.generate(empty, seed=1, num_subjects=1, clips_per_class=1)  # empty: fine
    assert (empty / "annotations.csv").is_file()


@pytest.mark.parametrize("command", ["pipelines.extract_features", "tscnn_tf.train"])
def test_commands_refuse_to_render_into_a_users_folder(users_folder, tmp_path, command):
    run = run_cli(command, f"--data_dir={users_folder}", "--dry_run", "--synthetic_subjects=1",
                  f"--workdir={tmp_path / 'run'}") if command.endswith("train") else run_cli(
        command, f"--data_dir={users_folder}", "--dry_run")
    if command.endswith("train"):  # train has no --dry_run: run it for real on the refusal
        run = run_cli(command, f"--data_dir={users_folder}", f"--workdir={tmp_path / 'run'}")
    assert "refusing to render" in one_error_line(run)
    assert sorted(p.name for p in users_folder.iterdir()) == ["thesis.tex"]


# Never read outside --data_dir, never attach a label to another sample ---------------------

def custom_db(tiny_synthetic, root: Path, rows: list[list]) -> Path:
    """A custom database whose clip `good` is a copy of a synthetic clip, with `rows`."""
    import shutil
    src = sorted((tiny_synthetic / "sub01").iterdir())[0]
    shutil.copytree(src, root / "A" / "good")
    with open(root / "annotations.csv", "w", newline="") as f:
        csv.writer(f).writerows([["subject", "clip", "onset", "apex", "offset", "label"], *rows])
    return root


def first_frames(root: Path) -> tuple[int, int]:
    frames = sorted(databases.list_frames(root / "A" / "good"))
    return frames[0], frames[-1]


def test_sheet_paths_never_leave_the_database_folder(tiny_synthetic, tmp_path):
    outside = tmp_path / "outside" / "x"
    outside.mkdir(parents=True)
    db = tmp_path / "db"
    db.mkdir()
    custom_db(tiny_synthetic, db, [])
    lo, hi = first_frames(db)
    import shutil
    shutil.copytree(db / "A" / "good", outside / "clip")
    (db / "A" / "linked").symlink_to(outside / "clip")  # a symlink out of the database
    rows = [["A", "good", lo, "", hi, "negative"],
            ["../outside", "x/clip", lo, "", hi, "positive"],
            ["..", "outside", lo, "", hi, "positive"],
            ["/etc", "passwd", lo, "", hi, "positive"],
            ["A", "linked", lo, "", hi, "surprise"]]
    with open(db / "annotations.csv", "w", newline="") as f:
        csv.writer(f).writerows([["subject", "clip", "onset", "apex", "offset", "label"], *rows])
    database = read_custom(db, classes=CLASSES)
    assert [s.clip for s in database.samples] == ["good"]
    kinds = [d.kind for d in database.dropped]
    assert kinds.count("subject or clip is a path, not a name") == 3
    assert kinds.count("media outside the database folder") == 1


def test_several_expressions_of_one_clip_get_their_own_ids(tiny_synthetic, tmp_path):
    db = custom_db(tiny_synthetic, tmp_path / "db", [])
    lo, hi = first_frames(db)
    mid = (lo + hi) // 2
    rows = [["A", "good", lo, "", mid, "negative"], ["A", "good", mid, "", hi, "positive"],
            ["A", "good", mid, "", hi, "positive"]]  # the last repeats the second
    with open(db / "annotations.csv", "w", newline="") as f:
        csv.writer(f).writerows([["subject", "clip", "onset", "apex", "offset", "label"], *rows])
    database = read_custom(db, classes=CLASSES)
    ids = {s.sample_id: s.label_name for s in database.samples}
    assert ids == {f"custom/A/good@{lo}-{mid}": "negative", f"custom/A/good@{mid}-{hi}": "positive"}
    assert [d.kind for d in database.dropped] == ["duplicate row"]


def test_a_sample_id_collision_is_an_error(tmp_path, monkeypatch):
    def colliding(data_dir, **_):
        twins = [Sample("x", "s", "c", label, i, 0, 2) for i, label in enumerate(("a", "b"))]
        return databases.Database("x", ["a", "b"], twins, [])
    monkeypatch.setitem(databases.READERS, "x", colliding)
    with pytest.raises(ValueError, match="name more than one sample"):
        read_database("x", tmp_path)


# Silent wrong results ----------------------------------------------------------------------

def test_one_class_is_an_error_before_training(records_3_subjects, tmp_path):
    import tensorflow as tf
    from tscnn_tf import records as records_lib
    records = tmp_path / "records"
    records.mkdir()
    manifest = json.loads((records_3_subjects / "manifest.json").read_text())
    manifest["samples"] = [e for e in manifest["samples"] if e["label_name"] == "positive"]
    kept = {e["sample_id"] for e in manifest["samples"]}
    for shard in records_3_subjects.glob("*.tfrecord"):  # the shards hold what the manifest lists
        examples = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))
                    if records_lib.parse(r, 3)["sample_id"].numpy().decode() in kept]
        records_lib.write_shard(str(records / shard.name), examples)
    manifest["shard_samples"] = {shard: sum(e["shard"] == shard for e in manifest["samples"])
                                 for shard in manifest["shards"]}
    (records / "manifest.json").write_text(json.dumps(manifest))
    config = loso.TrainConfig(variant="tiny", epochs=1)
    with pytest.raises(loso.TrainingError, match="one class only"):
        loso.train_loso(records, tmp_path / "run", config)
    with pytest.raises(loso.TrainingError, match="one class only"):
        loso.train_final(records, tmp_path / "final", config)
    assert not (tmp_path / "run" / "folds").exists()


def test_a_long_clip_is_flagged_as_not_one_expression(tmp_path):
    sample = Sample("predict", "-", "x", "", -1, 0, 500, frames={i: "" for i in range(501)})
    assert "ONE expression" in predict.length_warning(sample)
    sample.offset = 60
    assert predict.length_warning(sample) is None
    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 32))
    for _ in range(90):  # 3 s at 30 fps
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    clip = predict.clip_sample(video=video)
    assert "3.0 s" in predict.length_warning(clip)


def test_a_cut_and_a_lost_face_are_reported(tiny_synthetic, tmp_path):
    """Half a clip of one face, then a cut to a face-less shot: the crop after the cut is a
    background patch, and the result must say so."""
    clip = sorted((tiny_synthetic / "sub01").iterdir())[0]
    frames = databases.list_frames(clip)
    indices = sorted(frames)
    landmarker = features_lib.face_lib.make_landmarker("dlib")
    sample = Sample("predict", "-", "x", "", -1, indices[0], indices[-1], frames=dict(frames))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((256, 256), 200, np.uint8))
    for i in indices[len(indices) // 2:]:
        sample.frames[i] = str(blank)
    warnings = []
    found, faces, geometry = features_lib.aligned_clip(sample, FAST, landmarker, warnings)
    text = " ".join(features_lib.face_track_warnings(sample, faces, found, geometry, indices[-1],
                                                     landmarker))
    assert "changes abruptly" in text and "no face found on the apex frame" in text
    steady = Sample("predict", "-", "x", "", -1, indices[0], indices[-1], frames=dict(frames))
    found, faces, geometry = features_lib.aligned_clip(steady, FAST, landmarker, [])
    assert features_lib.face_track_warnings(steady, faces, found, geometry, indices[3],
                                            landmarker) == []


def test_memory_holds_face_crops_not_full_frames(tmp_path):
    """A clip of 30 frames of 2000 x 2000 (120 MB if held) is aligned within a few frames."""
    folder = tmp_path / "big"
    folder.mkdir()
    frame = np.zeros((2000, 2000), np.uint8)
    for i in range(30):
        cv2.imwrite(str(folder / f"img{i}.png"), frame)
    points = synthetic.source_face()[1]
    sample = Sample("predict", "-", "big", "", -1, 0, 29, frames=databases.list_frames(folder))
    tracemalloc.start()
    indices, faces, _ = features_lib.aligned_clip(sample, FAST, lambda gray: points, [])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(faces) == 30 and faces[0].shape == (FAST.face_size, FAST.face_size)
    assert peak < 5 * frame.nbytes, f"peak {peak / 1e6:.0f} MB"


# Clear errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("command, integer", [("tscnn_tf.train", "epochs"),
                                              ("tscnn_tf.predict", "onset"),
                                              ("pipelines.extract_features", "blocks")])
def test_an_unknown_flag_or_a_bad_flag_value_is_one_error_line(command, integer, tmp_path):
    line = one_error_line(run_cli(command, "--no_such_flag=3", cwd=tmp_path))
    assert line == "error: Unknown command line flag 'no_such_flag' (--helpfull lists the flags)"
    line = one_error_line(run_cli(command, f"--{integer}=three", cwd=tmp_path))
    assert line.startswith(f"error: flag --{integer}=three: ")
    assert not list(tmp_path.iterdir())  # nothing made


def test_output_dir_that_is_a_file_or_cannot_be_written(tiny_synthetic, tmp_path, monkeypatch):
    a_file = tmp_path / "records"
    a_file.write_text("not a folder")
    assert "is a file, not a folder" in one_error_line(run_cli(
        "pipelines.extract_features", "--db=custom", f"--data_dir={tiny_synthetic}",
        f"--output_dir={a_file}"))
    processed = []
    monkeypatch.setattr(ef, "process_sample", lambda s: processed.append(s))
    with pytest.raises(OSError, match="cannot write in"):
        ef.extract_features("synthetic", tiny_synthetic, a_file / "sub", FAST,
                            {"seed": 1, "num_subjects": 2, "clips_per_class": 1}, num_workers=1)
    assert processed == []  # refused before the first clip, not after the last
    line = one_error_line(run_cli("tscnn_tf.train", f"--records_dir={a_file}",
                                  f"--workdir={tmp_path / 'run'}"))
    assert line == f"error: --records_dir {a_file} is a file, not a folder"  # names the flag
    assert not (tmp_path / "run").exists()


def test_summary_json_in_a_missing_folder_names_that_path(tiny_synthetic, tmp_path):
    wanted = tmp_path / "nowhere" / "summary.json"
    line = one_error_line(run_cli("pipelines.extract_features", "--db=custom",
                                  f"--data_dir={tiny_synthetic}", "--dry_run",
                                  f"--summary_json={wanted}"))
    assert str(wanted) in line and "partial" not in line


def test_ctrl_c_during_extraction_stops_cleanly_and_resumes(tiny_synthetic, tmp_path):
    out = tmp_path / "records"
    command = [sys.executable, "-m", "pipelines.extract_features", "--db=custom",
               f"--data_dir={tiny_synthetic}", f"--output_dir={out}", "--flow=tvl1_skimage",
               "--num_workers=2", "--samples_per_shard=1"]
    # A shell without job control starts background jobs with SIGINT ignored, and the child
    # would inherit that: give it the default disposition, as an interactive terminal does.
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while process.poll() is None and not list(out.glob("*.index.json")):
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted:" in stderr
    assert not (out / "manifest.json").exists() and not list(out.glob("partial-*"))
    done = len(list(out.glob("*.tfrecord")))
    assert 1 <= done < 6
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming: {done} sample(s) already extracted" in again.stderr
    assert json.loads((out / "manifest.json").read_text())["num_samples"] == 6


# Friendlier messages -----------------------------------------------------------------------

@pytest.mark.parametrize("encoding, delimiter", [("utf-16", ";"), ("latin-1", ";"),
                                                 ("utf-8-sig", "\t"), ("utf-8", ",")])
def test_sheets_in_other_encodings_and_delimiters_are_read(tiny_synthetic, tmp_path, encoding,
                                                          delimiter):
    db = custom_db(tiny_synthetic, tmp_path / "db", [])
    lo, hi = first_frames(db)
    text = "\n".join(delimiter.join(map(str, row)) for row in [
        ["subject", "clip", "onset", "apex", "offset", "label"],
        ["A", "good", lo, "", hi, "négative" if encoding != "utf-8" else "negative"]]) + "\n"
    (db / "annotations.csv").write_bytes(text.encode(encoding))
    database = read_custom(db)
    assert [s.clip for s in database.samples] == ["good"]
    assert database.samples[0].label_name in ("négative", "negative")


def test_an_unreadable_header_says_what_was_read(tmp_path):
    (tmp_path / "annotations.csv").write_text("subject|clip|onset|apex|offset|label\n")
    with pytest.raises(ValueError, match=r"Read the header .* as UTF-8 text with the delimiter ','"):
        read_custom(tmp_path)


def test_predict_reports_a_missing_video_before_loading_the_model(tmp_path):
    line = one_error_line(run_cli("tscnn_tf.predict", f"--model={tmp_path / 'no_model'}",
                                  f"--video={tmp_path / 'missing.mp4'}"))
    assert "no video file" in line


def test_a_refused_command_removes_only_the_empty_folders_its_checks_made(tmp_path):
    """The output checks make missing folders to prove them writable; once the command is
    refused, those still empty go again (deepest first), and nothing else: a folder that was
    there before, or that now holds a file, stays."""
    from tscnn_tf import artifacts
    artifacts.remove_empty_checked_dirs()  # forget what earlier tests' checks made
    (tmp_path / "mine").mkdir()
    artifacts.check_writable_dir(tmp_path / "mine")
    artifacts.check_writable_dir(tmp_path / "runs" / "a" / "workdir")
    artifacts.check_writable_dir(tmp_path / "runs" / "b")
    (tmp_path / "runs" / "b" / "kept.txt").write_text("written before the refusal")
    removed = artifacts.remove_empty_checked_dirs()
    assert removed == [tmp_path / "runs" / "a" / "workdir", tmp_path / "runs" / "a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "runs"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["b"]
    assert artifacts.remove_empty_checked_dirs() == []


@pytest.mark.parametrize("command", ["tscnn_tf.train", "tscnn_tf.predict", "tscnn_tf.spot",
                                     "tscnn_tf.export", "tscnn_tf.inspect", "tscnn_tf.bench",
                                     "tscnn_tf.pretrain_fer2013", "pipelines.extract_features"])
def test_help_prints_the_flags_and_exits_0(command):
    """`--help` is a request, not a failure (absl exits 1 after printing it)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", command, "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "--" in done.stdout + done.stderr and "Traceback" not in done.stderr
    # The flags a command takes from the shared config (defined in tscnn_tf.cli) are listed too.
    wanted = {"tscnn_tf.train": ("--db:", "--model:", "--records_dir:", "--workdir:"),
              "pipelines.extract_features": ("--db:", "--data_dir:", "--output_dir:")}
    for flag in wanted.get(command, ()):
        assert flag in done.stdout, (flag, done.stdout[-1500:])
