"""One feature spec for writer and reader: a round trip."""
import numpy as np
import tensorflow as tf

from tscnn_tf import records


def make_features(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "apex_gray": rng.random((48, 48, 1), np.float32),
        "blocks": rng.random((48, 48, n * n), np.float32),
        "flow": rng.random((48, 48, 4), np.float32),
        "flow_raw": rng.normal(size=(48, 48, 4)).astype(np.float32),
        "label": 2, "label_name": "surprise", "subject": "sub07", "sample_id": "custom/sub07/EP01",
        "db": "custom", "onset": 11, "apex_given": -1, "apex_spotted": 19, "apex_used": 19,
        "offset": 40, "params": "abc123",
    }


def test_round_trip(tmp_path):
    items = [make_features(n=2, seed=s) for s in range(3)]
    path = str(tmp_path / "x.tfrecord")
    records.write_shard(path, [records.to_example(f) for f in items])
    parsed = list(tf.data.TFRecordDataset(path).map(lambda s: records.parse(s, blocks=2)))
    assert len(parsed) == 3
    for original, got in zip(items, parsed):
        for key in ("apex_gray", "blocks", "flow", "flow_raw"):
            np.testing.assert_array_equal(got[key].numpy(), original[key])
        for key in ("label", "onset", "apex_given", "apex_spotted", "apex_used", "offset"):
            assert int(got[key]) == original[key]
        for key in ("label_name", "subject", "sample_id", "db", "params"):
            assert got[key].numpy().decode() == original[key]
    assert parsed[0]["blocks"].shape == (48, 48, 4)


def test_spec_shapes_follow_n():
    assert records.feature_spec(4)["blocks"].shape == (48, 48, 16)
    assert records.feature_spec(3)["flow"].shape == (48, 48, 4)
