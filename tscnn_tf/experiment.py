"""The whole experiment as one library call, as Flax's `train_and_evaluate(config, workdir)`:

    results = tscnn_tf.experiment.run(config, workdir)

records (made or checked) -> leave-one-subject-out folds -> final all-subject model -> export,
every step resumable and every artifact tied to the config's fingerprint, so a second run in the
same workdir with other settings or data refuses (or, with `run.overwrite`, replaces) instead
of reporting the first run's figures. `--sweep` runs the same path once per sweep point.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from pipelines import extraction as ef
from tscnn_tf import claims, export, loso, sweep
from tscnn_tf.artifacts import check_writable_dir
from tscnn_tf.config import ExperimentConfig, FeatureConfig
from tscnn_tf.databases import read_database

log = logging.getLogger("tscnn_tf")


def data_dir_of(config: ExperimentConfig, workdir: Path) -> Path:
    """The database folder: `data.data_dir`, or for the synthetic database its default place."""
    if config.data.data_dir is not None:
        return Path(config.data.data_dir)
    if config.data.db != "synthetic":
        raise loso.TrainingError(f"--data_dir is required for --db={config.data.db}: the folder "
                                  "of the database (see the README)")
    return workdir / "synthetic_db"


def ensure_records(config: ExperimentConfig, workdir: Path, records_dir: Path,
                   features: FeatureConfig | None = None) -> dict:
    """Make or finish the records of `features` (default the config's) in `records_dir`, or
    check that the ones there were made from this data with these settings. Returns the
    manifest. Records of other settings or data are refused (ExtractionError), or replaced with
    `run.overwrite`."""
    features = features or config.features
    data_dir = data_dir_of(config, workdir)
    if config.data.db != "synthetic" and not data_dir.is_dir():
        raise loso.TrainingError(f"--data_dir {data_dir} does not exist")
    return ef.extract_features(config.data.db, data_dir, records_dir, features,
                               config.data.reader_options(), config.run.num_workers,
                               overwrite=config.run.overwrite,
                               provenance=config.effective(features))


def refuse_other_data(config: ExperimentConfig, workdir: Path) -> None:
    """Before any record is made: a workdir whose run was made from other data is refused (as
    `loso.claim_run_dir` would after extraction), so its records are left as they are."""
    path = workdir / loso.RUN_FILE
    if config.run.overwrite or not path.is_file():
        return
    old = json.loads(path.read_text()).get("identity", {}).get("records", {})
    if "data_fingerprint" not in old:
        return
    database = read_database(config.data.db, data_dir_of(config, workdir),
                             **config.data.reader_options())
    new = database.content_fingerprint()
    if old["data_fingerprint"] != new:
        raise loso.TrainingError(
            f"{workdir} holds a run made with other settings or data: records.data_fingerprint: "
            f"{old['data_fingerprint']} -> {new} ({len(database.samples)} samples now). Use "
            "another --workdir, or --overwrite to replace that run.")


def export_dir_of(config: ExperimentConfig) -> Path | None:
    """Where the final model is exported, or None when this run makes no final model."""
    if not config.export.final_model or config.run.folds or config.run.sweep:
        return None
    return Path(config.export.export_dir or f"saved_models/{config.data.db}")


def check_outputs(config: ExperimentConfig, workdir: Path) -> None:
    """Every place the run will write, checked before any clip or fold: the workdir, the records
    folder(s), the sweep's run folders and the export folder (a file, under a file, unwritable,
    or a folder of other files is refused here, not after hours of training)."""
    check_writable_dir(workdir)
    if (export_dir := export_dir_of(config)) is not None:
        export.check_export_dir(export_dir)
    if config.run.sweep:
        for features, streams in sweep.sweep_points(config.run.sweep, config.features,
                                                     config.run.sweep_streams,
                                                     config.run.sweep_values):
            check_writable_dir(sweep.records_dir_for(workdir, features, config.features))
            check_writable_dir(sweep.run_dir_for(workdir, features, streams))
    else:
        check_writable_dir(config.run.records_dir or workdir / "records")


def export_once(final: Path, export_dir: Path, records_dir: Path, results: dict,
                parity_samples: int) -> dict:
    """Export the final model unless `export_dir` already holds its export with these LOSO
    results; one process at a time."""
    with claims.exclusive(claims.beside(export_dir), f"the export in {export_dir}"):
        try:
            old = json.loads((export_dir / "metadata.json").read_text())
        except (OSError, ValueError):
            old = {}
        estimate = old.get("loso_estimate") or {}
        if (old.get("fingerprint") == results["fingerprint"] and estimate
                and all(results.get(k) == v for k, v in estimate.items())):
            log.info("%s already holds this run's export", export_dir)
            return old
        log.info("exporting the final model to %s", export_dir)
        return export.export_run_model(final, export_dir, records_dir, parity_samples)


def run(config: ExperimentConfig, workdir) -> dict:
    """Records -> LOSO -> final model -> export (or a sweep). Returns {"results": LOSO results,
    "export": export metadata or None} or {"sweep": rows}.

    Several processes may run it on one workdir: they split the folds (and the final model), the
    records and the synthetic database are made once, and the export is made by whichever
    finishes last. `results` is {"pending": ...} while other processes still hold folds."""
    workdir = Path(workdir)
    check_outputs(config, workdir)
    if config.run.sweep:
        rows = sweep.run_sweep(config.run.sweep, workdir, config,
                               lambda features, path: ensure_records(config, workdir, path,
                                                                     features),
                               config.run.sweep_streams, config.run.sweep_values)
        return {"sweep": rows}
    records_dir = Path(config.run.records_dir or workdir / "records")
    refuse_other_data(config, workdir)
    ensure_records(config, workdir, records_dir)
    experiment = config.to_dict()

    def folds():
        return loso.train_loso(records_dir, workdir, config.train, config.run.folds,
                               config.features.to_dict(), experiment, config.run.overwrite)
    results = folds()
    out = {"results": results, "export": None}
    if (export_dir := export_dir_of(config)) is not None:
        log.info("final model: all subjects, validation subjects held out for stopping")
        final = loso.train_final(records_dir, workdir / "final", config.train, experiment,
                                 config.run.overwrite)
        if "pending" in results and final is not None:
            out["results"] = results = folds()  # other processes' folds may be finished now
        out["final"] = final
        if final is not None and "pending" not in results:
            out["export"] = export_once(final, export_dir, records_dir, results,
                                        config.export.parity_samples)
            out["export_dir"] = str(export_dir)
    return out


def report(outcome: dict, config: ExperimentConfig, workdir: Path) -> str:
    """What `train` prints: the table row(s), warnings, where everything went."""
    if "sweep" in outcome:
        return sweep.format_table(outcome["sweep"],
                                  f"{config.data.db}: sweep over {config.run.sweep}")
    results = outcome["results"]
    if "pending" in results:
        lines = [loso.format_pending(results["pending"])]
        if outcome.get("final") is not None:
            lines.append(f"final model: {outcome['final']}; exported by the process that "
                         "finishes the last fold")
        return "\n".join(lines)
    lines = [f"warning: {w}" for w in results["warnings"]]
    lines.append(loso.format_results(results, config.train.streams))
    lines.append(f"run {results['fingerprint']}  results: {workdir / 'results.json'}   "
                 f"predictions: {workdir / 'predictions.csv'}   confusion matrix: "
                 f"{workdir / 'confusion_matrix.png'}")
    if outcome["export"] is not None:
        lines.append(f"final model: {workdir / 'final' / 'best.keras'}, exported to "
                     f"{outcome['export_dir']}")
        lines.append(export.format_parity(outcome["export"]))
    elif "final" in outcome and outcome["final"] is None:
        lines.append("final model: being trained by another process, which exports it")
    lines.append(f"tensorboard --logdir {workdir}")
    return "\n".join(lines)
