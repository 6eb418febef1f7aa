"""Command-line flags made from the experiment config, and the per-database flagfiles.

Only `main` functions use this module; library code takes a config. A flag's default and help
are the config field's (`tscnn_tf.config`): nothing is typed twice. The flagfiles of `--db` are
loaded first, a user's `--flagfile` after them (it adds to them), and explicit flags win.
"""
from __future__ import annotations

import dataclasses
import json
import signal
import sys
from pathlib import Path

from absl import flags

from tscnn_tf import config as config_lib
from tscnn_tf.databases import READERS
from tscnn_tf.errors import ToolkitError

# Failures a command reports as one `error:` line (exit 1) instead of a traceback.
EXPECTED_ERRORS = (ToolkitError, OSError, ValueError)
_applied: list[str] = []  # the flagfiles this command loaded, in order
_given: list[str] = []  # the flags the user set (command line, own flagfiles)
# What Ctrl-C leaves, per command (the module run with -m); every write is atomic.
INTERRUPTED = {
    "tscnn_tf.train": "finished records, epochs and folds are kept; run the same command "
                      "again to resume",
    "pipelines.extract_features": "finished record shards are kept; run the same command again "
                                  "to resume",
    "pipelines.beam_extract": "nothing half-written is left; this pipeline does not resume: "
                              "run it again to start over",
    "tscnn_tf.spot": "spotting does not resume: the intervals printed above are all that was "
                     "found, and no output file was written; run the command again to start over",
    "tscnn_tf.predict": "nothing half-written is left; run the command again",
    "tscnn_tf.export": "no half-written export is left; run the command again",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C is: the command stops the way it stops on
    Ctrl-C (its worker processes ended, nothing half-written) and says so; exit code 143."""


def _terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    raise Terminated()


class FlagfileError(ToolkitError):
    """A database's flagfile is missing (a broken install)."""


def flagfile_dir() -> Path:
    """The flagfiles: package data `tscnn_tf.flagfiles` (the checkout's `flags/`, installed
    with the package), or the `flags/` folder of a source checkout run without installing."""
    from importlib import resources
    try:
        folder = Path(str(resources.files("tscnn_tf.flagfiles")))
        if (folder / "synthetic.cfg").is_file():
            return folder
    except ModuleNotFoundError:
        pass
    checkout = Path(__file__).resolve().parent.parent / "flags"
    if (checkout / "synthetic.cfg").is_file():
        return checkout
    raise FlagfileError("the per-database flagfiles (flags/*.cfg) are not installed; "
                        "reinstall tscnn-tf (pip install .)")


def _value_of(argv: list[str], name: str) -> list[str]:
    """Every value of `--name=V` / `--name V` in argv."""
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            out.append(arg.split("=", 1)[1])
        elif arg == f"--{name}" and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def flag_names(args: list[str]) -> list[str]:
    """The flags named in `args` (`--name=V`, `--name V`, `--name`, `--noname`)."""
    names = [a[2:].split("=", 1)[0] for a in args if a.startswith("--") and len(a) > 2]
    return [n[2:] if n.startswith("no") and n not in _FIELDS and n[2:] in _FIELDS else n
            for n in names]


_FIELDS = {f.name for section in config_lib.SECTIONS.values() for f in dataclasses.fields(section)}


def records_db(argv: list[str]) -> str | None:
    """The database of the records in the last `--records_dir` of argv (their manifest), if any."""
    folder = next(reversed(_value_of(argv[1:], "records_dir")), None)
    try:
        return json.loads((Path(folder) / "manifest.json").read_text())["db"] if folder else None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no or damaged records: training says so


def with_db_flagfile(argv: list[str], training: bool = False) -> list[str]:
    """argv with `flags/<db>.cfg` (feature-stage defaults) and, for training, `<db>.train.cfg`
    inserted first, so a user's `--flagfile` and explicit flags override them.

    The database is the last `--db` of the command line or, failing that, of a user flagfile,
    or that of the records in `--records_dir`. A known database without its flagfile is an
    error (FlagfileError).
    """
    user_files = _value_of(argv, "flagfile")
    db = next(reversed(_value_of(argv[1:], "db")), None)
    given = flag_names(argv[1:])
    for path in user_files:
        if Path(path).is_file():
            tokens = Path(path).read_text().split()
            given += flag_names(tokens)
            found = _value_of(tokens, "db")
            db = db or (found[-1] if found else None)
    _given[:] = sorted(set(given) & _FIELDS)
    db = db or records_db(argv) or "synthetic"
    folder = flagfile_dir()
    files = []
    if db in READERS:
        if not (folder / f"{db}.cfg").is_file():
            raise FlagfileError(f"flagfile {folder / f'{db}.cfg'} of --db={db} is missing; "
                                "reinstall tscnn-tf")
        files.append(folder / f"{db}.cfg")
        if training and (folder / f"{db}.train.cfg").is_file():
            files.append(folder / f"{db}.train.cfg")
    _applied[:] = [str(f) for f in files] + user_files
    return [argv[0], *[f"--flagfile={f}" for f in files], *argv[1:]]


def applied_flagfiles() -> tuple[str, ...]:
    """The flagfiles loaded by `run`, database's first, for the record."""
    return tuple(_applied)


def define_config_flags(*sections, run_fields: tuple[str, ...] = (),
                        flag_values=flags.FLAGS) -> None:
    """One flag per field of the given config sections (and the listed RunConfig fields), with
    the field's default, help and choices."""
    fields = [f for section in sections for f in dataclasses.fields(section)]
    fields += [f for f in dataclasses.fields(config_lib.RunConfig) if f.name in run_fields]
    for field in fields:
        meta = field.metadata
        if "help" not in meta:
            continue
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        if meta["choices"]:
            flags.DEFINE_enum(field.name, default, list(meta["choices"]), meta["help"],
                              flag_values=flag_values)
            continue
        kind = meta["kind"] or {bool: "bool", int: "integer", float: "float", str: "string",
                                list: "list"}[type(default)]
        getattr(flags, f"DEFINE_{kind}")(field.name, default, meta["help"],
                                         flag_values=flag_values)


def experiment_config(FLAGS) -> config_lib.ExperimentConfig:
    """The experiment config from the parsed flags; fields without a flag keep their default."""
    sections = {}
    for name, section in config_lib.SECTIONS.items():
        values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(section)
                  if f.name in FLAGS}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if name == "run":
            values["flagfiles"] = applied_flagfiles()
            values["given"] = tuple(_given)
        sections[name] = section(**values)
    return config_lib.ExperimentConfig(**sections)


