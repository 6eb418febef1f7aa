"""The model against Table 1, stream combinations, and a .keras round trip."""
import keras
import numpy as np
import pytest

from tscnn_tf import model as model_lib


def test_full_model_matches_table_1():
    m = model_lib.build_tscnn(num_classes=5, streams="L+S+T", blocks=3, variant="full")
    assert [i.name for i in m.inputs] == ["apex_gray", "blocks", "flow"]
    assert m.output.shape == (None, 5)
    for stream, channels in (("S", 1), ("L", 9), ("T", 4)):
        convs = [m.get_layer(f"{stream}_conv{i}_conv") for i in range(1, 6)]
        assert [c.filters for c in convs] == [64, 64, 64, 128, 128]
        assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 4
        assert all(c.strides == (1, 1) for c in convs)
        assert [c.padding for c in convs] == ["valid"] + ["same"] * 4
        assert convs[0].kernel.shape[2] == channels
        pool = m.get_layer(f"{stream}_maxpool1")
        assert pool.pool_size == (5, 5) and pool.strides == (2, 2)
        for name in ("avgpool1", "avgpool2"):
            pool = m.get_layer(f"{stream}_{name}")
            assert isinstance(pool, keras.layers.AveragePooling2D)
            assert pool.pool_size == (3, 3) and pool.strides == (2, 2)
        assert m.get_layer(f"{stream}_fc1").units == 1024
        assert m.get_layer(f"{stream}_avgpool2").output.shape[1:] == (4, 4, 128)
        # PReLU with one α per channel after every hidden layer
        assert m.get_layer(f"{stream}_conv1_prelu").alpha.shape == (1, 1, 64)
        assert m.get_layer(f"{stream}_fc1_prelu").alpha.shape == (1024,)
        assert isinstance(m.get_layer(f"{stream}_fc1_dropout"), keras.layers.Dropout)
    assert m.get_layer("fc2_concat").output.shape == (None, 3072)
    convs = [l for l in m.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 15


@pytest.mark.parametrize("streams", ["S", "L", "T", "L+S", "L+T", "S+T", "L+S+T"])
def test_every_stream_combination(streams):
    m = model_lib.build_tscnn(3, streams=streams, blocks=2, variant="tiny")
    names = {model_lib.STREAM_INPUTS[s] for s in streams.split("+")}
    assert {i.name for i in m.inputs} == names
    inputs = {i.name: np.zeros((2, *i.shape[1:]), np.float32) for i in m.inputs}
    probs = m.predict(inputs, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_bad_streams():
    with pytest.raises(ValueError):
        model_lib.parse_streams("S+X")
    assert model_lib.parse_streams("T+s+L") == ("L", "S", "T")


def test_keras_round_trip_gives_identical_outputs(tmp_path):
    m = model_lib.build_tscnn(4, variant="tiny", blocks=3)
    rng = np.random.default_rng(0)
    inputs = {i.name: rng.random((3, *i.shape[1:]), np.float32) for i in m.inputs}
    path = tmp_path / "m.keras"
    m.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), m.predict(inputs, verbose=0))
