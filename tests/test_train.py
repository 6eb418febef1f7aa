"""LOSO training: honest splits, resuming, aggregation, bad input (tiny model, few epochs)."""
import json

import pytest

from pipelines import extract_features as ef
from tscnn_tf import train
from tscnn_tf.databases import synthetic
from tests.conftest import FAST

TINY = train.TrainConfig(variant="tiny", epochs=2, patience=5, batch_size=16, learning_rate=0.01)


@pytest.fixture(scope="session")
def records_3_subjects(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    db = synthetic.generate(root / "db", seed=3, num_subjects=3, clips_per_class=1)
    ef.extract_features("synthetic", db, root / "records", FAST,
                        {"seed": 3, "num_subjects": 3, "clips_per_class": 1}, num_workers=2,
                        progress=False)
    return root / "records"


def test_validation_subjects_are_training_subjects_only():
    subjects = [f"s{i:02d}" for i in range(26)]
    for test in subjects:
        train_subjects = [s for s in subjects if s != test]
        val = train.validation_subjects(train_subjects, 0.2, 0, test)
        assert test not in val and set(val) <= set(train_subjects)
        assert len(val) == 5 and len(set(train_subjects) - set(val)) == 20
        assert val == train.validation_subjects(train_subjects, 0.2, 0, test)  # deterministic


def test_folds_never_share_a_subject(records_3_subjects, tmp_path):
    results = train.train_loso(records_3_subjects, tmp_path, TINY, expected_params=FAST.to_dict())
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


def test_resume_after_an_interrupted_fold(records_3_subjects, tmp_path, monkeypatch):
    config = train.TrainConfig(**{**TINY.__dict__, "epochs": 3})
    real = train.make_checkpoint_callback

    def interrupt_after_epoch_2(fold_dir, patience, state):
        callback = real(fold_dir, patience, state)
        original = callback.on_epoch_end
        def on_epoch_end(epoch, logs=None):
            original(epoch, logs)
            if state["epoch"] == 2:
                raise KeyboardInterrupt
        callback.on_epoch_end = on_epoch_end
        return callback

    monkeypatch.setattr(train, "make_checkpoint_callback", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    fold = tmp_path / "folds" / "sub02"
    assert json.loads((fold / "state.json").read_text())["epoch"] == 2
    assert not (fold / "predictions.csv").exists()
    monkeypatch.setattr(train, "make_checkpoint_callback", real)

    epochs_run = []
    def counting(fold_dir, patience, state):
        callback = real(fold_dir, patience, state)
        original = callback.on_epoch_end
        callback.on_epoch_end = lambda epoch, logs=None: (epochs_run.append(epoch), original(epoch, logs))
        return callback
    monkeypatch.setattr(train, "make_checkpoint_callback", counting)
    results = train.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    assert epochs_run == [2]  # only the third epoch was left
    assert (fold / "predictions.csv").exists() and list(results["per_fold"]) == ["sub02"]
    epochs_run.clear()
    train.train_loso(records_3_subjects, tmp_path, config, folds=["sub02"])
    assert epochs_run == []  # a finished fold is not redone


def test_records_with_other_parameters_are_refused(records_3_subjects, tmp_path):
    other = type(FAST)(flow="dis", apex_lambda=20, blocks=2).to_dict()
    with pytest.raises(train.TrainingError, match="records made with"):
        train.train_loso(records_3_subjects, tmp_path, TINY, expected_params=other)


def test_too_few_subjects_is_a_clear_error(tiny_synthetic, tmp_path):
    records = tmp_path / "records"
    ef.extract_features("synthetic", tiny_synthetic, records, FAST,
                        {"seed": 1, "num_subjects": 2, "clips_per_class": 1}, num_workers=1,
                        progress=False)
    with pytest.raises(train.TrainingError, match="at least 3 subjects"):
        train.train_loso(records, tmp_path / "run", TINY)


def test_missing_records_or_unknown_fold(records_3_subjects, tmp_path):
    with pytest.raises(FileNotFoundError, match="feature stage"):
        train.train_loso(tmp_path / "nothing", tmp_path / "run", TINY)
    with pytest.raises(train.TrainingError, match="names no subject"):
        train.train_loso(records_3_subjects, tmp_path / "run", TINY, folds=["nobody"])


def test_fold_class_warnings():
    manifest = {"class_names": ["a", "b", "c"], "samples": [
        {"subject": "x", "label_name": "a"}, {"subject": "x", "label_name": "b"},
        {"subject": "y", "label_name": "c"}]}
    warnings = train.fold_class_warnings(manifest, ["x"], "y")
    assert any("no training sample" in w and "'c'" in w for w in warnings)
    assert any("test subject y has no sample" in w for w in warnings)
