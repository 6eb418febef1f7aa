"""Optical flow backends and eq. 5 normalisation."""
import cv2
import numpy as np
import pytest

from tscnn_tf import flow


def test_minmax_per_channel():
    x = np.stack([np.arange(16.0).reshape(4, 4), -np.arange(16.0).reshape(4, 4) * 3], axis=-1)
    y = flow.minmax_normalize(x)
    np.testing.assert_allclose(y.min(axis=(0, 1)), 0)
    np.testing.assert_allclose(y.max(axis=(0, 1)), 1)
    np.testing.assert_allclose(y[..., 0], np.arange(16.0).reshape(4, 4) / 15, rtol=1e-6)


def test_flat_channel_gives_zeros_not_nan():
    x = np.zeros((48, 48, 4), np.float32)
    x[..., 1] = 2.5  # flat, non-zero
    x[5, 5, 2] = 1.0  # one non-flat channel
    y = flow.minmax_normalize(x)
    assert np.isfinite(y).all()
    assert np.all(y[..., [0, 1, 3]] == 0)
    assert y[5, 5, 2] == 1.0


def textured_pair(shift=(1.5, -1.0), size=96):
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.uniform(0, 255, (size * 2, size * 2)).astype(np.float32), (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    M = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    moved = cv2.warpAffine(big, M, big.shape[::-1], flags=cv2.INTER_CUBIC)
    crop = slice(size // 2, size // 2 + size)
    return big[crop, crop].astype(np.uint8), moved[crop, crop].astype(np.uint8)


@pytest.mark.parametrize("method", flow.FLOW_METHODS)
def test_backends_agree_on_direction_and_size(method):
    prev, nxt = textured_pair(shift=(1.5, -1.0))
    f = flow.compute_flow(prev, nxt, method)
    assert f.shape == (96, 96, 2) and f.dtype == np.float32
    inner = f[16:-16, 16:-16]
    np.testing.assert_allclose(inner.reshape(-1, 2).mean(axis=0), [1.5, -1.0], atol=0.3)


def test_resize_flow_rescales_vectors():
    f = np.zeros((144, 144, 2), np.float32)
    f[..., 0], f[..., 1] = 3.0, -1.5
    small = flow.resize_flow(f, 48)
    assert small.shape == (48, 48, 2)
    np.testing.assert_allclose(small[..., 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(small[..., 1], -0.5, rtol=1e-6)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown flow method"):
        flow.compute_flow(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), "magic")


def test_field_normalisation_keeps_the_direction_of_motion():
    """eq. 5 over u and v of one field together: a flow of (2, 1) px everywhere but one patch
    of (4, 2) keeps u:v = 2:1 after `field`, while `channel` maps u and v alike."""
    raw = np.zeros((48, 48, 4), np.float32)
    raw[..., 0], raw[..., 1] = 2.0, 1.0
    raw[:8, :8, 0], raw[:8, :8, 1] = 4.0, 2.0
    raw[..., 2:] = -raw[..., :2]
    field = flow.minmax_normalize(raw, "field")
    # over u and v of the first field together: min 1 (v), max 4 (u of the patch)
    np.testing.assert_allclose(field[0, 0, :2], [(4 - 1) / 3, (2 - 1) / 3])
    np.testing.assert_allclose(field[20, 20, :2], [(2 - 1) / 3, 0.0])
    channel = flow.minmax_normalize(raw, "channel")
    np.testing.assert_allclose(channel[0, 0, :2], [1.0, 1.0])  # u and v both at their maxima
    with pytest.raises(ValueError, match="flow_norm"):
        flow.minmax_normalize(raw, "global")


@pytest.mark.parametrize("mode", ["channel", "field"])
def test_tensorflow_and_numpy_normalisations_agree(mode):
    import tensorflow as tf
    from tscnn_tf import data
    raw = np.random.default_rng(1).normal(size=(48, 48, 4)).astype(np.float32)
    raw[..., 3] = 0.5  # a flat channel
    np.testing.assert_allclose(data.minmax_normalize(tf.constant(raw), mode).numpy(),
                               flow.minmax_normalize(raw, mode), atol=1e-6)


def test_the_users_flow_names_keep_their_flow():
    """tvl1, dis, farneback are in users' record fingerprints: each is still the same backend
    with the same options (OpenCV defaults for TV-L1, DIS medium)."""
    prev, nxt = textured_pair(size=64)
    np.testing.assert_array_equal(
        flow.compute_flow(prev, nxt, "tvl1"),
        cv2.optflow.DualTVL1OpticalFlow_create().calc(prev, nxt, None))
    np.testing.assert_array_equal(
        flow.compute_flow(prev, nxt, "dis"),
        cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(prev, nxt, None))
    assert {"tvl1", "tvl1_skimage", "dis", "farneback"} <= set(flow.FLOW_METHODS)


def test_a_sized_setting_computes_small_and_returns_the_input_size_and_units(monkeypatch):
    """tvl1_72 on a 144-px pair runs TV-L1 at 72 px; its flow comes back at 144 px, in 144-px
    pixels (twice the 72-px vectors)."""
    seen = []

    def fake(prev, nxt, method):
        seen.append(prev.shape)
        out = np.zeros((*prev.shape, 2), np.float32)
        out[..., 0], out[..., 1] = 1.0, -0.5
        return out
    monkeypatch.setattr(flow, "_backend_flow", fake)
    big = np.zeros((144, 144), np.uint8)
    f = flow.compute_flow(big, big, "tvl1_72")
    assert seen == [(72, 72)] and f.shape == (144, 144, 2)
    np.testing.assert_allclose(f[..., 0], 2.0)
    np.testing.assert_allclose(f[..., 1], -1.0)
    small = np.zeros((60, 60), np.uint8)  # never enlarged
    assert flow.compute_flow(small, small, "tvl1_72").shape == (60, 60, 2) and seen[-1] == (60, 60)


def test_settings_of_one_backend_are_really_different():
    prev, nxt = textured_pair(size=96)
    flows = {m: flow.compute_flow(prev, nxt, m) for m in ("tvl1", "tvl1_w3", "tvl1_e05",
                                                          "dis", "dis_fast")}
    assert not np.array_equal(flows["tvl1"], flows["tvl1_w3"])
    assert not np.array_equal(flows["tvl1"], flows["tvl1_e05"])
    assert not np.array_equal(flows["dis"], flows["dis_fast"])
