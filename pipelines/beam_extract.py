"""The feature stage as an Apache Beam pipeline, for databases that outgrow one machine.

    pip install -e '.[beam]'
    python -m pipelines.beam_extract --db=casme2 --data_dir=DIR --output_dir=DIR            # DirectRunner
    python -m pipelines.beam_extract --db=casme2 --data_dir=gs://... --output_dir=... \
        -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://...   # or Flink, Spark

Beam's own pipeline options go after `--`. The records are identical to the local path's
(`pipelines.extraction`, tested); shards are `<db>-SSSSS-of-NNNNN.tfrecord` and the
manifest is written last, so `tscnn_tf.train --records_dir=DIR` reads them the same way.
`--output_dir` must be a folder the launching machine can read (local or mounted), because it
writes the manifest from the per-sample entries the workers leave there. The local
multiprocessing path stays the default: it resumes an interrupted run; this one reruns.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipelines.extraction import ExtractionError, check_compatible, sample_entry, write_manifest
from tscnn_tf.features import FeatureConfig


def build_pipeline(pipeline, samples, config: FeatureConfig, output_dir: str, db: str):
    """Samples -> (record, manifest entry) | failure; records to TFRecord shards.

    Returns (file names, entries, failures) as PCollections.
    """
    import apache_beam as beam

    class ExtractFeatures(beam.DoFn):
        """One landmark model per worker (setup), one sample per element."""

        def setup(self):
            import cv2
            from tscnn_tf import face
            cv2.setNumThreads(1)  # as the local workers: Beam runs several bundles at once
            self.landmarker = face.make_landmarker(config.landmarks, config.face_box,
                                                   config.detect_width)

        def process(self, sample):
            from tscnn_tf import records
            from tscnn_tf.features import failure, sample_features
            try:
                features = sample_features(sample, config, self.landmarker)
            except Exception as e:  # noqa: BLE001 - as the local runner: skip the clip, keep why
                yield beam.pvalue.TaggedOutput("failed", {"subject": sample.subject,
                                                          "clip": sample.clip, **failure(e)})
                return
            yield records.to_example(features), sample_entry(sample, features, "")

    results = (pipeline
               | "Samples" >> beam.Create(samples)
               | "Extract" >> beam.ParDo(ExtractFeatures()).with_outputs("failed", main="ok"))
    files = (results.ok
             | "Records" >> beam.Map(lambda pair: pair[0])
             | "Write" >> beam.io.WriteToTFRecord(str(Path(output_dir) / db),
                                                  file_name_suffix=".tfrecord"))
    entries = results.ok | "Entries" >> beam.Map(lambda pair: pair[1])
    return files, entries, results.failed


def run(db: str, data_dir, output_dir, config: FeatureConfig, reader_options: dict | None = None,
        beam_args: list[str] | None = None, provenance: dict | None = None) -> dict:
    """Read the database here, extract on the runner, write the manifest when all is written."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from tscnn_tf.databases import read_database
    database = read_database(db, data_dir, **(reader_options or {}))
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    manifest = Path(output_dir) / "manifest.json"
    if manifest.is_file():  # the local runner's check: other settings, classes or annotations
        check_compatible([{**json.loads(manifest.read_text()), "shard": manifest.name}],
                         database, config)
    if list(Path(output_dir).glob("*.tfrecord")):
        raise ExtractionError(f"{output_dir} already holds records of these settings; Beam does "
                              "not resume: use an empty folder, or the local runner")
    out = Path(output_dir)
    with beam.Pipeline(options=PipelineOptions(beam_args or [])) as pipeline:
        _, entries, failed = build_pipeline(pipeline, database.samples, config, output_dir,
                                            database.name)
        # Entries and failures go to files that the driver reads once everything is written.
        for name, collection in (("entries", entries), ("failed", failed)):
            _ = (collection | f"{name}Json" >> beam.Map(json.dumps)
                 | f"{name}Write" >> beam.io.WriteToText(str(out / f"beam-{name}"),
                                                        file_name_suffix=".jsonl"))
    lines = {name: [json.loads(line) for path in sorted(out.glob(f"beam-{name}*.jsonl"))
                    for line in path.read_text().splitlines() if line]
             for name in ("entries", "failed")}
    for path in out.glob("beam-*.jsonl"):
        path.unlink()
    shards = sorted(p.name for p in out.glob(f"{database.name}-*.tfrecord"))
    return write_manifest(out, database, config, data_dir, lines["entries"], lines["failed"], shards,
                          provenance)


def main(argv):
    from absl import flags
    from tscnn_tf import cli
    FLAGS = flags.FLAGS
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    beam_args = argv[1:]
    config = cli.experiment_config(FLAGS)
    if config.data.data_dir is None and config.data.db != "synthetic":
        raise ExtractionError("--data_dir is required for --db=" + config.data.db)
    data_dir = config.data.data_dir or str(Path(FLAGS.output_dir) / "synthetic_db")
    manifest = run(config.data.db, data_dir, FLAGS.output_dir, config.features,
                   config.data.reader_options(), beam_args, provenance=config.effective())
    print(f"{manifest['num_samples']} samples in {len(manifest['shards'])} shard(s) in "
          f"{FLAGS.output_dir}")


def define_flags():
    from absl import flags
    from tscnn_tf import cli, config
    cli.define_config_flags(config.DataConfig, config.FeatureConfig)
    flags.adopt_module_key_flags(cli)  # `--help` lists them (they are defined in cli)
    flags.DEFINE_string("output_dir", None, "Where the TFRecords and manifest.json go.",
                        required=True)


if __name__ == "__main__":
    define_flags()
    from tscnn_tf import cli
    cli.run(main)
