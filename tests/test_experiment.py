"""One experiment definition (issue 11): the main command's whole path as one library call,
every figure tied to the settings and data that made it, flagfiles as package data."""
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from tscnn_tf import cli, config as config_lib, experiment, loso
from tscnn_tf.config import DataConfig, ExperimentConfig, ExportConfig, RunConfig
from tests.conftest import FAST

ROOT = Path(__file__).resolve().parent.parent
TINY = loso.TrainConfig(variant="tiny", epochs=2, patience=5, batch_size=16, learning_rate=0.01)


def tiny_experiment(tmp_path, **data) -> ExperimentConfig:
    """The main command's configuration at test size: 3 synthetic subjects x 3 classes."""
    return ExperimentConfig(
        data=DataConfig(synthetic_seed=3, synthetic_subjects=3, synthetic_clips_per_class=1,
                        **data),
        features=FAST, train=TINY,
        export=ExportConfig(export_dir=str(tmp_path / "export"), parity_samples=16),
        run=RunConfig(num_workers=1))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("experiment")
    config = tiny_experiment(tmp_path)
    return tmp_path, config, experiment.run(config, tmp_path / "run")


def test_the_main_command_path_records_loso_final_export(first_run):
    tmp_path, config, outcome = first_run
    workdir = tmp_path / "run"
    results = json.loads((workdir / "results.json").read_text())
    run = json.loads((workdir / "config.json").read_text())
    assert results["num_samples"] == 9 and set(results["per_fold"]) == {"sub01", "sub02", "sub03"}
    assert results["fingerprint"] == run["fingerprint"] == outcome["results"]["fingerprint"]
    assert results["config"]["experiment"] == json.loads(json.dumps(config.to_dict()))
    assert run["identity"]["train"]["streams"] == "L+S+T"
    assert (workdir / "predictions.csv").is_file() and (workdir / "final" / "best.keras").is_file()
    metadata = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert metadata["fingerprint"] == run["fingerprint"]
    assert metadata["config"]["experiment"]["data"]["synthetic_subjects"] == 3
    manifest = json.loads((workdir / "records" / "manifest.json").read_text())
    assert manifest["config"]["features"] == dataclasses.asdict(FAST)
    assert manifest["data_fingerprint"] == run["identity"]["records"]["data_fingerprint"]
    report = experiment.report(outcome, config, workdir)
    assert "LOSO  accuracy" in report and run["fingerprint"] in report


def one_fold(config: ExperimentConfig) -> ExperimentConfig:
    """`config` training fold sub01 only and no final model (for the tests of what a workdir
    accepts: the refusals come before any fold; first_run trains every fold)."""
    return dataclasses.replace(config, export=ExportConfig(final_model=False),
                               run=dataclasses.replace(config.run, folds=("sub01",)))


def test_other_streams_in_the_same_workdir_refuse_or_are_really_theirs(first_run):
    tmp_path, config, _ = first_run
    other = one_fold(dataclasses.replace(config, train=dataclasses.replace(TINY, streams="T")))
    with pytest.raises(loso.TrainingError, match=r"train.streams: L\+S\+T -> T.*--overwrite"):
        experiment.run(other, tmp_path / "run")
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    assert first["config"]["identity"]["train"]["streams"] == "L+S+T"  # untouched
    replaced = dataclasses.replace(other, run=dataclasses.replace(other.run, overwrite=True))
    results = experiment.run(replaced, tmp_path / "run")["results"]
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["config"]["identity"]["train"]["streams"] == "T"
    assert on_disk["fingerprint"] == results["fingerprint"] != first["fingerprint"]
    assert not (tmp_path / "run" / "final").exists()  # the first run's final model went too


def test_other_data_in_the_same_workdir_is_refused(first_run, tmp_path):
    _, config, _ = first_run
    workdir = tmp_path / "run"
    experiment.run(one_fold(config), workdir)
    bigger = one_fold(dataclasses.replace(config, data=dataclasses.replace(
        config.data, synthetic_subjects=4)))
    with pytest.raises(loso.TrainingError, match="records.data_fingerprint"):
        experiment.run(bigger, workdir)
    smaller = dataclasses.replace(bigger, data=dataclasses.replace(config.data,
                                                                   synthetic_subjects=2))
    with pytest.raises(loso.TrainingError, match="records.data_fingerprint"):
        experiment.run(smaller, workdir)
    manifest = json.loads((workdir / "records" / "manifest.json").read_text())
    assert manifest["num_samples"] == 9  # refused before the records were touched
    experiment.run(one_fold(config), workdir)


