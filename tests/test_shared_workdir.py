"""Several processes on one workdir (issue 17 §6) and outputs checked before compute (§7)."""
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tscnn_tf import claims, experiment, export, loso
from tscnn_tf.config import DataConfig, ExperimentConfig, ExportConfig, RunConfig
from tests.conftest import FAST

ROOT = Path(__file__).resolve().parent.parent
# No x10 augmentation: nothing here is about it (test_train.py trains with it), and each
# training is a second faster without.
TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16, learning_rate=0.01,
                        augment=False)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_claim(path: Path, host=claims.HOST, pid=None, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid or os.getpid(), "token": "theirs"}))
    if age:
        os.utime(path, (time.time() - age, time.time() - age))


# Claims -------------------------------------------------------------------------------------

def test_a_claim_is_held_once_and_released(tmp_path):
    path = tmp_path / "work.claim"
    first = claims.try_claim(path)
    assert first is not None and claims.read_claim(path)["pid"] == os.getpid()
    assert claims.try_claim(path) is None  # a live holder (this process) keeps it
    first.release()
    assert not path.exists() and not list(tmp_path.iterdir())  # no temporary file left
    with claims.try_claim(path) as again:
        assert again.held()


def test_claims_of_dead_or_silent_processes_are_taken_over(tmp_path):
    dead = tmp_path / "dead.claim"
    write_claim(dead, pid=dead_pid())
    with claims.try_claim(dead) as claim:
        assert claim is not None and claims.read_claim(dead)["token"] == claim.token
    silent = tmp_path / "silent.claim"
    write_claim(silent, host="another-node", pid=1, age=claims.STALE_AFTER_S + 5)
    taken = claims.try_claim(silent)
    assert taken is not None and claims.read_claim(silent)["host"] == claims.HOST
    taken.release()
    alive = tmp_path / "alive.claim"
    write_claim(alive, host="another-node", pid=1, age=5)  # its heartbeat is recent
    assert claims.try_claim(alive) is None and claims.read_claim(alive)["token"] == "theirs"


def test_the_heartbeat_keeps_a_long_claim_fresh(tmp_path):
    path = tmp_path / "long.claim"
    with claims.try_claim(path, heartbeat_s=0.05):
        os.utime(path, (time.time() - 100, time.time() - 100))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 5
        assert claims.try_claim(path, stale_after=50) is None


def test_a_briefly_unreadable_claim_keeps_its_heartbeat(tmp_path):
    """A claim file that cannot be read for a moment (a shared filesystem's hiccup) is not a
    take-over: the heartbeat goes on (it used to stop for good, and the claim went stale)."""
    path = tmp_path / "hiccup.claim"
    with claims.try_claim(path, heartbeat_s=0.05) as claim:
        record = path.read_text()
        path.write_text("{not json")
        time.sleep(0.3)
        path.write_text(record)
        os.utime(path, (time.time() - 100, time.time() - 100))
        time.sleep(0.3)
        assert claim.held() and time.time() - path.stat().st_mtime < 5


def test_exclusive_waits_for_the_holder_then_takes_its_turn(tmp_path):
    path, order = tmp_path / "records.claim", []
    holder = claims.try_claim(path)

    def second():
        with claims.exclusive(path, "records", poll_s=0.02):
            order.append("second")
    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    order.append("first done")
    holder.release()
    thread.join(timeout=30)
    assert order == ["first done", "second"] and not path.exists()


# Folds -------------------------------------------------------------------------------------

def own(workdir: Path, records: Path) -> None:
    """Make `workdir` this run's (config.json), as a process does before it claims a fold."""
    manifest = json.loads((records / "manifest.json").read_text())
    loso.claim_run_dir(workdir, loso.run_identity(manifest, TINY), None, False, loso.LOSO_FILES)


def test_a_fold_held_by_a_live_process_is_left_to_it(records_3_subjects, tmp_path):
    own(tmp_path, records_3_subjects)
    write_claim(claims.beside(tmp_path / "folds" / "sub01"))  # this pid: alive
    out = loso.train_loso(records_3_subjects, tmp_path, TINY, folds=["sub01"])
    assert list(out["pending"]) == ["sub01"] and not (tmp_path / "results.json").exists()
    assert not (tmp_path / "folds" / "sub01" / "predictions.csv").exists()
    assert "1 fold(s) still in training" in loso.format_pending(out["pending"])


def test_a_fold_of_a_dead_process_is_taken_over_and_resumed(records_3_subjects, tmp_path):
    own(tmp_path, records_3_subjects)
    fold = tmp_path / "folds" / "sub02"
    fold.mkdir(parents=True)
    (fold / "partial-1234abcd-last.keras").write_bytes(b"half a model")  # its crash leftover
    write_claim(claims.beside(fold), pid=dead_pid())
    results = loso.train_loso(records_3_subjects, tmp_path, TINY, folds=["sub02"])
    assert list(results["per_fold"]) == ["sub02"] and (fold / "predictions.csv").is_file()
    assert not claims.beside(fold).exists()


