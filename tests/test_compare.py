"""Issue 18: training from records alone (no database), and `--sweep=model`, the comparison of
models in the form of the paper's Tables 2-6."""
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from pipelines import extraction
from tscnn_tf import cli, config as config_lib, data, experiment, loso, models, sweep
from tscnn_tf.config import DataConfig, ExperimentConfig, ExportConfig, FeatureConfig, RunConfig
from tscnn_tf.errors import ToolkitError

ROOT = Path(__file__).resolve().parent.parent
TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16, learning_rate=0.01)


def copied(records, tmp_path, name="shared") -> Path:
    """Only the records folder, copied elsewhere: no database beside it."""
    return Path(shutil.copytree(records, tmp_path / name / "records"))


def alone(records_dir, tmp_path, given=(), train=TINY, **changes) -> ExperimentConfig:
    """Training from `records_dir` with no --data_dir; the flags in `given` set by the user."""
    data = {k: v for k, v in changes.items() if k in DataConfig.__dataclass_fields__}
    features = {k: v for k, v in changes.items() if k in FeatureConfig.__dataclass_fields__}
    run = {k: v for k, v in changes.items() if k in RunConfig.__dataclass_fields__}
    return ExperimentConfig(
        data=DataConfig(**{"db": "custom", **data}), features=FeatureConfig(**features),
        train=train, export=ExportConfig(export_dir=str(tmp_path / "export"), parity_samples=8),
        run=RunConfig(records_dir=str(records_dir), num_workers=1, given=tuple(given), **run))


