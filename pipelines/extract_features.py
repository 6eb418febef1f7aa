"""The feature stage command: flags -> `pipelines.extraction.command` (the library).

    python -m pipelines.extract_features --db=synthetic --output_dir=/tmp/records
    python -m pipelines.extract_features --db=custom --data_dir=DIR --output_dir=OUT
    python -m pipelines.extract_features --db=custom --data_dir=DIR --dry_run --summary_json=s.json

Shards are written under a temporary name and renamed when complete; a re-run skips every
sample already in a finished shard made with the same parameters, so an interrupted run resumes.
The library's names stay importable from here (`from pipelines.extract_features import
extract_features, dry_run, ...`); new code imports `pipelines.extraction`.
"""
from __future__ import annotations

import logging

from pipelines.extraction import (  # noqa: F401 (the old import path of the library)
    APEX_TOLERANCE, INDEX_SUFFIX, MANIFEST, SHARD_SUFFIX, ExtractionError, ShardWriter,
    apex_agreement, check_compatible, clear_records, command, dropped_rows, dry_run,
    extract_features, face_usage, finished_shards, format_summary, init_worker, lbptop_summary,
    process_sample, report, run_samples, sample_entry, summarize, write_manifest)


def main(argv):
    del argv
    from absl import flags
    from tscnn_tf import cli
    FLAGS = flags.FLAGS
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(command(cli.experiment_config(FLAGS), FLAGS.output_dir, FLAGS.samples_per_shard,
                  FLAGS.dry_run, FLAGS.summary_json))


def define_flags():
    from absl import flags
    from tscnn_tf import cli, config
    cli.define_config_flags(config.DataConfig, config.FeatureConfig,
                            run_fields=("num_workers", "overwrite"))
    flags.adopt_module_key_flags(cli)  # `--help` lists them (they are defined in cli)
    flags.DEFINE_string("output_dir", None, "Where the TFRecords and manifest.json go.")
    flags.DEFINE_integer("samples_per_shard", 64, "Samples per TFRecord shard.", lower_bound=1)
    flags.DEFINE_bool("dry_run", False, "Only read and validate the database.")
    flags.DEFINE_string("summary_json", None, "With --dry_run: write the summary here.")


if __name__ == "__main__":
    define_flags()
    from tscnn_tf import cli
    cli.run(main)
