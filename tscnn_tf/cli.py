"""Flags shared by the command-line entry points, and per-database flagfiles.

Only `main` functions use this module; library code takes plain arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import flags

from tscnn_tf.errors import ToolkitError
from tscnn_tf.features import FeatureConfig
from tscnn_tf.flow import FLOW_METHODS

FLAGFILE_DIR = Path(__file__).resolve().parent.parent / "flags"


def define_feature_flags() -> None:
    """Flags of the database reader and the feature stage (Sections II.A-B)."""
    flags.DEFINE_string("db", "synthetic", "Database: synthetic, custom, casme2, smic, samm, "
                        "casme_sq, casme or megc2019.")
    flags.DEFINE_string("data_dir", None, "Database folder (synthetic: generated if absent).")
    flags.DEFINE_list("classes", None, "Class names to keep, in label order (custom database).")
    flags.DEFINE_integer("blocks", 3, "n of the n x n block stack of the local-spatial stream.")
    flags.DEFINE_integer("apex_lambda", 25, "λ of eq. 3: how many of the 36 block distances count.")
    flags.DEFINE_enum("flow", "tvl1", FLOW_METHODS, "Optical-flow method.")
    flags.DEFINE_integer("face_size", 144, "Side in pixels of the aligned face crop (6x6 grid).")
    flags.DEFINE_enum("apex_source", "spotted", ["spotted", "given"],
                      "Apex feeding the features: spotted (TSCNN-I) or given (TSCNN-II).")
    flags.DEFINE_enum("landmarks", "dlib", ["dlib", "face_alignment"], "Landmark backend.")
    flags.DEFINE_bool("per_frame_landmarks", False,
                      "Detect landmarks on every frame instead of once on the onset frame.")
    flags.DEFINE_enum("image_set", "auto", ["auto", "raw", "cropped"],
                      "Raw or cropped frames of the release (auto: raw when present).")
    flags.DEFINE_enum("expression_type", "all", ["all", "micro"],
                      "CAS(ME)²: macro + micro expressions (all) or micro only.")
    flags.DEFINE_float("fps", None, "Frame rate of the clips (recorded in the summary).")
    flags.DEFINE_integer("num_workers", None, "Feature-stage processes (default: all cores).")
    flags.DEFINE_integer("seed", 0, "Seed of the synthetic database.")
    flags.DEFINE_integer("synthetic_subjects", 8, "Subjects of the synthetic database.")
    flags.DEFINE_integer("synthetic_clips_per_class", 3, "Clips per class and subject (synthetic).")


def feature_config(FLAGS) -> FeatureConfig:
    return FeatureConfig(blocks=FLAGS.blocks, apex_lambda=FLAGS.apex_lambda, flow=FLAGS.flow,
                         face_size=FLAGS.face_size, apex_source=FLAGS.apex_source,
                         landmarks=FLAGS.landmarks, per_frame_landmarks=FLAGS.per_frame_landmarks)


def reader_options(FLAGS) -> dict:
    options = {"classes": FLAGS.classes, "fps": FLAGS.fps}
    if FLAGS.db in ("casme2", "smic", "casme_sq", "megc2019"):
        options["image_set"] = FLAGS.image_set
    if FLAGS.db == "casme_sq":
        options["expression_type"] = FLAGS.expression_type
    if FLAGS.db == "synthetic":
        options.update(seed=FLAGS.seed, num_subjects=FLAGS.synthetic_subjects,
                       clips_per_class=FLAGS.synthetic_clips_per_class)
    return options


def with_db_flagfile(argv: list[str], training: bool = False) -> list[str]:
    """Insert `--flagfile=flags/<db>.cfg` (feature-stage defaults) and, for training commands,
    `flags/<db>.train.cfg` before the other flags, so explicit flags override them."""
    if any(a.startswith("--flagfile") for a in argv):
        return argv
    db = None
    for i, arg in enumerate(argv):
        if arg.startswith("--db="):
            db = arg.split("=", 1)[1]
        elif arg == "--db" and i + 1 < len(argv):
            db = argv[i + 1]
    db = db or "synthetic"
    names = [f"{db}.cfg"] + ([f"{db}.train.cfg"] if training else [])
    files = [f"--flagfile={FLAGFILE_DIR / n}" for n in names if (FLAGFILE_DIR / n).is_file()]
    return [argv[0], *files, *argv[1:]]


# Failures a command reports as one `error:` line (exit 1) instead of a traceback.
EXPECTED_ERRORS = (ToolkitError, OSError, ValueError)


def reporting_errors(main):
    """`main` with expected failures as one `error:` line and Ctrl-C as one `interrupted:` line.

    Everything the commands write is atomic and resumable, so an interrupted run loses only the
    unfinished clip or epoch.
    """
    def wrapped(argv):
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("interrupted: finished records, epochs and folds are kept; run the same command "
                  "again to resume", file=sys.stderr)
            sys.exit(130)
        except EXPECTED_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
    return wrapped


def run(main, training: bool = False, db_flagfiles: bool = True) -> None:
    """absl.app.run with the database's flagfile(s) loaded first and errors reported in one line."""
    from absl import app
    argv = with_db_flagfile(sys.argv, training) if db_flagfiles else sys.argv
    app.run(reporting_errors(main), argv=argv)