def test_results_of_unknown_provenance_are_not_resumed(records_3_subjects, tmp_path):
    (tmp_path / "folds" / "sub01").mkdir(parents=True)
    (tmp_path / "folds" / "sub01" / "predictions.csv").write_text("made by someone else")
    with pytest.raises(loso.TrainingError, match="unknown settings"):
        loso.train_loso(records_3_subjects, tmp_path, TINY)


def test_flag_defaults_come_from_the_config_and_seed_means_training():
    values = flags.FlagValues()
    cli.define_config_flags(DataConfig, config_lib.FeatureConfig, config_lib.TrainConfig,
                            config_lib.ExportConfig, config_lib.RunConfig, flag_values=values)
    values(["prog", "--seed=7", "--classes=a,b", "--streams=T"])
    config = cli.experiment_config(values)
    assert config.train.seed == 7 and config.data.synthetic_seed == 0
    assert config.data.classes == ("a", "b") and config.train.streams == "T"
    assert config.features == config_lib.FeatureConfig()  # every default is the config's
    assert config.train == dataclasses.replace(config_lib.TrainConfig(), seed=7, streams="T")


def test_user_flagfiles_add_to_the_databases(tmp_path):
    mine = tmp_path / "mine.cfg"
    mine.write_text("--db=smic\n--apex_lambda=9\n")
    argv = cli.with_db_flagfile(["prog", f"--flagfile={mine}"])
    assert argv[1].endswith("smic.cfg") and argv[2] == f"--flagfile={mine}"  # db's first
    assert cli.applied_flagfiles() == (argv[1].split("=", 1)[1], str(mine))
    training = cli.with_db_flagfile(["prog", "--db", "synthetic"], training=True)
    assert [Path(a).name for a in training[1:3]] == ["synthetic.cfg", "synthetic.train.cfg"]


def test_a_missing_flagfile_of_a_known_database_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "flagfile_dir", lambda: tmp_path)
    with pytest.raises(cli.FlagfileError, match="samm.cfg"):
        cli.with_db_flagfile(["prog", "--db=samm"])


def test_keras_logs_one_line_per_epoch_when_not_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    assert loso.keras_verbosity(io.StringIO()) == 2 and loso.keras_verbosity(Terminal()) == 1


def test_feature_workers_never_import_tensorflow(tiny_synthetic):
    """The worker entry points (features.init_worker, process_sample) run in spawned processes
    that must stay free of TensorFlow (memory, start-up, fork safety)."""
    code = ("import sys; from tscnn_tf.databases import read_custom; "
            "from tscnn_tf.features import FeatureConfig, init_worker, process_sample; "
            f"db = read_custom({str(tiny_synthetic)!r}); "
            "init_worker(FeatureConfig(flow='dis'), True); "
            "_, features, failure = process_sample(db.samples[0]); "
            "assert features is not None, failure; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf_keras')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


def test_a_built_wheel_finds_its_flagfiles_from_any_folder(tmp_path):
    """pip install . (not editable), run from a scratch folder: flags/synthetic.cfg applies."""
    dist, target, scratch = tmp_path / "dist", tmp_path / "site", tmp_path / "scratch"
    scratch.mkdir()
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("tscnn_tf-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                              "--target", str(target), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    summary = scratch / "summary.json"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract_features", "--dry_run",
                          "--data_dir=db", "--synthetic_subjects=1",
                          f"--summary_json={summary}"], capture_output=True, text=True,
                         cwd=scratch, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(summary.read_text())
    assert result["flagfiles"] and Path(result["flagfiles"][0]).is_relative_to(target)
    assert result["config"]["features"]["apex_lambda"] == 20  # flags/synthetic.cfg, not 25
    assert result["config"]["data"]["synthetic_clips_per_class"] == 2
    assert result["num_samples"] == 6  # 1 subject (the flag wins over the flagfile's 6) x 3 x 2
