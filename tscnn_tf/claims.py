"""Several processes on one workdir (a shared filesystem, an HPC array): one claim per piece of
work, so each fold, the records, the synthetic database, the final model and the export are made
by one process at a time. No TensorFlow import here.

A claim is a small JSON file (host, pid, pid namespace, token) made atomically (a hard link of
a finished file, or O_CREAT|O_EXCL where links are not supported); its holder touches it every
`HEARTBEAT_S` seconds. A claim whose process is gone (same host and PID namespace, dead pid) or
that was not touched for `STALE_AFTER_S` seconds (another host, or another container under the
same host name, that died) is taken over. Ages are measured by the clock that stamps the
claim files (`fs_now`), so a shared filesystem whose server's clock differs from this host's
takes over no live claim.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from pathlib import Path

log = logging.getLogger("tscnn_tf")
HEARTBEAT_S = 15.0
STALE_AFTER_S = 120.0
POLL_S = 1.0
HOST = socket.gethostname()
CLAIM_PREFIX = "partial-"  # temporary files of a claim, ignored by every reader
CLOCK_CHECK_S = 60.0  # how often the filesystem's clock offset is measured again, per folder


def pid_namespace() -> str | None:
    """This process's PID namespace (Linux; None elsewhere): containers may share a host name
    but not their pids, so a pid is only checked within the namespace it was recorded in."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


PID_NAMESPACE = pid_namespace()
_clock_offsets: dict[str, tuple[float, float]] = {}


def fs_now(folder) -> float:
    """Now, by the clock that stamps files in `folder` (an NFS server's, which may run ahead of
    or behind this host's): this host's time plus the offset seen on a probe file written
    there, measured again every CLOCK_CHECK_S seconds; this host's time where no probe can be
    written."""
    key, now = str(folder), time.time()
    offset, measured = _clock_offsets.get(key, (0.0, -math.inf))
    if now - measured > CLOCK_CHECK_S:
        probe = Path(folder) / f"{CLAIM_PREFIX}clock-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            offset = probe.stat().st_mtime - time.time()
            probe.unlink()
        except OSError:
            offset = 0.0
        _clock_offsets[key] = (offset, now)
    return time.time() + offset


def beside(folder, suffix: str = ".claim") -> Path:
    """The claim file of a whole folder: next to it, so clearing the folder leaves it alone."""
    folder = Path(folder).resolve()
    return folder.with_name(folder.name + suffix)


def read_claim(path) -> dict | None:
    """The holder of the claim at `path` ({host, pid, pidns, token, since}), None if there is
    none."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether process `pid` (of this host and PID namespace) still runs: a zombie, dead but
    not yet reaped by its parent (an extra process of `--loso_workers` killed while the first
    one trains), does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: field 3 of /proc/<pid>/stat is the state, after the name in parentheses
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def is_stale(path: Path, holder: dict | None, stale_after: float) -> bool:
    """A claim of a dead process: on this host and in this PID namespace with a dead pid (a
    claim of an older version, without a namespace, counts as this one's), or not touched for
    too long by the filesystem's clock."""
    try:
        age = fs_now(path.parent) - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > stale_after:
        return True
    here = (bool(holder) and holder.get("host") == HOST
            and holder.get("pidns", PID_NAMESPACE) == PID_NAMESPACE)
    return here and not pid_alive(int(holder["pid"]))


def describe(holder: dict | None) -> str:
    return f"{holder.get('host')}:{holder.get('pid')}" if holder else "an unknown process"


class Claim:
    """A held claim; touched by a heartbeat thread until `release` (or the `with` block ends)."""

    def __init__(self, path: Path, token: str, heartbeat_s: float):
        self.path, self.token = path, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)
        self._thread.start()

    def held(self) -> bool:
        return self.taken_by() is None

    def taken_by(self, retries: int = 3, wait_s: float = 0.1) -> str | None:
        """None while this process holds the claim, else who holds it now: a read of the claim
        file's token, no write (cheap enough for every epoch). A file that exists but cannot be
        read (a shared filesystem's hiccup) is read again before it counts as lost."""
        for attempt in range(retries + 1):
            holder = read_claim(self.path)
            if holder is not None or not self.path.exists() or attempt == retries:
                break
            time.sleep(wait_s)
        return None if (holder or {}).get("token") == self.token else describe(holder)

    def _beat(self, heartbeat_s: float) -> None:
        while not self._stop.wait(heartbeat_s):
            holder = read_claim(self.path)
            if holder is not None and holder.get("token") != self.token:
                log.warning("the claim %s was taken over by %s", self.path, describe(holder))
                return
            # An unreadable or briefly absent claim (a shared filesystem's hiccup, another
            # process's take-over putting a fresh claim back) is not a loss: beat again.
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.held():
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _create(path: Path, record: dict) -> bool:
    """Make the claim file holding `record` atomically; False if one exists."""
    tmp = path.with_name(f"{CLAIM_PREFIX}{record['token']}-{path.name}")
    tmp.write_text(json.dumps(record))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this filesystem
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, stale: dict | None) -> None:
    """Remove the stale claim `stale` at `path`, atomically: of several processes that judged it
    stale, one moves it away; a fresh claim moved by mistake is put back."""
    grave = path.with_name(f"{CLAIM_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return
    moved = read_claim(grave)
    if (moved or {}).get("token") != (stale or {}).get("token"):
        with contextlib.suppress(OSError):
            os.link(grave, path)
    else:
        log.warning("taking over %s from %s (its process is gone)", path.name, describe(stale))
    grave.unlink(missing_ok=True)


def try_claim(path, stale_after: float = STALE_AFTER_S,
              heartbeat_s: float = HEARTBEAT_S) -> Claim | None:
    """Claim `path` for this process, taking over a stale claim; None while a live process
    holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"host": HOST, "pid": os.getpid(), "pidns": PID_NAMESPACE,
              "token": uuid.uuid4().hex, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for _ in range(3):
        if _create(path, record):
            return Claim(path, record["token"], heartbeat_s)
        holder = read_claim(path)
        if not is_stale(path, holder, stale_after):
            return None
        _take_over(path, holder)
    return None


@contextlib.contextmanager
def exclusive(path, what: str, stale_after: float = STALE_AFTER_S,
              heartbeat_s: float = HEARTBEAT_S, poll_s: float = POLL_S):
    """Hold the claim at `path` for the block; while a live process holds it, wait (as long as
    its heartbeat goes on: a dead holder is taken over)."""
    waiting = False
    while (claim := try_claim(path, stale_after, heartbeat_s)) is None:
        if not waiting:
            log.info("waiting for %s, which is making %s", describe(read_claim(path)), what)
            waiting = True
        time.sleep(poll_s)
    with claim:
        yield claim
