"""LOSO training: honest splits, resuming, aggregation, bad input (tiny model, few epochs)."""
import json
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import extract_features as ef
from tscnn_tf import loso, records, sweep
from tscnn_tf.databases import synthetic
from tests.conftest import FAST
from tscnn_tf.config import ExperimentConfig, RunConfig

TINY = loso.TrainConfig(variant="tiny", epochs=2, patience=5, batch_size=16, learning_rate=0.01)
# For the tests that are not about the x10 augmentation (a second faster a training).
PLAIN = loso.TrainConfig(**{**TINY.__dict__, "augment": False})


def test_validation_subjects_are_training_subjects_only():
    subjects = [f"s{i:02d}" for i in range(26)]
    for test in subjects:
        train_subjects = [s for s in subjects if s != test]
        val = loso.validation_subjects(train_subjects, 0.2, 0, test)
        assert test not in val and set(val) <= set(train_subjects)
        assert len(val) == 5 and len(set(train_subjects) - set(val)) == 20
        assert val == loso.validation_subjects(train_subjects, 0.2, 0, test)  # deterministic


def test_folds_never_share_a_subject(records_3_subjects, tmp_path):
    results = loso.train_loso(records_3_subjects, tmp_path, TINY, expected_params=FAST.to_dict())
    for fold_dir in (tmp_path / "folds").iterdir():
        split = json.loads((fold_dir / "split.json").read_text())
        sets = [set(split[k]) for k in ("train", "validation", "test")]
        assert all(s for s in sets)
        assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
        assert split["test"] == [fold_dir.name]
    assert set(results["per_fold"]) == {"sub01", "sub02", "sub03"}
    assert results["num_samples"] == 9 and len(results["confusion_matrix"]) == 3
    assert set(results) >= {"accuracy", "f1_macro", "uf1", "uar", "class_names",
                            "confusion_matrix", "per_fold"}
    header = (tmp_path / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["sample_id", "subject", "fold", "label", "pred"]
    assert header[5:] == [f"p_{c}" for c in synthetic.CLASS_NAMES]
    assert list((tmp_path / "folds" / "sub01" / "logs").iterdir())  # TensorBoard logs
    png = cv2.imread(str(tmp_path / "confusion_matrix.png"))
    assert png is not None and png.shape[0] > 100


def test_resume_after_an_interrupted_fold(records_3_subjects, tmp_path, monkeypatch):
    config = loso.TrainConfig(**{**PLAIN.__dict__, "epochs": 3})
    real = loso.make_checkpoint_callback

    def interrupt_after_epoch_2(fold_dir, patience, state, *args):
        callback = real(fold_dir, patience, state, *args)
        original = callback.on_epoch_end
        def on_epoch_end(epoch, logs=None):
            original(epoch, logs)
            if state["epoch"] == 2:
                raise KeyboardInterrupt
        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(loso, "make_checkpoint_callback", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        loso.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    fold = tmp_path / "folds" / "sub02"
    assert json.loads((fold / "state.json").read_text())["epoch"] == 2
    assert not (fold / "predictions.csv").exists()
    monkeypatch.setattr(loso, "make_checkpoint_callback", real)

    epochs_run = []
    def counting(fold_dir, patience, state, *args):
        callback = real(fold_dir, patience, state, *args)
        original = callback.on_epoch_end
        callback.on_epoch_end = lambda epoch, logs=None: (epochs_run.append(epoch), original(epoch, logs))
        return callback
    monkeypatch.setattr(loso, "make_checkpoint_callback", counting)
    results = loso.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    assert epochs_run == [2]  # only the third epoch was left
    assert (fold / "predictions.csv").exists() and list(results["per_fold"]) == ["sub02"]
    epochs_run.clear()
    loso.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    assert epochs_run == []  # a finished fold is not redone
    # The resumed fold trained what an uninterrupted one trains: same weights, same predictions.
    monkeypatch.setattr(loso, "make_checkpoint_callback", real)
    loso.train_loso(records_3_subjects, tmp_path / "whole", config, folds=["sub02"])
    for name in ("last.keras", "best.keras"):
        resumed = keras.saving.load_model(fold / name, compile=False).get_weights()
        whole = keras.saving.load_model(tmp_path / "whole" / "folds" / "sub02" / name,
                                        compile=False).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(resumed, whole)), name
    assert ((fold / "predictions.csv").read_text()
            == (tmp_path / "whole" / "folds" / "sub02" / "predictions.csv").read_text())


def test_a_resumed_fold_with_augmentation_and_dropout_trains_the_uninterrupted_weights(
        tmp_path):
    """The x10 augmentation reshuffles every epoch and OFF-ApexNet's dropout draws masks: a
    fold stopped after epoch 2 and resumed ends with the weights of one never stopped."""
    from tscnn_tf import data, device_check
    records = device_check.write_records(tmp_path / "records", 3, {"a": 4, "b": 4})
    manifest, files = data.load_manifest(records), data.record_files(records)
    config = loso.TrainConfig(model="offapexnet", variant="tiny", epochs=4, patience=9,
                              batch_size=8, learning_rate=0.05)
    plan = loso.plan_model(config, manifest)
    fit, val = ["sub01", "sub03"], ["sub02"]
    loso.fit_model(tmp_path / "whole", files, manifest, fit, val, config, plan)
    loso.fit_model(tmp_path / "resumed", files, manifest, fit, val,
                   loso.TrainConfig(**{**config.__dict__, "epochs": 2}), plan)
    loso.fit_model(tmp_path / "resumed", files, manifest, fit, val, config, plan)
    assert json.loads((tmp_path / "resumed" / "state.json").read_text())["epoch"] == 4
    whole = keras.saving.load_model(tmp_path / "whole" / "last.keras").get_weights()
    resumed = keras.saving.load_model(tmp_path / "resumed" / "last.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(whole, resumed))


def test_records_with_other_parameters_are_refused(records_3_subjects, tmp_path):
    other = type(FAST)(flow="dis", apex_lambda=20, blocks=2).to_dict()
    with pytest.raises(loso.TrainingError, match="records made with"):
        loso.train_loso(records_3_subjects, tmp_path, TINY, expected_params=other)


def test_too_few_subjects_is_a_clear_error(tiny_synthetic, tmp_path):
    records = tmp_path / "records"
    ef.extract_features("synthetic", tiny_synthetic, records, FAST,
                        {"seed": 1, "num_subjects": 2, "clips_per_class": 1}, num_workers=1,
                        progress=False)
    with pytest.raises(loso.TrainingError, match="at least 3 subjects"):
        loso.train_loso(records, tmp_path / "run", TINY)


def test_missing_records_or_unknown_fold(records_3_subjects, tmp_path):
    with pytest.raises(FileNotFoundError, match="feature stage"):
        loso.train_loso(tmp_path / "nothing", tmp_path / "run", TINY)
    with pytest.raises(loso.TrainingError, match=r"--folds \['nobody'\] names no subject"):
        loso.train_loso(records_3_subjects, tmp_path / "run", TINY, folds=("nobody",))
    assert not (tmp_path / "run" / loso.RUN_FILE).exists()  # the workdir is not made the run's


def test_fold_class_warnings():
    manifest = {"class_names": ["a", "b", "c"], "samples": [
        {"subject": "x", "label_name": "a"}, {"subject": "x", "label_name": "b"},
        {"subject": "y", "label_name": "c"}]}
    warnings = loso.fold_class_warnings(manifest, ["x"], "y")
    assert any("no training sample" in w and "'c'" in w for w in warnings)
    assert any("test subject y has no sample" in w for w in warnings)


def without_class(records_dir, out_dir, gaps: dict[int, set[str]]):
    """A copy of the records lacking, for each label of `gaps`, its samples of the subjects
    `gaps[label]` (manifest included)."""
    out_dir.mkdir()
    manifest = json.loads((records_dir / "manifest.json").read_text())

    def dropped(label, subject):
        return subject in gaps.get(int(label), ())
    kept = []
    for path in sorted(records_dir.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)):
            e = records.parse(raw, manifest["params"]["blocks"])
            if not dropped(e["label"], e["subject"].numpy().decode()):
                kept.append(raw.numpy())
    records.write_shard(str(out_dir / "x-00000.tfrecord"), kept)
    manifest["samples"] = [{**e, "shard": "x-00000.tfrecord"} for e in manifest["samples"]
                           if not dropped(e["label"], e["subject"])]
    manifest["shards"] = ["x-00000.tfrecord"]  # the manifest lists what the shard holds
    manifest["shard_samples"] = {"x-00000.tfrecord": len(kept)}
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return out_dir


def test_class_gaps_in_a_fold_are_reported(records_3_subjects, tmp_path):
    """One fold with both gaps: its training subjects lack surprise, its test subject positive."""
    gapped = without_class(records_3_subjects, tmp_path / "records",
                           {2: {"sub02", "sub03"}, 1: {"sub01"}})
    results = loso.train_loso(gapped, tmp_path / "run", PLAIN, folds=["sub01"])
    text = " ".join(results["warnings"])
    assert "['surprise'] have no training sample when testing on sub01" in text
    assert "test subject sub01 has no sample of ['positive']" in text
    # Pooled metrics stay defined, over the classes present.
    assert results["num_samples"] == 2 and np.isfinite([results["uf1"], results["uar"]]).all()
    split = json.loads((tmp_path / "run" / "folds" / "sub01" / "split.json").read_text())
    assert any("cannot predict" in w for w in split["warnings"])


def test_final_model_splits_subjects(records_3_subjects, tmp_path):
    loso.train_final(records_3_subjects, tmp_path / "final", PLAIN)
    split = json.loads((tmp_path / "final" / "split.json").read_text())
    assert sorted(split["train"] + split["validation"]) == ["sub01", "sub02", "sub03"]
    assert not set(split["train"]) & set(split["validation"]) and split["test"] == []
    assert (tmp_path / "final" / "best.keras").is_file()


def test_sweep_prints_a_table_per_point(records_3_subjects, tmp_path):
    made = []
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "records").symlink_to(records_3_subjects)
    experiment = ExperimentConfig(features=FAST, train=PLAIN, run=RunConfig(folds=("sub01",)))
    rows = sweep.run_sweep("streams", workdir, experiment, lambda c, p: made.append(p),
                           streams=["S", "T"])
    assert [r["streams"] for r in rows] == ["S", "T"] and made == [workdir / "records"] * 2
    table = sweep.format_table(rows, "synthetic")
    assert "Net structure" in table and "3x3" in table
    assert len(table.splitlines()) == 4
    points = sweep.sweep_points("blocks", FAST)
    assert len(points) == 12 and {c.blocks for c, _ in points} == {2, 3, 4}
    dirs = {sweep.records_dir_for(workdir, c, FAST) for c, _ in points}
    assert dirs == {workdir / "records-n2-lambda20", workdir / "records", workdir / "records-n4-lambda20"}
    with pytest.raises(ValueError, match="--sweep"):
        sweep.sweep_points("depth", FAST)