def command_name(main) -> str:
    """The command `main` belongs to: its module's name, also when run with `python -m`."""
    spec = getattr(main, "__globals__", {}).get("__spec__")
    return spec.name if spec is not None else main.__module__


def reporting_errors(main):
    """`main` with expected failures as one `error:` line (the empty output folders it made
    removed again) and Ctrl-C as one `interrupted:` line saying what this command keeps
    (INTERRUPTED): everything the commands write is atomic, and the feature stage and training
    resume.
    """
    kept = INTERRUPTED.get(command_name(main), "nothing half-written is left")

    def wrapped(argv):
        try:
            return main(argv)
        except KeyboardInterrupt as e:
            from tscnn_tf.artifacts import remove_empty_checked_dirs
            remove_empty_checked_dirs()  # an output folder made for work that never came
            by = "terminated (SIGTERM); " if isinstance(e, Terminated) else ""
            print(f"interrupted: {by}{kept}", file=sys.stderr)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except EXPECTED_ERRORS as e:
            from tscnn_tf.artifacts import remove_empty_checked_dirs
            remove_empty_checked_dirs()  # the empty folders made while checking the outputs
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
    return wrapped


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with a bad flag (unknown, or a value of the wrong kind) reported
    like every other refusal: one `error:` line, exit code 1."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        message = " ".join(str(e).split())
        print(f"error: {message} (--helpfull lists the flags)", file=sys.stderr)
        sys.exit(1)


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def run(main, training: bool = False, db_flagfiles: bool = True) -> None:
    """absl.app.run with the database's flagfile(s) loaded first and errors reported in one
    line; the help flags exit 0 (absl exits 1 after printing the help)."""
    from absl import app
    signal.signal(signal.SIGTERM, _terminated)
    try:
        argv = with_db_flagfile(sys.argv, training) if db_flagfiles else sys.argv
    except FlagfileError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        app.run(reporting_errors(main), argv=argv, flags_parser=parse_flags)
    except SystemExit as e:
        if e.code == 1 and any(a in HELP_FLAGS for a in argv[1:]):
            sys.exit(0)
        raise
