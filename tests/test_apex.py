"""Apex spotting: uniform LBP histograms and eq. 3."""
import numpy as np
import pytest

from tscnn_tf import apex, face, features
from tscnn_tf.databases import synthetic


def test_histograms_have_36_blocks_of_10_bins():
    image = np.random.default_rng(0).integers(0, 255, (144, 144)).astype(np.uint8)
    h = apex.block_histograms(image)
    assert h.shape == (36, 10)
    np.testing.assert_allclose(h.sum(axis=1), 1.0)


def test_histograms_follow_the_blocks():
    """A textured top-left block and flat elsewhere: only block 0 has non-flat patterns."""
    image = np.full((144, 144), 128, np.uint8)
    image[:24, :24] = np.random.default_rng(0).integers(0, 255, (24, 24))
    h = apex.block_histograms(image)
    flat = h[21]  # an interior block (border pixels see out-of-image neighbours)
    assert flat[8] == pytest.approx(1.0)  # all neighbours >= centre: uniform pattern P
    assert h[0, 8] < 0.5
    np.testing.assert_allclose(h[14], flat)


def test_feature_difference_by_hand():
    h1 = np.zeros((36, 10))
    h2 = np.zeros((36, 10))
    h1[:, 0] = h2[:, 0] = 1.0  # identical blocks: d = 0
    # block 0: h1 = (0.5, 0.5), h2 = (1, 0) -> (1/10) [0.25/1.5 + 0.25/0.5] = 1/15
    h1[0, :2], h2[0, :2] = (0.5, 0.5), (1.0, 0.0)
    # block 1: h1 = (0, 1), h2 = (1, 0) -> (1/10) [1/1 + 1/1] = 0.2
    h1[1, :2], h2[1, :2] = (0.0, 1.0), (1.0, 0.0)
    d = apex.block_distances(h1, h2)
    assert d[0] == pytest.approx(1 / 15) and d[1] == pytest.approx(0.2)
    assert np.all(d[2:] == 0)
    assert apex.feature_difference(h1, h2, 1) == pytest.approx(0.2)
    assert apex.feature_difference(h1, h2, 2) == pytest.approx((0.2 + 1 / 15) / 2)
    assert apex.feature_difference(h1, h2, 4) == pytest.approx((0.2 + 1 / 15) / 4)
    with pytest.raises(ValueError):
        apex.feature_difference(h1, h2, 37)


def test_spot_apex_uses_the_mean_of_onset_and_offset():
    rng = np.random.default_rng(0)
    base = rng.dirichlet(np.ones(10), size=36)
    other = rng.dirichlet(np.ones(10), size=36)
    strength = np.array([0, 0.1, 0.3, 0.9, 0.4, 0.1, 0])
    hists = np.stack([(1 - s) * base + s * other for s in strength])
    position, fd = apex.spot_apex(hists, lam=10)
    assert position == 3
    assert fd.shape == (7,) and fd[0] == pytest.approx(0)


def test_spotting_on_synthetic_clips():
    landmarker = face.make_landmarker("dlib")
    rng = np.random.default_rng(7)
    subject = synthetic.Subject(rng)
    errors = []
    for label in synthetic.CLASS_NAMES * 2:
        frames, true_apex, _ = synthetic.render_clip(subject, label, rng)
        faces, _ = features.align_clip(frames, landmarker, features.FeatureConfig(), [])
        hists = np.stack([apex.block_histograms(f) for f in faces])
        errors.append(abs(apex.spot_apex(hists, lam=20)[0] - true_apex))
    assert np.mean(np.array(errors) <= 2) >= 5 / 6, errors


@pytest.mark.parametrize("points, radius", [(8, 3), (8, 1), (16, 2), (8, 2.5)])
def test_fast_lbp_equals_scikit_image(points, radius):
    from skimage import color, data
    from skimage.feature import local_binary_pattern
    rng = np.random.default_rng(points)
    images = [rng.integers(0, 256, (144, 144)).astype(np.uint8),
              (color.rgb2gray(data.astronaut()) * 255).astype(np.uint8)[100:340, 150:390],
              np.full((30, 41), 7, np.uint8),                      # flat: every neighbour equal
              rng.integers(0, 3, (37, 29)).astype(np.uint8)]        # many ties
    for image in images:
        expected = local_binary_pattern(image, points, radius, method="uniform").astype(np.int64)
        np.testing.assert_array_equal(apex.uniform_lbp(image, points, radius), expected)
    np.testing.assert_array_equal(apex.block_histograms(images[1], implementation="numpy"),
                                  apex.block_histograms(images[1], implementation="skimage"))
