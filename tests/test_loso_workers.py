"""`train --loso_workers=N`: one command, N processes sharing the folds (tscnn_tf.workers)."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_shared_workdir import ROOT, train_command
from tscnn_tf import workers


def run_train(tmp_path, *flags):
    return subprocess.run(train_command(tmp_path) + list(flags), cwd=ROOT, capture_output=True,
                          text=True)


def test_two_workers_split_the_folds_and_train_what_one_process_does_on_one_thread(tmp_path):
    two = run_train(tmp_path / "two", "--loso_workers=2")
    assert two.returncode == 0, two.stderr[-3000:]
    worker_log = (tmp_path / "two" / "run" / workers.LOG_DIR / "worker-1.log").read_text()
    text = two.stderr + worker_log
    assert "1 more LOSO process(es) started (1 TensorFlow thread(s) each)" in two.stderr
    for subject in ("sub01", "sub02", "sub03"):
        assert text.count(f"test subject {subject}") == 1, text[-4000:]  # trained once
    assert "test subject" in worker_log and "test subject" in two.stderr  # shared
    assert text.count("training the final model") == 1
    assert text.count("exporting the final") == 1
    assert "LOSO  accuracy" in two.stdout and "exported to" in two.stdout
    results = json.loads((tmp_path / "two" / "run" / "results.json").read_text())
    assert results["threads"] == [1]
    assert {v["threads"][0] for v in results["per_fold"].values()} == {1}

    one = run_train(tmp_path / "one", "--threads=1")
    assert one.returncode == 0, one.stderr[-3000:]
    assert not (tmp_path / "one" / "run" / workers.LOG_DIR).exists()
    alone = json.loads((tmp_path / "one" / "run" / "results.json").read_text())
    assert alone["fingerprint"] == results["fingerprint"]  # how it ran is not fingerprinted
    # The same thread count, so the same weights: the same predictions, to the probability.
    assert ((tmp_path / "one" / "run" / "predictions.csv").read_text()
            == (tmp_path / "two" / "run" / "predictions.csv").read_text())
    assert alone["per_fold"] == results["per_fold"]


@pytest.mark.parametrize("flag", ["--loso_workers=0", "--threads=0"])
def test_worker_and_thread_counts_below_one_are_refused_before_any_work(tmp_path, flag):
    out = run_train(tmp_path, flag)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {flag}"), out.stderr[-2000:]
    assert not (tmp_path / "run").exists() and not (tmp_path / "export").exists()


def test_a_worker_that_fails_is_reported_with_its_log(tmp_path):
    others = workers.Workers(["--threads=-2"], 1, None, tmp_path)
    others.start()
    [line] = others.wait()
    assert "exit status 1" in line and "error: --threads=-2" in line
    assert str(tmp_path / workers.LOG_DIR / "worker-1.log") in line


def test_the_cores_are_shared_among_the_workers():
    assert workers.threads_for(1) is None  # one process: TensorFlow's default
    assert workers.threads_for(2) == max(1, workers.cores() // 2)
    assert workers.threads_for(2, threads=3) == 3
    argv = workers.worker_argv(["--db=smic", "--overwrite"], 1)
    assert argv[1:3] == ["-m", "tscnn_tf.train"]
    assert argv[-3:] == ["--loso_workers=1", "--nooverwrite", "--threads=1"]  # the last wins


def test_a_killed_worker_is_not_alive_before_it_is_reaped():
    """A claim's holder that was killed but not yet waited for (a zombie) is gone: the first
    process takes its fold over at once instead of after its own work."""
    from tscnn_tf import claims
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert claims.pid_alive(child.pid)
    child.kill()
    deadline = time.monotonic() + 60  # the kernel's, not the code's, speed
    while claims.pid_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not claims.pid_alive(child.pid)
    child.wait()  # reaped only now


def test_the_extra_processes_stop_when_the_first_one_is_killed(tmp_path):
    """SIGKILL of the command's own process (a scheduler's pre-emption) stops its workers too:
    none trains on alone; the next run resumes every fold."""
    command = train_command(tmp_path) + ["--loso_workers=2", "--epochs=200", "--patience=200"]
    first = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    pid = None
    for line in first.stderr:
        if match := re.search(r"worker-1\.log \(pid (\d+)\)", line):
            pid = int(match.group(1))
            break
    assert pid is not None
    log = tmp_path / "run" / workers.LOG_DIR / "worker-1.log"
    deadline = time.monotonic() + 600
    while "Epoch 2/" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "Epoch 2/" in log.read_text()
    first.kill()
    first.wait()
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
