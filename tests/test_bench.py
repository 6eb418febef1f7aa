"""The benchmark's arithmetic: FLOPs from the layer shapes, and the known-displacement flow check."""
import numpy as np

from tscnn_tf import bench, flow, model as model_lib


def test_training_flops_from_table_1_shapes():
    m = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    per_stream = (20 * 20 * 64 * 9 * 64) * 2 + 9 * 9 * 128 * 9 * 64 + 9 * 9 * 128 * 9 * 128 \
        + 2048 * 1024                                       # conv2-5 and FC1
    conv1 = 44 * 44 * 64 * 25 * (1 + 9 + 4)                 # S, L (n=3), T
    forward = 3 * per_stream + conv1 + 3072 * 5
    assert bench.training_flops(m) == 6 * forward           # 2 FLOPs per MAC, x3 for training


def test_known_displacement_is_recovered_by_the_flow_backends():
    rng = np.random.default_rng(0)
    face = (255 * rng.random((96, 96))).astype(np.float32)
    import cv2
    face = cv2.GaussianBlur(face, (0, 0), 2).astype(np.uint8)
    moved, truth = bench.known_displacement(face, amplitude=1.5)
    assert 1.0 < np.abs(truth).max() <= 1.5
    estimate = flow.compute_flow(face, moved, "dis")
    inner = (slice(12, -12), slice(12, -12))
    error = np.linalg.norm(estimate[inner] - truth[inner], axis=-1).mean()
    assert error < 0.5 * np.linalg.norm(truth[inner], axis=-1).mean()
