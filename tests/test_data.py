"""Augmentation: consistent across the three inputs, flow vectors transformed correctly."""
import numpy as np
import pytest
import tensorflow as tf

from tscnn_tf import data, features, records
from tests.test_records import make_features


def test_ten_distinct_variants():
    assert len(data.AUGMENTATIONS) == 10 and len(set(data.AUGMENTATIONS)) == 10
    assert (False, 0) in data.AUGMENTATIONS


def test_flip_negates_u_and_mirrors_the_field():
    field = np.zeros((48, 48, 4), np.float32)
    field[:, :24, 0] = 2.0   # left half moves right
    field[..., 1] = 0.5      # everything moves down
    field[..., 2] = 1.0
    out = data.transform_flow(tf.constant(field), data.point_matrix(True, 0)).numpy()
    np.testing.assert_allclose(out[:, 24:, 0], -2.0)  # now the right half, moving left
    np.testing.assert_allclose(out[:, :24, 0], 0.0)
    np.testing.assert_allclose(out[..., 1], 0.5)      # v unchanged by a horizontal flip
    np.testing.assert_allclose(out[..., 2], -1.0)


@pytest.mark.parametrize("angle", [10, -10, 90])
def test_rotation_rotates_vectors_with_the_content(angle):
    """A uniform rightward field turned with the image points along the turned x axis."""
    field = np.zeros((48, 48, 4), np.float32)
    field[..., 0] = 1.0
    out = data.transform_flow(tf.constant(field), data.point_matrix(False, angle)).numpy()
    a = np.radians(angle)
    # counter-clockwise on screen (y down): +x turns towards -y
    np.testing.assert_allclose(out[24, 24, :2], [np.cos(a), -np.sin(a)], atol=1e-5)


def test_rotation_moves_a_point_and_its_vector_consistently():
    """Image content and flow vectors move together: a marked pixel and its vector."""
    image = np.zeros((48, 48, 1), np.float32)
    image[10, 34] = 1.0  # x = 34, y = 10: upper right
    M = data.point_matrix(False, 90)
    out = data.warp(tf.constant(image), M).numpy()[..., 0]
    y, x = np.unravel_index(out.argmax(), out.shape)
    c = 23.5
    expected = M.numpy() @ np.array([34 - c, 10 - c]) + c
    np.testing.assert_allclose([x, y], expected, atol=0.51)


def test_blocks_are_reassembled_before_the_transform():
    n = 3
    face = np.arange(144 * 144, dtype=np.float32).reshape(144, 144) / (144 * 144)
    blocks = features.block_stack((face * 255).astype(np.uint8), n)
    back = data.blocks_to_face(tf.constant(blocks), n).numpy()[..., 0]
    np.testing.assert_allclose(back, (face * 255).astype(np.uint8) / 255, atol=1e-6)
    np.testing.assert_array_equal(data.face_to_blocks(tf.constant(back[..., None]), n).numpy(), blocks)
    flipped = data.augment({"apex_gray": tf.zeros((48, 48, 1)), "blocks": tf.constant(blocks),
                            "flow_raw": tf.zeros((48, 48, 4))}, True, 0, n)["blocks"].numpy()
    # the top-left block of the flipped face is the mirrored top-right block of the original
    np.testing.assert_allclose(flipped[..., 0], blocks[:, ::-1, 2], atol=1e-6)


def test_augmented_flow_is_renormalised():
    ex = {k: tf.constant(v) for k, v in make_features(n=2).items()}
    out = data.augment(ex, True, 10, 2)
    flow = out["flow"].numpy()
    np.testing.assert_allclose(flow.min(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(flow.max(axis=(0, 1)), 1, atol=1e-6)
    same = data.augment(ex, False, 0, 2)  # the original variant keeps the stored inputs
    np.testing.assert_allclose(same["apex_gray"].numpy(), ex["apex_gray"].numpy(), atol=1e-6)


def test_dataset_filters_subjects_and_expands_x10(tmp_path):
    items = [make_features(n=2, seed=s) for s in range(4)]
    for i, item in enumerate(items):
        item["subject"] = f"s{i % 2}"
        item["label"] = i % 2
    path = str(tmp_path / "x.tfrecord")
    records.write_shard(path, [records.to_example(f) for f in items])
    train = data.make_dataset([path], 2, ("L", "S", "T"), subjects={"s0"}, training=True,
                              batch_size=7)
    batches = list(train)
    assert sum(int(b[1].shape[0]) for b in batches) == 20  # 2 samples x 10 variants
    inputs, _ = batches[0]
    assert set(inputs) == {"apex_gray", "blocks", "flow"} and inputs["blocks"].shape[1:] == (48, 48, 4)
    test = data.make_dataset([path], 2, ("T",), subjects={"s1"}, batch_size=8)
    (inputs, labels), = list(test)
    assert set(inputs) == {"flow"} and labels.numpy().tolist() == [1, 1]
