"""Issue 27: integrity under damage and faults: records that lie, a full disk, a model that
does not match its metadata, records made by another tool, nonsense flag values."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tscnn_tf import config as config_lib, experiment, loso, manifest as manifest_lib, records
from tscnn_tf.config import DataConfig, ExperimentConfig, ExportConfig, FeatureConfig, RunConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16, learning_rate=0.01)


def copied(records_dir, tmp_path, name="copy") -> Path:
    return Path(shutil.copytree(records_dir, tmp_path / name / "records"))


def alone(records_dir, tmp_path, train=TINY, **run) -> ExperimentConfig:
    """Training from `records_dir` alone (no database)."""
    return ExperimentConfig(
        data=DataConfig(db="custom"), train=train,
        export=ExportConfig(export_dir=str(tmp_path / "export"), parity_samples=8),
        run=RunConfig(records_dir=str(records_dir), num_workers=1, **run))


def rewrite_shard(path: Path, keep) -> None:
    """Rewrite a shard with only the records `keep(index)` selects."""
    kept = [r.numpy() for k, r in enumerate(tf.data.TFRecordDataset(str(path))) if keep(k)]
    records.write_shard(str(path), kept)


def shard_of(records_dir: Path) -> Path:
    return records_dir / json.loads((records_dir / "manifest.json").read_text())["shards"][0]


# 1. Records that hold fewer samples than their manifest lists.

def test_a_shard_holding_fewer_samples_than_listed_is_refused_before_any_fold(
        records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    rewrite_shard(shard, lambda k: k < 6)  # the first 6 of 9 records
    run = tmp_path / "run"
    with pytest.raises(loso.TrainingError, match=rf"{shard.name} holds 6 record\(s\), but its "
                                                 r"manifest lists 9: 3 sample\(s\)"):
        experiment.run(alone(copy, tmp_path), run)
    assert not run.exists()  # nothing written
    # The library entry (`--folds` of a subject whose records are gone) refuses the same way.
    with pytest.raises(loso.TrainingError, match="are not in it"):
        loso.train_loso(copy, run, TINY, folds=("sub03",))
    assert not (run / "config.json").exists()


def test_a_shard_with_records_its_manifest_does_not_list_is_refused(records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    rewrite_shard(shard, lambda k: True)
    extra = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    records.write_shard(str(shard), extra + extra[:1])  # one record twice
    with pytest.raises(loso.TrainingError, match="its manifest does not list"):
        experiment.run(alone(copy, tmp_path), tmp_path / "run")


def test_the_manifest_counts_the_samples_of_each_shard(records_3_subjects):
    manifest = json.loads((records_3_subjects / "manifest.json").read_text())
    assert manifest["format"] == manifest_lib.FORMAT_VERSION
    assert manifest["shard_samples"] == {manifest["shards"][0]: 9}


# 2. A damaged shard.

@pytest.mark.parametrize("damage", ["cut", "overwritten"])
def test_a_damaged_shard_is_one_error_naming_it_before_anything_is_written(
        records_3_subjects, tmp_path, damage):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    content = bytearray(shard.read_bytes())
    if damage == "cut":
        content = content[: len(content) // 2]
    else:
        middle = len(content) // 2
        content[middle:middle + 64] = b"\xff" * 64
    shard.write_bytes(bytes(content))
    run = tmp_path / "run"
    with pytest.raises(loso.TrainingError, match=rf"record shard {shard} is damaged or "
                                                 r"truncated .*extract the records again"):
        experiment.run(alone(copy, tmp_path), run)
    assert not run.exists()


def test_train_command_on_a_cut_shard_prints_one_error_line(records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    shard.write_bytes(shard.read_bytes()[:1000])
    out = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--records_dir={copy}",
                          f"--workdir={tmp_path / 'run'}", "--variant=tiny", "--epochs=1",
                          "--nofinal_model"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 1, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: record shard {shard} is damaged or truncated"), last
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


# 7. Flag values that make no sense.

@pytest.mark.parametrize("section,field,value,message", [
    ("train", "epochs", 0, "--epochs=0: must be at least 1"),
    ("train", "val_fraction", 1.5, "--val_fraction=1.5: must be at least 0 and below 1"),
    ("train", "batch_size", 0, "--batch_size=0: must be at least 1"),
    ("train", "learning_rate", float("nan"), "--learning_rate=nan: must be greater than 0"),
    ("train", "dropout", 1.0, "--dropout=1.0: must be at least 0 and below 1"),
    ("train", "patience", -1, "--patience=-1: must be at least 0"),
    ("export", "parity_samples", 0, "--parity_samples=0: must be at least 1"),
    ("run", "num_workers", 0, "--num_workers=0: must be at least 1"),
    ("data", "synthetic_subjects", 0, "--synthetic_subjects=0: must be at least 1"),
    ("data", "fps", -25.0, "--fps=-25.0: must be greater than 0"),
])
def test_every_number_of_the_config_is_checked_when_it_is_made(section, field, value, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        config_lib.SECTIONS[section](**{field: value})


@pytest.mark.parametrize("flag", ["--epochs=0", "--val_fraction=1.5", "--batch_size=0"])
def test_a_nonsense_flag_value_is_refused_before_anything_is_written(tmp_path, flag):
    out = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--workdir={tmp_path / 'run'}",
                          "--variant=tiny", flag], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {flag}: must be"), out.stderr
    assert not (tmp_path / "run").exists()