def test_a_fold_whose_claim_was_taken_over_writes_no_predictions(records_3_subjects, tmp_path,
                                                                 monkeypatch):
    """A process paused past the stale limit lost its fold to another: when it wakes and
    finishes training, it leaves the fold's predictions to the new holder."""
    own(tmp_path, records_3_subjects)
    fit = loso.fit_model

    def taken_over_while_training(fold_dir, *args, **kwargs):
        best = fit(fold_dir, *args, **kwargs)
        write_claim(claims.beside(fold_dir), host="other-node", pid=1)  # the new holder
        return best
    monkeypatch.setattr(loso, "fit_model", taken_over_while_training)
    with pytest.raises(loso.TrainingError, match="taken over by other-node:1"):
        loso.train_loso(records_3_subjects, tmp_path, TINY, folds=["sub02"])
    assert not (tmp_path / "folds" / "sub02" / "predictions.csv").exists()
    assert claims.read_claim(claims.beside(tmp_path / "folds" / "sub02"))["host"] == "other-node"


# Several `train` processes -----------------------------------------------------------------

def train_command(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "tscnn_tf.train", "--db=synthetic", "--synthetic_seed=3",
            "--synthetic_subjects=3", "--synthetic_clips_per_class=1", "--flow=dis",
            "--apex_lambda=20", "--variant=tiny", "--epochs=1", "--batch_size=16",
            "--noaugment", "--num_workers=1", "--parity_samples=8",
            f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}"]


def test_processes_on_one_workdir_split_the_folds_and_it_resumes(tmp_path):
    started = [subprocess.Popen(train_command(tmp_path), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [p.communicate()[0] for p in started]
    assert [p.returncode for p in started] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    text = "\n".join(logs)
    for subject in ("sub01", "sub02", "sub03"):
        assert text.count(f"test subject {subject}") == 1, text[-4000:]  # trained once
    assert text.count("rendering the synthetic database") == 1
    assert text.count("resuming: 9 sample(s) already extracted, 0 to go") == 1  # made once
    assert text.count("training the final model") == 1
    assert text.count("aggregating 3 fold(s)") == 1 and text.count("exporting the final") == 1
    assert text.count("LOSO  accuracy") >= 1
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    metadata = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert set(results["per_fold"]) == {"sub01", "sub02", "sub03"}
    assert metadata["fingerprint"] == results["fingerprint"]
    assert not list((tmp_path / "run").rglob("*.claim")) and not (tmp_path / "export.claim").exists()

    again = subprocess.run(train_command(tmp_path), cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "test subject" not in again.stderr and "training the final" not in again.stderr
    assert "aggregating" not in again.stderr and "exporting the final" not in again.stderr
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    assert f"run {results['fingerprint']}" in again.stdout


# Outputs checked before compute (§7) -------------------------------------------------------

def tiny(tmp_path, **export_options) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(synthetic_seed=3, synthetic_subjects=3, synthetic_clips_per_class=1),
        features=FAST, train=TINY, export=ExportConfig(parity_samples=8, **export_options),
        run=RunConfig(num_workers=1))


def nothing_made(workdir: Path) -> bool:
    return not (workdir / "synthetic_db").exists() and not (workdir / "folds").exists()


@pytest.mark.parametrize("case", ["file", "under a file", "other files"])
def test_a_bad_export_dir_is_refused_before_any_work(tmp_path, case):
    target = tmp_path / "export"
    if case == "file":
        target.write_text("x")
    elif case == "under a file":
        (tmp_path / "blocker").write_text("x")
        target = tmp_path / "blocker" / "export"
    else:
        target.mkdir()
        (target / "thesis.tex").write_text("mine")
    with pytest.raises(export.ExportError, match="export"):
        experiment.run(tiny(tmp_path, export_dir=str(target)), tmp_path / "run")
    assert nothing_made(tmp_path / "run")
    if case == "other files":
        assert sorted(p.name for p in target.iterdir()) == ["thesis.tex"]


def test_bad_records_or_sweep_folders_are_refused_before_any_work(tmp_path):
    (tmp_path / "records").write_text("x")
    config = tiny(tmp_path, final_model=False)
    with_records = dataclasses.replace(config, run=dataclasses.replace(
        config.run, records_dir=str(tmp_path / "records")))
    with pytest.raises(OSError, match="records"):
        experiment.run(with_records, tmp_path / "run")
    assert nothing_made(tmp_path / "run")
    workdir = tmp_path / "sweeping"
    workdir.mkdir()
    (workdir / "records-n2-lambda20").write_text("in the way of the second point's records")
    sweeping = dataclasses.replace(config, run=dataclasses.replace(
        config.run, sweep="blocks", sweep_values=("3", "2"), sweep_streams=("L",)))
    with pytest.raises(OSError, match="records-n2-lambda20"):
        experiment.run(sweeping, workdir)
    assert nothing_made(workdir) and not (workdir / "records" / "manifest.json").exists()


def test_synthetic_long_videos_are_rendered_once_by_processes_sharing_a_folder(tmp_path):
    """Two `spot --db=synthetic_long` processes on one folder: one renders, the other waits
    and reads the finished folder (both used to render at once and fail on `File exists`)."""
    code = ("import sys, logging; logging.basicConfig(level=logging.INFO)\n"
            "from tscnn_tf.databases import synthetic_long\n"
            "synthetic_long.generate(sys.argv[1], num_videos=1, seconds=1.0, fps=30.0)")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "long")], cwd=ROOT,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [run.communicate()[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], logs
    assert sum("rendering 1 synthetic long videos" in log for log in logs) == 1, logs
    assert (tmp_path / "long" / "intervals.csv").is_file()
