"""Claims between containers that share a host name, and on a filesystem whose clock is not
this host's: a live claim is never taken over, a dead one still is."""
import json
import os
import subprocess
import sys
import time

from tscnn_tf import claims


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_claim(path, **holder):
    path.write_text(json.dumps({"host": claims.HOST, "token": "theirs", **holder}))


def test_a_pid_is_only_judged_in_its_own_pid_namespace(tmp_path):
    """Another container under this host name: its pid means nothing here, its heartbeat
    does; a dead pid of this namespace (or of a claim without one) is taken over at once."""
    pid = dead_pid()
    other = tmp_path / "other-container.claim"
    write_claim(other, pid=pid, pidns="another-namespace")
    assert claims.try_claim(other) is None
    for holder in ({"pidns": claims.PID_NAMESPACE}, {}):  # {}: a claim of an older version
        here = tmp_path / f"here-{len(holder)}.claim"
        write_claim(here, pid=pid, **holder)
        with claims.try_claim(here) as claim:
            assert claim is not None
    with claims.try_claim(tmp_path / "new.claim") as mine:
        assert claims.read_claim(mine.path)["pidns"] == claims.PID_NAMESPACE


def test_a_filesystem_clock_behind_this_host_takes_over_no_live_claim(tmp_path, monkeypatch):
    """This host's clock 10 minutes ahead of the file server's: a claim touched a moment ago
    (by the server's clock) is live; one silent for longer than the stale limit is not."""
    fresh, silent = tmp_path / "fresh.claim", tmp_path / "silent.claim"
    write_claim(fresh, host="another-node", pid=1)
    write_claim(silent, host="another-node", pid=1)
    old = time.time() - claims.STALE_AFTER_S - 5
    os.utime(silent, (old, old))
    real = time.time
    monkeypatch.setattr(claims.time, "time", lambda: real() + 600)
    monkeypatch.setattr(claims, "_clock_offsets", {})
    assert claims.fs_now(tmp_path) - real() < 5
    assert claims.try_claim(fresh) is None
    taken = claims.try_claim(silent)
    assert taken is not None
    taken.release()
    assert not [p for p in tmp_path.iterdir() if "clock" in p.name]  # the probe is gone
