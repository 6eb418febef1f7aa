"""The Beam feature stage writes the same records as the local one."""
import json

import pytest
import tensorflow as tf

from pipelines import extract_features as ef
from tests.conftest import FAST

beam_extract = pytest.importorskip("pipelines.beam_extract")
pytest.importorskip("apache_beam")

OPTIONS = {"seed": 1, "num_subjects": 2, "clips_per_class": 1}


def records_by_id(records_dir, blocks):
    from tscnn_tf import records
    out = {}
    for path in sorted(records_dir.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)):
            out[records.parse(raw, blocks)["sample_id"].numpy().decode()] = raw.numpy()
    return out


def test_beam_records_equal_local_records(tiny_synthetic, tmp_path, monkeypatch):
    from tscnn_tf import features
    real = features.sample_features

    def crashing_on_one_clip(sample, config, landmarker):  # any error, not only the expected ones
        if (sample.subject, sample.clip) == ("sub02", "EP01"):
            raise RuntimeError("decoder crashed")
        return real(sample, config, landmarker)
    monkeypatch.setattr(features, "sample_features", crashing_on_one_clip)
    local = ef.extract_features("synthetic", tiny_synthetic, tmp_path / "local", FAST, OPTIONS,
                                num_workers=1, progress=False)
    beam_extract.run("synthetic", tiny_synthetic, tmp_path / "beam", FAST, OPTIONS,
                            ["--runner=DirectRunner"])
    expected, got = records_by_id(tmp_path / "local", 3), records_by_id(tmp_path / "beam", 3)
    assert len(expected) == 5 and set(got) == set(expected)
    for sample_id, raw in expected.items():
        assert got[sample_id] == raw, sample_id  # byte for byte
    manifest = json.loads((tmp_path / "beam" / "manifest.json").read_text())
    assert manifest["shards"] and all(s.endswith(".tfrecord") for s in manifest["shards"])
    assert not list((tmp_path / "beam").glob("beam-*"))
    for key in ("num_samples", "per_class", "per_subject", "params", "class_names",
                "apex_spotting", "skipped", "dropped_per_reason", "faces", "data_fingerprint",
                "fields", "lbptop"):
        assert manifest[key] == local[key], key
    assert "lbptop" in manifest["fields"] and manifest["lbptop"]["missing"] == []
    assert manifest["skipped"] == [{"subject": "sub02", "clip": "EP01",
                                    "reason": "RuntimeError: decoder crashed",
                                    "kind": "unexpected error (RuntimeError)"}]
    from tscnn_tf import data
    assert data.load_manifest(tmp_path / "beam")["num_samples"] == 5  # what train reads
    with pytest.raises(ef.ExtractionError, match="already holds records"):
        beam_extract.run("synthetic", tiny_synthetic, tmp_path / "beam", FAST, OPTIONS)
    other = type(FAST)(flow="dis", apex_lambda=20, blocks=2)  # as the local runner refuses it
    with pytest.raises(ef.ExtractionError, match="--overwrite"):
        beam_extract.run("synthetic", tiny_synthetic, tmp_path / "beam", other, OPTIONS)
