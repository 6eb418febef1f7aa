"""See what the feature stage did, and what a run got wrong.

    python -m tscnn_tf.inspect --records=runs/synthetic/records --output=sheet.png
    python -m tscnn_tf.inspect --records=DIR --output=neg.png --classes=negative --limit=12
    python -m tscnn_tf.inspect --run=runs/synthetic --output=report.html

A contact sheet (PNG) shows each sample as one tile: subject, label, clip, frame range and apex
source above the onset face, the recorded apex face with the 6x6 apex-spotting grid and the
n x n block grid, the offset face, and the onset->apex and apex->offset flows in colour (hue =
direction, brightness = magnitude, scaled per tile). The records hold only the apex face: the
onset and offset faces are re-made from the database folder named in the manifest with the
feature stage's own alignment (--nofaces leaves them out). A run report (one self-contained
HTML file) holds the results table, per-subject and per-class figures, the confusion matrix
and a tile per sample (at most --limit), misclassified first.
"""
from __future__ import annotations

import logging
import sys


def main(argv):
    del argv
    from absl import flags
    from tscnn_tf import plots
    FLAGS = flags.FLAGS
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if FLAGS.records is None and FLAGS.run is None:
        raise plots.InspectError("give --records=DIR (contact sheet) or --run=WORKDIR (report)")
    if FLAGS.run is not None:
        out = plots.run_report(FLAGS.run, FLAGS.output, FLAGS.records, FLAGS.limit, FLAGS.faces)
        what = (f"run report: {out['misclassified']} of {out['total']} samples misclassified, "
                f"{out['shown']} tiles")
    else:
        out = plots.contact_sheet(FLAGS.records, FLAGS.output, FLAGS.limit, FLAGS.classes,
                                  FLAGS.sort, FLAGS.columns, FLAGS.faces)
        what = f"contact sheet: {out['shown']} of {out['total']} samples"
    for warning in out["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{what} -> {out['output']}")


def define_flags():
    from absl import flags
    from tscnn_tf.plots import SORTS
    flags.DEFINE_string("records", None, "Records folder (manifest.json + shards): draw its "
                        "contact sheet; with --run, the run's records if not its own.")
    flags.DEFINE_string("run", None, "A training run folder (results.json, predictions.csv): "
                        "write its HTML report.")
    flags.DEFINE_string("output", None, "The contact sheet (.png) or the report (.html).",
                        required=True)
    flags.DEFINE_integer("limit", 48, "Most samples drawn. Sheet: taken from each group, and "
                         "class, in turn; report: misclassified first.", lower_bound=0)
    flags.DEFINE_list("classes", None, "Sheet: only samples of these classes.")
    flags.DEFINE_enum("sort", "subject", list(SORTS), "Sheet: group the tiles by subject (each "
                      "group by class) or by class (each group by subject).")
    flags.DEFINE_integer("columns", 4, "Sheet: tiles per row.", lower_bound=1)
    flags.DEFINE_bool("faces", True, "Re-make the onset and offset faces from the database "
                      "folder of the records (the records hold only the apex face).")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