def test_missing_data_dir_is_a_clear_error(tmp_path):
    from tscnn_tf import experiment
    from tscnn_tf.config import DataConfig
    custom = ExperimentConfig(data=DataConfig(db="custom"))
    with pytest.raises(loso.TrainingError, match="--data_dir is required"):
        experiment.ensure_records(custom, tmp_path, tmp_path / "records")
    nowhere = ExperimentConfig(data=DataConfig(db="custom", data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(loso.TrainingError, match="does not exist$"):  # no records: no hint
        experiment.ensure_records(nowhere, tmp_path, tmp_path / "records")
    cli = subprocess.run([sys.executable, "-m", "tscnn_tf.train", "--db=custom",
                          f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True)
    assert cli.returncode == 1 and "error: --data_dir is required" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert not (tmp_path / "run").exists()  # the refused command leaves no empty --workdir


@pytest.mark.parametrize("records", ["empty folder", "no folder"])
def test_a_records_dir_without_records_is_refused_not_filled(tmp_path, records):
    """`--records_dir` of no records and no database named: refused before anything is made
    (it used to render the synthetic database and make its records there, in silence)."""
    folder = tmp_path / "shared" / "records"
    if records == "empty folder":
        folder.mkdir(parents=True)
    cli = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--records_dir={folder}",
                          f"--workdir={tmp_path / 'runs' / 'mine'}"], capture_output=True,
                         text=True)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr, cli.stderr[-2000:]
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    what = "holds no records (no manifest.json)" if records == "empty folder" else "is not there"
    assert len(errors) == 1 and f"--records_dir={folder} {what}" in errors[0]
    assert not (tmp_path / "runs").exists()
    assert (list(folder.iterdir()) == []) if records == "empty folder" else not folder.exists()


def test_unusable_pretrained_s_stream_is_a_clear_error(records_3_subjects, tmp_path):
    config = loso.TrainConfig(**{**TINY.__dict__, "pretrained_s": str(tmp_path / "none.keras")})
    with pytest.raises(loso.TrainingError, match="--pretrained_s"):
        loso.train_final(records_3_subjects, tmp_path / "final", config)
