"""The three inputs: apex grey image, block stack and flow."""
import numpy as np
import pytest

from tscnn_tf import features


@pytest.mark.parametrize("n", [2, 3, 4])
def test_block_stack_shape_and_row_major_order(n):
    # Each block of the n x n grid filled with its own row-major number.
    size = 48 * n
    face = np.zeros((size, size), np.uint8)
    for r in range(n):
        for c in range(n):
            face[r * 48:(r + 1) * 48, c * 48:(c + 1) * 48] = 10 * (r * n + c) + 5
    stack = features.block_stack(face, n)
    assert stack.shape == (48, 48, n * n) and stack.dtype == np.float32
    for k in range(n * n):
        np.testing.assert_allclose(stack[..., k], (10 * k + 5) / 255, rtol=1e-6)


def test_block_stack_from_a_face_crop_of_another_size():
    face = np.tile(np.linspace(0, 255, 144, dtype=np.float32), (144, 1)).astype(np.uint8)
    stack = features.block_stack(face, 2)
    assert stack.shape == (48, 48, 4)
    # left blocks are darker than right blocks
    assert stack[..., 0].mean() < stack[..., 1].mean()
    np.testing.assert_allclose(stack[..., 0], stack[..., 2], atol=1e-6)


def test_apex_gray_shape_and_range():
    face = np.random.default_rng(0).integers(0, 256, (144, 144)).astype(np.uint8)
    g = features.apex_gray(face)
    assert g.shape == (48, 48, 1) and g.dtype == np.float32
    # An area-average of 3 x 3 pixels, scaled by 1/255.
    expected = face.reshape(48, 3, 48, 3).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(g[..., 0], expected, atol=1 / 255)


def test_flow_features_channels():
    rng = np.random.default_rng(0)
    onset = rng.integers(0, 255, (144, 144)).astype(np.uint8)
    flow, raw = features.flow_features(onset, onset, onset, "dis")
    assert flow.shape == raw.shape == (48, 48, 4)
    # No motion: every channel is flat, and a flat channel becomes 0 (eq. 5), never NaN.
    np.testing.assert_allclose(raw, 0, atol=1e-3)
    assert np.array_equal(flow, np.zeros_like(flow))
    # A moving image: each channel that varies spans exactly [0, 1] after min-max.
    moved = np.roll(onset, 2, axis=1)
    flow, raw = features.flow_features(onset, moved, onset, "dis")
    for c in range(4):
        if np.ptp(raw[..., c]) > 0:
            assert flow[..., c].min() == 0 and flow[..., c].max() == 1


def test_config_validation_and_fingerprint():
    with pytest.raises(ValueError):
        features.FeatureConfig(blocks=5)
    with pytest.raises(ValueError):
        features.FeatureConfig(apex_lambda=0)
    with pytest.raises(ValueError):
        features.FeatureConfig(flow="magic")
    assert features.FeatureConfig().fingerprint() == features.FeatureConfig().fingerprint()
    assert features.FeatureConfig().fingerprint() != features.FeatureConfig(blocks=2).fingerprint()
