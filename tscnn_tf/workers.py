"""More LOSO processes on one workdir (`train --loso_workers=N`), and TensorFlow's threads.

A small model's training step is mostly per-op overhead that one core runs as fast as two
(STSTNet: 13.4 ms a step on one thread, 14.4 on two), so on 2 cores two processes of one thread
each train the folds of a LOSO nearly twice as fast as one process of two threads (`bench`,
models.loso_workers). The processes split the folds through the claims every LOSO already takes
(`tscnn_tf.claims`): the extra ones are `train` again with the same flags, started once the
records exist, writing their output to `<workdir>/workers/worker-<k>.log`.

A thread count changes the order of TensorFlow's parallel sums, so weights can differ in the
last bits from a run on another thread count, as they do between machines; the count a fold
was trained with is kept in its state.json (`threads`).
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tscnn_tf import claims
from tscnn_tf.errors import ToolkitError

log = logging.getLogger("tscnn_tf")
LOG_DIR = "workers"


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check(loso_workers: int, threads: int | None) -> None:
    """Refuse counts below one before any work."""
    if loso_workers < 1:
        raise ToolkitError(f"--loso_workers={loso_workers}: give 1 (this process alone) or more")
    if threads is not None and threads < 1:
        raise ToolkitError(f"--threads={threads}: give 1 or more (or leave it out: all cores "
                           "shared among the --loso_workers processes)")


def threads_for(loso_workers: int, threads: int | None = None) -> int | None:
    """TensorFlow threads of each process: `threads`, else the cores shared among the
    `loso_workers` processes (None for one process: TensorFlow's default, every core)."""
    if threads is not None or loso_workers <= 1:
        return threads
    return max(1, cores() // loso_workers)


def limit_threads(threads: int | None) -> None:
    """Run TensorFlow's ops on `threads` threads (intra- and inter-op); None keeps its default.
    Must come before TensorFlow runs its first op."""
    if threads is None:
        return
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (a library caller): keep what it has
        log.warning("TensorFlow is already running: its thread counts stay as they are")


def current_threads() -> int:
    """The intra-op threads TensorFlow runs with (0 = its default, every core)."""
    import tensorflow as tf
    return tf.config.threading.get_intra_op_parallelism_threads() or cores()


def worker_argv(argv: list[str], threads: int | None) -> list[str]:
    """The command line of an extra process: the same flags, as one process that never
    replaces the run the first one claimed (no --overwrite) and starts no workers itself."""
    extra = ["--loso_workers=1", "--nooverwrite"]
    if threads is not None:
        extra.append(f"--threads={threads}")
    return [sys.executable, "-m", "tscnn_tf.train", *argv, *extra]


PARENT_ENV = "TSCNN_TF_LOSO_PARENT"  # the pid of the process that started an extra one


def follow_parent() -> None:
    """In an extra process: have the kernel send it SIGTERM when the process that started it
    dies (a plain `kill`, a scheduler's pre-emption, SIGKILL), so none trains on alone; its
    folds resume in the next run (Linux; elsewhere only an error or Ctrl-C of the first
    process stops the others)."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None:
        return
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # it died before the line above
        raise SystemExit(143)


class Workers:
    """The extra `train` processes of a LOSO: `start()` once the records exist, `wait()` at the
    end (their failures, one line each), `stop()` when this process leaves by an error or
    Ctrl-C (their folds resume in a later run)."""

    def __init__(self, argv: list[str], count: int, threads: int | None, workdir: Path):
        self.argv, self.count, self.threads = argv, count, threads
        self.folder = Path(workdir) / LOG_DIR
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self) -> None:
        if self.started or self.count < 1:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, self.count + 1):
            path = self.folder / f"worker-{k}.log"
            with open(path, "a") as out:  # a run resumed later adds to what the last one wrote
                out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} started by "
                          f"{claims.HOST}:{os.getpid()}\n")
                out.flush()
                process = subprocess.Popen(worker_argv(self.argv, self.threads), stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env={**os.environ, PARENT_ENV: str(os.getpid())})
            self.started.append((process, path))
        log.info("%d more LOSO process(es) started (%s TensorFlow thread(s) each), sharing the "
                 "folds; their output: %s", self.count, self.threads or "default",
                 ", ".join(f"{p} (pid {w.pid})" for w, p in self.started))

    def stop(self) -> None:
        for process, _ in self.started:
            process.terminate()
        for process, _ in self.started:
            process.wait()

    def wait(self) -> list[str]:
        out = []
        for process, path in self.started:
            if process.wait():
                lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
                how = (f"was killed by signal {-process.returncode}" if process.returncode < 0
                       else f"ended with exit status {process.returncode}")
                last = lines[-1] if lines else "no output"
                out.append(f"LOSO process {process.pid} {how} ({last}; its log: {path})")
        return out
