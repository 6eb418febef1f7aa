"""The whole experiment as one library call, as Flax's `train_and_evaluate(config, workdir)`:

    results = tscnn_tf.experiment.run(config, workdir)

records (made or checked) -> leave-one-subject-out folds -> final all-subject model -> export,
every step resumable and every artifact tied to the config's fingerprint, so a second run in the
same workdir with other settings or data refuses (or, with `run.overwrite`, replaces) instead
of reporting the first run's figures. `--sweep` runs the same path once per sweep point.

Records alone (made on a Beam cluster, or shared without the licensed frames) are trained from
when there is no database to read: database, classes, feature parameters and data fingerprint
come from their manifest, and nothing reads or renders the database.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from pipelines import extraction as ef
from tscnn_tf import claims, exporting, loso, sweep
from tscnn_tf.artifacts import check_writable_dir
from tscnn_tf.config import FEATURE_ADDED, DataConfig, ExperimentConfig, FeatureConfig, as_json
from tscnn_tf.databases import check_name, read_database

log = logging.getLogger("tscnn_tf")
MANIFEST_KEYS = ("db", "class_names", "params", "samples", "data_fingerprint")


def data_dir_of(config: ExperimentConfig, workdir: Path) -> Path:
    """The database folder: `data.data_dir`, or for the synthetic database its default place."""
    check_name(config.data.db)  # a typo is named as one, not as a missing --data_dir
    if config.data.data_dir is not None:
        return Path(config.data.data_dir)
    if config.data.db != "synthetic":
        raise loso.TrainingError(f"--data_dir is required for --db={config.data.db}: the folder "
                                  "of the database (see the README), or --records_dir=<records "
                                  "made elsewhere> to train from records alone")
    return workdir / "synthetic_db"


def records_dir_of(config: ExperimentConfig, workdir: Path) -> Path:
    return Path(config.run.records_dir or workdir / "records")


def from_records_alone(config: ExperimentConfig, workdir: Path) -> bool:
    """Whether the run trains from the records alone: they are there (their manifest) and no
    database is named (no --data_dir; for --db=synthetic, not yet rendered). A --data_dir that
    does not exist is an error, not a reason to fall back on old records: it may be a typo."""
    if not (records_dir_of(config, workdir) / ef.MANIFEST).is_file():
        return False
    if config.data.data_dir is None and config.data.db == "synthetic":
        return not (workdir / "synthetic_db").is_dir()
    return config.data.data_dir is None


def refuse_records_dir_without_records(config: ExperimentConfig) -> None:
    """A `--records_dir` folder of no records (or none at all), with no database named (the
    default synthetic one, no --db, no --data_dir), is refused before anything is written: the
    user meant to train from records there, and the synthetic database would otherwise be
    made into their folder in silence. (A file there is refused by `check_outputs`.)"""
    folder = config.run.records_dir
    if (folder is None or (Path(folder) / ef.MANIFEST).is_file()
            or (Path(folder).exists() and not Path(folder).is_dir())
            or config.data.db != "synthetic" or config.data.data_dir is not None
            or "db" in config.run.given):
        return
    what = "is not there" if not Path(folder).exists() else "holds no records (no manifest.json)"
    raise loso.TrainingError(
        f"--records_dir={folder} {what}: give the folder the feature stage wrote (its "
        "--output_dir, with manifest.json and the *.tfrecord shards), or name the database "
        "(--db and --data_dir) to make records there")


def read_records_manifest(records_dir: Path) -> dict:
    """The manifest of records to train from alone, or one clear error when it is damaged, or
    its shards are not all there or do not hold every sample it lists."""
    from tscnn_tf import manifest as manifest_lib, records
    manifest = manifest_lib.load(records_dir, loso.TrainingError)
    records.verify(records_dir, manifest, loso.TrainingError)  # before anything is written
    return manifest


def records_config(config: ExperimentConfig, manifest: dict, where) -> ExperimentConfig:
    """The experiment as the records define it: database, classes, reader options and feature
    parameters from their manifest. A field the user set (`run.given`) that says otherwise is
    refused, every such field named."""
    made = {k: v for k, v in ((manifest.get("config") or {}).get("data") or {}).items()
            if k in DataConfig.__dataclass_fields__}
    if manifest.get("fps") is not None:
        made.setdefault("fps", manifest["fps"])
    data = {**made, "db": manifest["db"], "data_dir": None,
            "follow_symlinks": config.data.follow_symlinks}
    data["classes"] = data.get("classes") or manifest["class_names"]
    if missing := sorted(set(FeatureConfig.__dataclass_fields__) - set(FEATURE_ADDED)
                         - set(manifest["params"])):
        raise loso.TrainingError(f"{where} were made by an older feature stage (no "
                                 f"{', '.join(missing)} in their parameters); re-run the "
                                 "feature stage of this version")
    try:
        features = FeatureConfig(**manifest["params"])
        data = DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except (TypeError, ValueError) as e:
        raise loso.TrainingError(f"{where}: the manifest's parameters are not this version's "
                                 f"({e}); re-run the feature stage") from None
    ours = {**dataclasses.asdict(config.data), **dataclasses.asdict(config.features)}
    theirs = {**dataclasses.asdict(data), **dataclasses.asdict(features),
              "classes": manifest["class_names"]}
    known = {*made, *dataclasses.asdict(features), "db", "classes"} - {"data_dir",
                                                                       "follow_symlinks"}
    clash = [f"--{k}={fmt(ours[k])} (the records: {fmt(theirs[k])})" for k in config.run.given
             if k in known and as_json(ours[k]) != as_json(theirs[k])]
    if clash:
        raise loso.TrainingError(f"{where} were made otherwise than asked: {'; '.join(clash)}. "
                                 "Leave those flags out to train from the records as they are, "
                                 "or give --data_dir to make records with these settings.")
    return dataclasses.replace(config, data=data, features=features)


def fmt(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def ensure_records(config: ExperimentConfig, workdir: Path, records_dir: Path,
                   features: FeatureConfig | None = None) -> dict:
    """Make or finish the records of `features` (default the config's) in `records_dir`, or
    check that the ones there were made from this data with these settings. Returns the
    manifest. Records of other settings or data are refused (ExtractionError), or replaced with
    `run.overwrite`."""
    features = features or config.features
    data_dir = data_dir_of(config, workdir)
    if config.data.db != "synthetic" and not data_dir.is_dir():
        hint = (f" (leave --data_dir out to train from the records in {records_dir} alone)"
                if (records_dir / ef.MANIFEST).is_file() else "")
        raise loso.TrainingError(f"--data_dir {data_dir} does not exist{hint}")
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


def check_outputs(config: ExperimentConfig, workdir: Path, records_only: bool = False) -> None:
    """Every place the run will write, checked before any clip or fold: the workdir, the records
    folder(s), the sweep's run folders and the export folder (a file, under a file, unwritable,
    or a folder of other files is refused here, not after hours of training). Records trained
    from alone are only read."""
    check_writable_dir(workdir, "--workdir")
    if (export_dir := export_dir_of(config)) is not None:
        exporting.check_export_dir(export_dir)
    if config.run.sweep != "model":  # a model sweep checks each of its models below
        loso.check_model_settings(config.train)
    if config.run.sweep:
        for features, value in sweep.sweep_points(config.run.sweep, config.features,
                                                  config.run.sweep_streams,
                                                  config.run.sweep_values):
            records = sweep.records_dir_for(workdir, features, config.features,
                                            records_dir_of(config, workdir))
            if records_only and features != config.features:
                raise loso.TrainingError(
                    f"--sweep={config.run.sweep} needs records of other feature parameters "
                    f"({records.name}), made from the database: give --data_dir")
            if not records_only:
                check_writable_dir(records)
            if config.run.sweep == "model":
                loso.check_model_settings(dataclasses.replace(config.train, model=value))
            check_writable_dir(sweep.point_dir(config.run.sweep, workdir, features, value))
    elif not records_only:
        check_writable_dir(records_dir_of(config, workdir),
                           "--records_dir" if config.run.records_dir else None)


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
        return exporting.export_run_model(final, export_dir, records_dir, parity_samples)


def refuse_spotting_workdir(workdir: Path, overwrite: bool) -> None:
    """A workdir holding a spotting run (`train --task=spotting`) is refused before anything is
    rendered or extracted (`--overwrite` lets the run record replace it)."""
    try:
        held = json.loads((workdir / "config.json").read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if isinstance(held, dict) and held.get("task") == "spotting" and not overwrite:
        raise loso.TrainingError(f"{workdir} holds a spotting run (train --task=spotting), not "
                                 "a recognition run: give this run its own --workdir (or "
                                 "--overwrite to replace it)")


def run(config: ExperimentConfig, workdir, on_ready=None) -> dict:
    """Records -> LOSO -> final model -> export (or a sweep). Returns {"results": LOSO results,
    "export": export metadata or None} or {"sweep": rows}.

    Several processes may run it on one workdir: they split the folds (and the final model), the
    records and the synthetic database are made once, and the export is made by whichever
    finishes last. `results` is {"pending": ...} while other processes still hold folds.
    `on_ready()` is called once every check has passed and the records exist, before the first
    fold (`train --loso_workers` starts its other processes there)."""
    workdir = Path(workdir)
    refuse_spotting_workdir(workdir, config.run.overwrite)
    refuse_records_dir_without_records(config)
    records_dir = records_dir_of(config, workdir)
    records_only = from_records_alone(config, workdir)
    if not records_only:
        check_name(config.data.db)  # before any folder is made
    if records_only:
        manifest = read_records_manifest(records_dir)
        config = records_config(config, manifest, f"the records in {records_dir}")
        log.info("training from the records in %s alone (%s, %d samples, data fingerprint %s)",
                 records_dir, manifest["db"], len(manifest["samples"]),
                 manifest["data_fingerprint"])
    check_outputs(config, workdir, records_only)
    if config.run.sweep:
        def point_records(features: FeatureConfig, path: Path) -> dict:
            return manifest if records_only else ensure_records(config, workdir, path, features)
        if on_ready is not None:
            on_ready()
        rows = sweep.run_sweep(config.run.sweep, workdir, config, point_records,
                               config.run.sweep_streams, config.run.sweep_values,
                               records_dir=records_dir, check=loso.plan_model)
        if config.run.sweep == "model" and not any("pending" in r for r in rows):
            sweep.write_model_table(workdir, rows, config)  # by whichever process ends last
        return {"sweep": rows, "config": config}
    if not records_only:
        refuse_other_data(config, workdir)
        manifest = ensure_records(config, workdir, records_dir)
    loso.plan_model(config.train, manifest, f"the records in {records_dir}")  # before any fold
    experiment = config.to_dict()
    if on_ready is not None:
        on_ready()

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


def unfinished(outcome: dict) -> bool:
    """Whether `run` returned before every part was done (other processes held some)."""
    if "sweep" in outcome:
        return any("pending" in r for r in outcome["sweep"])
    return "pending" in outcome["results"] or ("final" in outcome and outcome["final"] is None)


def report(outcome: dict, config: ExperimentConfig, workdir: Path) -> str:
    """What `train` prints: the table row(s), warnings, where everything went."""
    if "sweep" in outcome:
        config = outcome.get("config", config)  # as the records define it
        if config.run.sweep == "model":
            written = not any("pending" in r for r in outcome["sweep"])
            return sweep.format_models(outcome["sweep"], config) + (
                f"\ntable: {workdir / sweep.MODEL_TABLE}.md, {workdir / sweep.MODEL_TABLE}.json"
                if written else "")
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
    label = config.train.streams if config.train.model == "tscnn" else config.train.model
    lines.append(loso.format_results(results, label))
    lines.append(f"run {results['fingerprint']}  results: {workdir / 'results.json'}   "
                 f"predictions: {workdir / 'predictions.csv'}   confusion matrix: "
                 f"{workdir / 'confusion_matrix.png'}")
    if config.run.folds and config.export.export_dir and config.export.final_model:
        lines.append(f"warning: no final model and no export to {config.export.export_dir}: "
                     "--folds trains only the folds it names; run without --folds to train "
                     "the final model and export it")
    if outcome["export"] is not None:
        lines.append(f"final model: {workdir / 'final' / 'best.keras'}, exported to "
                     f"{outcome['export_dir']}")
        lines.append(exporting.format_parity(outcome["export"]))
    elif "final" in outcome and outcome["final"] is None:
        lines.append("final model: being trained by another process, which exports it")
    lines.append(f"tensorboard --logdir {workdir}")
    return "\n".join(lines)
