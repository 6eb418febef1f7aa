"""The feature stage's `lbptop` field: what new records hold, what old ones still give, and a
clip too short for LBP-TOP; the feature-stage library apart from its command."""
import csv
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipelines import extraction
from tscnn_tf import face, features, lbptop, records
from tscnn_tf.databases import read_custom, synthetic
from tests.conftest import FAST
from tests.test_records import make_features

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def long_and_short(tiny_synthetic, tmp_path):
    """A custom database of one synthetic clip whole, and the same frames cut to 7 frames."""
    row = next(csv.DictReader(open(tiny_synthetic / "annotations.csv")))
    db = tmp_path / "db"
    for clip in ("long", "short"):
        shutil.copytree(tiny_synthetic / row["subject"] / row["clip"], db / "A" / clip)
    onset = int(row["onset"])
    with open(db / "annotations.csv", "w", newline="") as f:
        csv.writer(f).writerows([["subject", "clip", "onset", "apex", "offset", "label"],
                                 ["A", "long", onset, row["apex"], row["offset"], row["label"]],
                                 ["A", "short", onset, onset + 3, onset + 6, row["label"]]])
    return db


def parsed(output_dir, fields=()):
    files = sorted(str(p) for p in Path(output_dir).glob("*.tfrecord"))
    return {r["sample_id"].numpy().decode(): r for r in
            tf.data.TFRecordDataset(files).map(lambda s: records.parse(s, 3, fields))}


def test_records_hold_lbptop_of_the_aligned_clip_and_a_short_clip_is_kept_without(
        long_and_short, tmp_path, caplog):
    manifest = extraction.extract_features("custom", long_and_short, tmp_path / "out", FAST,
                                           {"classes": synthetic.CLASS_NAMES}, num_workers=1,
                                           progress=False)
    samples = {e["sample_id"].split("/")[-1]: e for e in manifest["samples"]}
    assert set(samples) == {"long", "short"}  # the short clip is kept for the other models
    assert samples["long"]["lbptop"] is True and samples["short"]["lbptop"] is False
    assert any("no LBP-TOP histograms" in w and "9 frames" in w
               for w in samples["short"]["warnings"])
    assert manifest["lbptop"]["missing"] == [samples["short"]["sample_id"]]
    assert manifest["lbptop"]["size"] == 4425 and manifest["lbptop"]["radius"] == [1, 1, 4]
    assert "lbptop" not in manifest["fields"]  # not every record holds it
    assert set(manifest["fields"]) == set(records.REQUIRED)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["fields"] == \
        manifest["fields"]
    assert "1 record(s) without LBP-TOP" in extraction.report(manifest, tmp_path / "out")

    every = parsed(tmp_path / "out")  # the fields every model but lbptop_svm reads
    assert len(every) == 2 and all("lbptop" not in r for r in every.values())
    long_id = samples["long"]["sample_id"]
    with pytest.raises(tf.errors.InvalidArgumentError):  # never zeros in place of histograms
        parsed(tmp_path / "out", ("lbptop",))
    raw = next(r for p in sorted((tmp_path / "out").glob("*.tfrecord"))
               for r in tf.data.TFRecordDataset(str(p))
               if records.parse(r, 3)["sample_id"].numpy().decode() == long_id)
    got = records.parse(raw, 3, ("lbptop",))["lbptop"].numpy()
    sample = next(s for s in read_custom(long_and_short, classes=synthetic.CLASS_NAMES).samples
                  if s.clip == "long")
    landmarker = face.make_landmarker(FAST.landmarks, FAST.face_box)
    indices, faces, _ = features.aligned_clip(sample, FAST, landmarker, [])
    assert faces[0].shape == (FAST.face_size, FAST.face_size)  # the aligned crop, not 48 px
    assert len(indices) == samples["long"]["offset"] - samples["long"]["onset"] + 1
    np.testing.assert_array_equal(got, lbptop.lbptop_histograms(np.stack(faces)))
    assert got.shape == (4425,) and np.isclose(got.sum(), 25 * 3)

    # Resuming on shards of an older version (entries that say nothing of lbptop): counted.
    index_path = next((tmp_path / "out").glob("*.index.json"))
    index = json.loads(index_path.read_text())
    for entry in index["samples"]:
        del entry["lbptop"]
    index_path.write_text(json.dumps(index))
    with caplog.at_level(logging.WARNING, logger="tscnn_tf"):
        again = extraction.extract_features("custom", long_and_short, tmp_path / "out", FAST,
                                            {"classes": synthetic.CLASS_NAMES}, num_workers=1,
                                            progress=False)
    assert again["lbptop"]["missing"] == sorted(e["sample_id"] for e in manifest["samples"])
    assert "lbptop" not in again["fields"] and "older version" in caplog.text


def test_records_without_lbptop_still_parse():
    old = make_features(n=3)  # the fields records held before the feature stage wrote lbptop
    serialized = records.to_example(old)
    keys = set(tf.train.Example.FromString(serialized).features.feature)
    assert keys == set(records.REQUIRED) and "lbptop" not in keys
    got = records.parse(tf.constant(serialized), 3)
    assert set(got) == set(records.REQUIRED)
    np.testing.assert_array_equal(got["flow_raw"].numpy(), old["flow_raw"])
    assert records.manifest_fields({}) == records.REQUIRED  # a manifest of an older version
    assert records.record_fields([{"sample_id": "x"}]) == list(records.REQUIRED)
    with pytest.raises(ValueError, match="no record field"):
        records.feature_spec(3, ("lbp",))
    new = records.to_example({**old, "lbptop": np.full(4425, 0.5, np.float32)})
    assert records.parse(tf.constant(new), 3, ("lbptop",))["lbptop"].shape == (4425,)


def test_the_library_imports_no_entry_module_and_the_old_path_still_works():
    from pipelines import extract_features as ef
    assert ef.extract_features is extraction.extract_features and ef.dry_run is extraction.dry_run
    code = ("import sys; import pipelines.extraction, pipelines.beam_extract, "
            "tscnn_tf.experiment; print('pipelines.extract_features' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"


def test_a_manifest_without_fields_is_read_from_its_entries():
    """One reading of what records hold, for training and for the experiment's early check."""
    entries = [{"sample_id": "a", "lbptop": True}, {"sample_id": "b", "lbptop": True}]
    assert "lbptop" in records.manifest_fields({"samples": entries})
    assert "lbptop" not in records.manifest_fields({"samples": entries + [{"sample_id": "c"}]})
    assert records.manifest_fields({"fields": ["flow_raw"], "samples": entries}) == ("flow_raw",)