def no_database(monkeypatch):
    """Reading, rendering or extracting the database fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the database was read")
    monkeypatch.setattr(experiment, "read_database", refuse)
    monkeypatch.setattr(experiment.ef, "extract_features", refuse)


def test_trains_exports_from_records_alone(records_3_subjects, tmp_path, monkeypatch, caplog):
    records = copied(records_3_subjects, tmp_path)
    manifest = json.loads((records / "manifest.json").read_text())
    no_database(monkeypatch)
    # A --data_dir that does not exist is refused (a typo must not fall back on old records).
    gone = alone(records, tmp_path, given=("data_dir",), data_dir=str(tmp_path / "gone"))
    with pytest.raises(ToolkitError, match="does not exist .*leave --data_dir out"):
        experiment.run(gone, tmp_path / "run")
    assert not (tmp_path / "run" / "config.json").exists()
    # Default feature settings (λ 25, tvl1) and --db=custom, none given: the records' win.
    config = alone(records, tmp_path, given=("apex_lambda",), apex_lambda=20)
    outcome = experiment.run(config, tmp_path / "run")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    identity = results["config"]["identity"]["records"]
    assert identity["data_fingerprint"] == manifest["data_fingerprint"] is not None
    assert identity["db"] == "synthetic" and identity["params"] == manifest["params"]
    made = results["config"]["experiment"]
    assert made["data"]["db"] == "synthetic" and made["data"]["data_dir"] is None
    # flow dis, λ 20: not the defaults (the full config names every field, detect_width too)
    assert config_lib.FeatureConfig(**made["features"]).to_dict() == manifest["params"]
    assert results["num_samples"] == 9 and set(results["per_fold"]) == {"sub01", "sub02", "sub03"}
    metadata = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert metadata["fingerprint"] == results["fingerprint"] == outcome["results"]["fingerprint"]
    assert not (tmp_path / "run" / "synthetic_db").exists()
    assert not (tmp_path / "run" / "records").exists()


def test_synthetic_records_without_their_database_are_not_rendered_again(records_3_subjects,
                                                                        tmp_path, monkeypatch):
    records = copied(records_3_subjects, tmp_path)
    no_database(monkeypatch)
    config = dataclasses.replace(alone(records, tmp_path, db="synthetic"),
                                 export=ExportConfig(final_model=False))
    results = experiment.run(dataclasses.replace(config, run=dataclasses.replace(
        config.run, folds=("sub01",))), tmp_path / "run")["results"]
    assert results["num_samples"] == 3 and not (tmp_path / "run" / "synthetic_db").exists()


def refused(config, tmp_path, match, error=loso.TrainingError):
    with pytest.raises(error, match=match):
        experiment.run(config, tmp_path / "run")
    assert not (tmp_path / "run" / "config.json").exists()  # refused before any work


def test_records_alone_refusals(records_3_subjects, tmp_path, monkeypatch):
    no_database(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(alone(empty, tmp_path), tmp_path, "--data_dir is required.*--records_dir")
    records = copied(records_3_subjects, tmp_path)
    manifest = (records / "manifest.json").read_text()
    refused(alone(records, tmp_path, given=("classes", "apex_lambda", "flow"),
                  classes=("a", "b"), apex_lambda=10),
            tmp_path, r"--classes=a,b \(the records: negative,positive,surprise\); "
                      r"--apex_lambda=10 \(the records: 20\); --flow=tvl1 \(the records: dis\)")
    refused(alone(records, tmp_path, given=("db",), db="samm"), tmp_path,
            r"--db=samm \(the records: synthetic\)")
    (records / "manifest.json").write_text(manifest[: len(manifest) // 2])
    refused(alone(records, tmp_path), tmp_path, "manifest.json is damaged")
    (records / "manifest.json").write_text(json.dumps({"db": "synthetic", "samples": []}))
    refused(alone(records, tmp_path), tmp_path, "no class_names, params, data_fingerprint")
    older = json.loads(manifest)
    del older["params"]["face_box"]
    (records / "manifest.json").write_text(json.dumps(older))
    refused(alone(records, tmp_path), tmp_path, "older feature stage .no face_box")
    older["params"] = {**json.loads(manifest)["params"], "colour": "yes"}
    (records / "manifest.json").write_text(json.dumps(older))
    refused(alone(records, tmp_path), tmp_path, "parameters are not this version's")
    (records / "manifest.json").write_text(manifest)
    next(records.glob("*.tfrecord")).unlink()
    refused(alone(records, tmp_path), tmp_path, "record shard.* missing")


def test_a_model_the_records_do_not_fit_is_refused_before_any_work(records_3_subjects, tmp_path,
                                                                 monkeypatch):
    no_database(monkeypatch)
    records = copied(records_3_subjects, tmp_path)
    manifest = json.loads((records / "manifest.json").read_text())
    manifest["fields"] = list(data.IMAGE_FIELDS)  # records made before lbptop existed
    for entry in manifest["samples"]:
        entry.pop("lbptop", None)
    (records / "manifest.json").write_text(json.dumps(manifest))
    svm = dataclasses.replace(TINY, model="lbptop_svm")
    refused(alone(records, tmp_path, train=svm), tmp_path, "lbptop_svm reads lbptop",
            models.ModelError)
    sweep_config = alone(records, tmp_path, sweep="model", sweep_values=("tscnn", "lbptop_svm"))
    refused(sweep_config, tmp_path, "lbptop_svm reads lbptop", models.ModelError)
    assert not (tmp_path / "run" / "sweep" / "model-tscnn" / "config.json").exists()
    refused(alone(records, tmp_path, sweep="model", sweep_values=("tscnn", "nets")), tmp_path,
            "unknown model 'nets'", models.ModelError)
    refused(alone(records, tmp_path, sweep="blocks"), tmp_path,
            "--sweep=blocks needs records of other feature parameters")


def test_the_command_takes_database_and_given_flags_apart(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "manifest.json").write_text(json.dumps({"db": "samm"}))
    mine = tmp_path / "mine.cfg"
    mine.write_text("--blocks=2\n")
    argv = cli.with_db_flagfile(["prog", f"--records_dir={tmp_path / 'records'}",
                                 "--apex_lambda=9", "--noaugment", f"--flagfile={mine}"],
                                training=True)
    assert Path(argv[1].split("=", 1)[1]).name == "samm.cfg"  # the records' database
    values = flags.FlagValues()
    cli.define_config_flags(DataConfig, config_lib.FeatureConfig, config_lib.TrainConfig,
                            config_lib.ExportConfig, config_lib.RunConfig, flag_values=values)
    values(argv)
    config = cli.experiment_config(values)
    assert config.run.given == ("apex_lambda", "augment", "blocks", "records_dir")
    assert config.data.classes == ("anger", "contempt", "happiness", "surprise", "others")


def test_the_train_command_refuses_contradicting_flags_in_one_line(records_3_subjects, tmp_path):
    records = copied(records_3_subjects, tmp_path)
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--records_dir={records}",
                          f"--workdir={tmp_path / 'run'}", "--classes=negative,positive"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "error: the records in" in run.stderr
    assert "--classes=negative,positive (the records: negative,positive,surprise)" in run.stderr
    assert not (tmp_path / "run" / "config.json").exists()


def test_sweep_over_models_one_protocol_one_table(records_3_subjects, tmp_path, monkeypatch):
    records = copied(records_3_subjects, tmp_path)
    no_database(monkeypatch)
    config = alone(records, tmp_path, sweep="model", sweep_values=("tscnn", "ststnet"),
                   folds=("sub01",))
    outcome = experiment.run(config, tmp_path / "run")
    rows = outcome["sweep"]
    assert [r["model"] for r in rows] == ["tscnn", "ststnet"]
    runs = [Path(r["workdir"]) for r in rows]
    assert runs == [tmp_path / "run" / "sweep" / "model-tscnn",
                    tmp_path / "run" / "sweep" / "model-ststnet"]
    identities = [json.loads((run / "config.json").read_text())["identity"] for run in runs]
    assert [i["train"].get("model", "tscnn") for i in identities] == ["tscnn", "ststnet"]
    assert rows[0]["fingerprint"] != rows[1]["fingerprint"]
    # Honest: the same test, validation and training subjects for every model.
    splits = [json.loads((run / "folds" / "sub01" / "split.json").read_text()) for run in runs]
    assert [s.pop("fingerprint") for s in splits] == [r["fingerprint"] for r in rows]
    assert splits[0] == splits[1]
    import keras
    inputs = [sorted(models.input_fields(keras.saving.load_model(run / "folds" / "sub01" /
                                                                 "best.keras"))) for run in runs]
    assert inputs == [["apex_gray", "blocks", "flow"], ["flow_raw"]]  # each its own model
    table = json.loads((tmp_path / "run" / "sweep_model.json").read_text())
    assert [r["model"] for r in table["rows"]] == ["tscnn", "ststnet"]
    assert table["protocol"] == "LOSO, 3 classes" and table["db"] == "synthetic"
    assert [r["fingerprint"] for r in table["rows"]] == [r["fingerprint"] for r in rows]
    assert table["rows"][1]["measured"]["num_samples"] == 3
    assert table["rows"][1]["reported"] == []  # no paper reports on the synthetic database
    text = experiment.report(outcome, config, tmp_path / "run")
    assert "Reported (the paper's protocol)" in text and rows[1]["fingerprint"] in text
    markdown = (tmp_path / "run" / "sweep_model.md").read_text()
    assert "| ststnet | LOSO, 3 classes |" in markdown and "none reported on synthetic" in markdown

    def no_training(*args, **kwargs):
        raise AssertionError("a finished point was trained again")
    monkeypatch.setattr(loso, "train_fold", no_training)
    again = experiment.run(config, tmp_path / "run")["sweep"]
    assert [r["fingerprint"] for r in again] == [r["fingerprint"] for r in rows]


def test_the_table_puts_each_papers_figures_and_protocol_beside_the_measured():
    measured = {"accuracy": 0.5, "f1_macro": 0.4, "uf1": 0.45, "uar": 0.55, "num_samples": 442,
                "class_names": ["negative", "positive", "surprise"]}
    rows = [{"model": m, "workdir": f"w/{m}", "fingerprint": f"fp-{m}", **measured}
            for m in ("ststnet", "lbptop_svm")]
    megc = ExperimentConfig(data=DataConfig(db="megc2019"),
                            train=dataclasses.replace(TINY, fold_by="database"))
    text = sweep.format_models(rows, megc)
    assert "leave one database out, 3 classes" in text
    ststnet = next(line for line in text.splitlines() if line.startswith("ststnet"))
    assert "50.00" in ststnet and "fp-ststnet" in ststnet
    assert "UF1 0.7353 UAR 0.7605 (composite, LOSO, 3 classes (MEGC2019); STSTNet" in ststnet
    assert "SMIC" not in ststnet  # only the figures on this database
    casme2 = sweep.format_models([{**rows[0], "model": "tscnn"}],
                                 ExperimentConfig(data=DataConfig(db="casme2")))
    assert "acc 74.05 F1 0.7327 (CASME II, LOSO, 5 classes; TSCNN paper, Table 2)" in casme2
    pending = sweep.format_models([{"model": "htnet", "workdir": "w", "fingerprint": "fp",
                                    "pending": {"sub01": "host 1"}}], megc)
    assert "1 fold(s) in training by other processes" in pending
