"""Shared fixtures: a tiny synthetic database, rendered once per test session."""
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tscnn_tf.databases import synthetic
from tscnn_tf.features import FeatureConfig

# Fast settings: DIS flow, default everything else.
FAST = FeatureConfig(flow="dis", apex_lambda=20)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """2 subjects x 3 classes x 1 clip in the custom on-disk format."""
    path = tmp_path_factory.mktemp("synthetic") / "db"
    synthetic.generate(path, seed=1, num_subjects=2, clips_per_class=1)
    return path


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    caplog.set_level(logging.WARNING, logger="tscnn_tf")


@pytest.fixture(scope="session")
def records_3_subjects(tmp_path_factory):
    """Records of 3 subjects x 3 classes x 1 clip (the smallest database LOSO accepts)."""
    from pipelines import extract_features as ef
    root = tmp_path_factory.mktemp("train")
    db = synthetic.generate(root / "db", seed=3, num_subjects=3, clips_per_class=1)
    ef.extract_features("synthetic", db, root / "records", FAST,
                        {"seed": 3, "num_subjects": 3, "clips_per_class": 1}, num_workers=2,
                        progress=False)
    return root / "records"


# The exported model's training: 20 epochs, so that the int8 and dynamic-range TFLite models
# agree with it on >= 90 % of the held-out samples (test_export.py measures that).
EXPORT_TRAINING = dict(variant="tiny", epochs=20, patience=50, batch_size=16, learning_rate=0.01)


@pytest.fixture(scope="session")
def exported_tiny(records_3_subjects, tmp_path_factory):
    """The final tiny TSCNN trained on records_3_subjects (2 subjects train, 1 validates) and
    exported to every format: (export folder, its metadata). Built once for test_export.py and
    test_edge_flow.py (FAST is the edge flow's settings)."""
    from tscnn_tf import export, loso
    workdir = tmp_path_factory.mktemp("run")
    (workdir / "records").symlink_to(records_3_subjects)
    loso.train_final(workdir / "records", workdir / "final", loso.TrainConfig(**EXPORT_TRAINING))
    out = workdir / "export"
    return out, export.export_run_model(workdir / "final" / "best.keras", out)
