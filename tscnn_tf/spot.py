"""Spot micro- and macro-expressions in a long video, a frame folder or a camera, and recognise
what was spotted with an exported model (spot-then-recognise).

    python -m tscnn_tf.spot --video=long.mp4 --json
    python -m tscnn_tf.spot --camera=0 --fps=30 --model=saved_models/synthetic
    python -m tscnn_tf.spot --frames=DIR --fps=200 --output=spots.csv --visualize=signal.png
    python -m tscnn_tf.spot --db=synthetic_long --model=saved_models/synthetic   # MEGC scores

With --json the last line on stdout is one JSON object: {"frames", "fps", "intervals":
[{"onset", "apex", "offset", "score", "type"[, "label", "probabilities"]}], "frames_per_s",
"warnings", "frames_read", "frames_declared", "frames_unreadable", "frames_with_face"}, frame
indices 0-based in the input (a video's decoding order, a folder's sorted listing); an
unreadable frame is skipped with a warning and keeps its index. An input in which no face is
found exits with code 1 after its output (a camera goes on). Every output path is checked
before the first frame is read. With --db, every video of the database is spotted and scored
with the MEGC protocol (metrics.spotting_scores): spotting_results.json and
spotting_intervals.csv go to --output_dir.

The library is `tscnn_tf.spot_runs` (`tscnn_tf.spotting` is the spotter); its names stay
importable from here (`spot.spot_source`, `spot.evaluate_database`, `spot.SpotError`, ...).
"""
from __future__ import annotations

import dataclasses

# The library's names, as before the entry was split from it (a contract for users' imports).
from tscnn_tf.spot_runs import *  # noqa: F401,F403
from tscnn_tf.spot_runs import SpotOptions, command
from tscnn_tf import spotting
from tscnn_tf.databases.long_videos import LONG_DATABASES


def main(argv):
    del argv
    from absl import flags
    command(SpotOptions(**{f.name: flags.FLAGS[f.name].value
                           for f in dataclasses.fields(SpotOptions)}))


def define_flags():
    from absl import flags
    flags.DEFINE_string("video", None, "A long video file.")
    flags.DEFINE_string("frames", None, "A folder of frames (give --fps).")
    flags.DEFINE_integer("camera", None, "A camera OpenCV can open (its index).")
    flags.DEFINE_float("fps", None, "Frame rate, when the input has none.")
    flags.DEFINE_string("model", None, "An export (folder, .keras or .tflite): recognise each "
                        "spotted interval.")
    flags.DEFINE_string("spotter", None, "A learned spotter's export (train --task=spotting "
                        "--export_dir=E): spot with it instead of the LBP spotter.")
    flags.DEFINE_bool("json", SpotOptions.json, "Print one JSON object as the last line.")
    flags.DEFINE_string("output", None, "Write the intervals to this CSV.")
    flags.DEFINE_string("visualize", None, "Draw the spotting signal and intervals to this PNG.")
    flags.DEFINE_enum("signal", SpotOptions.signal, list(spotting.SIGNALS),
                      "Spotting signal.")
    flags.DEFINE_float("threshold", SpotOptions.threshold,
                       "p of the threshold T = mean + p (max - mean) of the contrast.")
    flags.DEFINE_float("micro_max_s", SpotOptions.micro_max_s,
                       "The longest micro-expression, seconds.")
    flags.DEFINE_string("db", None, f"Spot and score a long-video database: {LONG_DATABASES}.")
    flags.DEFINE_string("data_dir", None, "The long-video database's folder.")
    from tscnn_tf.config import DataConfig
    flags.DEFINE_bool("follow_symlinks", SpotOptions.follow_symlinks,
                      DataConfig.__dataclass_fields__["follow_symlinks"].metadata["help"])
    flags.DEFINE_bool("dry_run", SpotOptions.dry_run,
                      "With --db: read and validate the sheet and folders only.")
    flags.DEFINE_string("summary_json", None, "With --dry_run: write the summary here.")
    flags.DEFINE_string("output_dir", None, "Where --db writes its results "
                        "(default runs/spot/<db>).")
    flags.DEFINE_integer("synthetic_seed", SpotOptions.synthetic_seed, "synthetic_long: seed.")
    flags.DEFINE_integer("synthetic_videos", SpotOptions.synthetic_videos,
                         "synthetic_long: number of videos.")
    flags.DEFINE_float("synthetic_seconds", SpotOptions.synthetic_seconds,
                       "synthetic_long: seconds per video (at --fps, default 100).")
    flags.DEFINE_enum("synthetic_style", SpotOptions.synthetic_style, ["plain", "realistic"],
                      "synthetic_long: plain (the first renderer) or realistic (talking, head "
                      "turns, hands, lighting drift, compression).")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
