"""`python -m tscnn_tf.export`: write the deployment artifacts of a trained model (the library
is `tscnn_tf.exporting`, which holds the layout of the artifacts).

    python -m tscnn_tf.export --model=runs/casme2/final/best.keras --output_dir=saved_models/casme2
"""
from __future__ import annotations

# The library's names, as before the entry was split from it (a contract for users' imports).
from tscnn_tf.exporting import *  # noqa: F401,F403
from tscnn_tf.exporting import export_run_model, format_parity


def main(argv):
    del argv
    from absl import flags
    FLAGS = flags.FLAGS
    metadata = export_run_model(FLAGS.model, FLAGS.output_dir, FLAGS.records_dir,
                                FLAGS.parity_samples, flag="--output_dir")
    print(format_parity(metadata))
    print(f"exported to {FLAGS.output_dir}: " + ", ".join(metadata["artifacts"].values()))


def define_flags():
    from absl import flags
    flags.DEFINE_string("model", None, "A .keras model written by tscnn_tf.train.", required=True)
    flags.DEFINE_string("output_dir", None, "Where the artifacts go (saved_models/<name>).",
                        required=True)
    flags.DEFINE_string("records_dir", None, "Records for calibration and parity "
                        "(default: the training run's records).")
    flags.DEFINE_integer("parity_samples", 128, "Most samples for calibration and for parity.",
                         lower_bound=1)


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
