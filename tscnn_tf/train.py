"""Leave-one-subject-out training and evaluation of the TSCNN: the entry of `tscnn_tf.loso`.

    python -m tscnn_tf.train --db=synthetic
    python -m tscnn_tf.train --db=custom --data_dir=DIR --streams=L+S+T --blocks=3 --folds=3,7
    python -m tscnn_tf.train --task=spotting --db=synthetic_long --workdir=W --export_dir=E
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

# Old import paths (`from tscnn_tf.train import train_loso`, ...); new code imports tscnn_tf.loso.
from tscnn_tf.loso import (TrainConfig, TrainingError, aggregate, format_results,  # noqa: F401
                           train_final, train_fold, train_loso)

def main(argv):
    del argv
    from absl import flags
    from tscnn_tf import cli, experiment, workers
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = cli.experiment_config(flags.FLAGS)
    workdir = Path(flags.FLAGS.workdir or f"runs/{config.data.db}")
    workers.follow_parent()  # when started by --loso_workers: stop when that process does
    workers.check(config.run.loso_workers, config.run.threads)
    threads = workers.threads_for(config.run.loso_workers, config.run.threads)
    workers.limit_threads(threads)
    others = workers.Workers(sys.argv[1:], config.run.loso_workers - 1, threads, workdir)
    if config.train.task == "spotting":
        return train_spotter(config, flags.FLAGS.workdir, others)
    try:
        outcome = experiment.run(config, workdir, on_ready=others.start)
    except BaseException:
        others.stop()  # their folds resume in a later run
        raise
    for line in others.wait():
        logging.getLogger("tscnn_tf").warning(line)
    if others.started and experiment.unfinished(outcome):
        # The others are done now: their results and export (or what one that failed left
        # unfinished, trained here).
        outcome = experiment.run(config, workdir)
    print(experiment.report(outcome, config, workdir))


def train_spotter(config, workdir, others) -> None:
    """`--task=spotting`: the learned spotter's LOSO and export (`spot_training.run`)."""
    from tscnn_tf import spot_training
    from tscnn_tf.predicting import load_model
    workdir = Path(workdir or f"runs/spotting/{config.data.db}")
    # --model with --task=spotting: a clip model's export that recognises what is spotted.
    model = load_model(config.train.model) if "model" in config.run.given else None
    try:
        outcome = spot_training.run(config, workdir, on_ready=others.start, model=model)
    except BaseException:
        others.stop()
        raise
    for line in others.wait():
        logging.getLogger("tscnn_tf").warning(line)
    if others.started and (outcome["pending"] or outcome["results"] is None):
        outcome = spot_training.run(config, workdir, model=model)
    print(spot_training.report(outcome, workdir))


def define_flags():
    from absl import flags
    from tscnn_tf import cli, config
    cli.define_config_flags(config.DataConfig, config.FeatureConfig, config.TrainConfig,
                            config.ExportConfig, config.RunConfig, config.SpottingConfig)
    flags.adopt_module_key_flags(cli)  # `--help` lists them (they are defined in cli)
    flags.DEFINE_string("workdir", None, "Everything the run writes (default runs/<db>).")


if __name__ == "__main__":
    define_flags()
    from tscnn_tf import cli
    cli.run(main, training=True)
