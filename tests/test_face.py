"""Face stage: eq. 1-2 alignment, the 6x6 grid and the crop."""
import cv2
import numpy as np
import pytest

from tscnn_tf import face
from tscnn_tf.databases.synthetic import source_face


def test_rotation_matrix_levels_the_eye_line():
    p1, p2 = np.array([100.0, 120.0]), np.array([150.0, 95.0])  # eye line tilted by ~27°
    R = face.rotation_matrix(p1, p2)
    np.testing.assert_allclose(R @ R.T, np.eye(2), atol=1e-12)  # a pure rotation (eq. 1)
    a1, a2 = face.align_points(np.stack([p1, p2]), R, (p1 + p2) / 2)
    assert a1[1] == pytest.approx(a2[1], abs=1e-9)
    assert np.linalg.norm(a2 - a1) == pytest.approx(np.linalg.norm(p2 - p1))


def test_literal_row_vector_reading_would_double_the_tilt():
    """Documents the reading of eq. 2 we take: (x, y)·R levels, (x, y)·R^T doubles the angle."""
    p1, p2 = np.array([0.0, 0.0]), np.array([10.0, 3.0])
    R = face.rotation_matrix(p1, p2)
    tilt = np.degrees(np.arctan2(3, 10))
    d = (p2 - p1) @ R.T
    assert np.degrees(np.arctan2(d[1], d[0])) == pytest.approx(2 * tilt)


def rotate(image, angle):
    h, w = image.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, M, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("angle", [-12, 12])
def test_alignment_of_a_rotated_face(angle):
    gray = source_face()[0].astype(np.uint8)
    tilted = rotate(gray, angle)
    points = face.make_landmarker("dlib")(tilted)
    (x1, y1), (x2, y2) = points[list(face.INNER_EYE_CORNERS)]
    assert abs(np.degrees(np.arctan2(y2 - y1, x2 - x1))) > 8  # the input really is tilted
    geometry = face.face_geometry(points, face_size=144)
    crop_points = geometry.to_crop(points)
    e1, e2 = crop_points[list(face.INNER_EYE_CORNERS)]
    assert abs(e1[1] - e2[1]) < 1e-6  # eye line horizontal after alignment
    # The grid of Fig. 3 by construction: eyes on the 2nd/4th vertical and 2nd horizontal line,
    # the nasal spine on the 4th horizontal line.
    np.testing.assert_allclose([e1[0], e2[0], e1[1]], [48, 96, 48], atol=1e-6)
    assert crop_points[face.NASAL_SPINE][1] == pytest.approx(96)
    crop = face.warp_to_face(tilted, geometry)
    assert crop.shape == (144, 144) and crop.dtype == np.uint8


def test_landmarks_again_on_the_aligned_frame_are_level():
    gray = rotate(source_face()[0].astype(np.uint8), 15)
    landmarker = face.make_landmarker("dlib")
    geometry = face.face_geometry(landmarker(gray), face_size=144)
    M = np.hstack([geometry.R.T, (geometry.center - geometry.R.T @ geometry.center)[:, None]])
    aligned = cv2.warpAffine(gray, M, gray.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    (x1, y1), (x2, y2) = landmarker(aligned)[list(face.INNER_EYE_CORNERS)]
    assert abs(np.degrees(np.arctan2(y2 - y1, x2 - x1))) < 2.5  # detector noise, not 15°


def test_no_face_returns_none():
    noise = np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)
    assert face.make_landmarker("dlib")(noise) is None


def test_implausible_landmarks_raise():
    points = np.zeros((68, 2))
    points[39], points[42], points[33] = (10, 10), (11, 10), (10.5, 10.5)
    with pytest.raises(face.FaceNotFound):
        face.face_geometry(points, 144)


def test_face_alignment_backend_fails_clearly_without_its_package_or_weights():
    try:
        import face_alignment  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="dlib"):
            face.make_landmarker("face_alignment")
    else:  # installed: with no network its weights cannot be fetched
        with pytest.raises(RuntimeError, match="dlib"):
            face.make_landmarker("face_alignment")


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown landmark backend"):
        face.make_landmarker("nope")
