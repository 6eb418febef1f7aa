"""`python -m tscnn_tf.spot` is a thin entry: flags -> `spot_runs.command(SpotOptions)`. The
library's old import path (`spot.spot_source`, ...) still works, and no library module imports
an entry module."""
import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tscnn_tf import spot, spot_runs, spotting

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = {"tscnn_tf.train", "tscnn_tf.export", "tscnn_tf.predict", "tscnn_tf.spot",
           "tscnn_tf.bench", "tscnn_tf.inspect", "pipelines.extract_features"}
# What users and tests import from the entry (its names before the library moved out).
OLD_NAMES = ("COUNT_KEYS", "SpotError", "check_fps", "spot_source", "read_long_database",
             "spot_video", "evaluate_database", "write_intervals_csv", "format_scores")


@pytest.mark.parametrize("name", OLD_NAMES)
def test_the_old_spot_names_are_the_librarys(name):
    assert getattr(spot, name) is getattr(spot_runs, name)


def test_make_recogniser_keeps_its_old_homes():
    assert spot.make_recogniser is spot_runs.make_recogniser is spotting.make_recogniser


def test_the_spot_entry_defines_flags_and_main_only():
    tree = ast.parse((ROOT / "tscnn_tf" / "spot.py").read_text())
    defined = [node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assigned = [node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))]
    assert defined == ["main", "define_flags"] and not assigned


def test_main_passes_every_flag_to_one_library_call(tmp_path):
    """The command as a user runs it, with `spot_runs.command` replaced: it is called once, with
    the flags given and every other option at its default (the flags' defaults are the
    options')."""
    code = ("import dataclasses, json, runpy, sys\n"
            "from tscnn_tf import spot_runs\n"
            "spot_runs.command = lambda options: print('CALLED', "
            "json.dumps(dataclasses.asdict(options)))\n"
            "sys.argv = ['spot', *sys.argv[1:]]\n"
            "runpy.run_module('tscnn_tf.spot', run_name='__main__', alter_sys=True)")
    args = [f"--video={tmp_path / 'v.avi'}", "--fps=30", "--json", "--threshold=0.4",
            "--synthetic_videos=2", "--nofollow_symlinks"]
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("CALLED ")]
    expected = spot_runs.SpotOptions(video=str(tmp_path / "v.avi"), fps=30.0, json=True,
                                     threshold=0.4, synthetic_videos=2)
    assert json.loads(line[len("CALLED "):]) == dataclasses.asdict(expected)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (`from a import b` counts
    as both `a` and `a.b`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_no_library_module_imports_an_entry_module():
    files = [*(ROOT / "tscnn_tf").rglob("*.py"), *(ROOT / "pipelines").rglob("*.py")]
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in files}
    assert "tscnn_tf.spot_runs" in modules and ENTRIES <= set(modules)
    found = {name: sorted(imported_modules(path) & ENTRIES)
             for name, path in modules.items() if name not in ENTRIES}
    assert not {name: entries for name, entries in found.items() if entries}
