"""The face-box fallback for tight face crops (issue 12): detector, border, then frame box."""
import cv2
import numpy as np
import pytest

from pipelines import extract_features as ef
from tscnn_tf import face
from tscnn_tf.databases import synthetic
from tests.conftest import FAST


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    out = []
    for k in range(4):
        subject = synthetic.Subject(rng)
        frames, apex, _ = synthetic.render_clip(subject, synthetic.CLASS_NAMES[k % 3], rng, (8, 9))
        out.append(synthetic.tight_face_crop(subject, frames[apex])[0])
    return out


def test_frame_box_agrees_with_the_detector_on_tight_crops(crops):
    landmarker = face.make_landmarker("dlib", "auto")
    for crop in crops:
        detected = landmarker(crop, face_box="detect")
        assert detected is not None and landmarker.last_box == "detector"
        framed = landmarker(crop, face_box="frame")
        eye = np.linalg.norm(detected[39] - detected[42])
        assert np.mean(np.linalg.norm(framed - detected, axis=1)) / eye < 0.04  # bench: ≤ 0.023


def test_auto_falls_back_to_the_frame_box_only_on_face_crops(crops, monkeypatch):
    landmarker = face.make_landmarker("dlib", "auto")
    monkeypatch.setattr(landmarker, "_detector", lambda image, upsample: [])  # a crop it misses
    assert landmarker(crops[0]) is not None and landmarker.last_box == "frame"
    assert landmarker(crops[0], face_box="detect") is None
    wide = np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8)
    flat = np.full((224, 224), 128, np.uint8)
    assert landmarker(wide) is None and landmarker(flat) is None  # not shaped like a face crop


def test_the_face_box_is_recorded_per_sample_with_a_warning(tmp_path, crops, monkeypatch):
    """Clips of tight crops the detector misses are kept through the frame box, and the
    manifest says so per sample and in its counts."""
    db = tmp_path / "db"
    rows = ["subject,clip,onset,apex,offset,label"]
    for k, crop in enumerate(crops[:3]):
        folder = db / f"s{k}" / "c"
        folder.mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(folder / f"img{i}.png"), np.roll(crop, i % 2, axis=1))
        rows.append(f"s{k},c,0,,3,{synthetic.CLASS_NAMES[k]}")
    (db / "annotations.csv").write_text("\n".join(rows) + "\n")
    real = face.DlibLandmarker.__init__

    def blind(self, face_box="auto", detect_width=0):  # a detector that finds nothing
        real(self, face_box, detect_width)
        self._detector = lambda image, upsample: []
    monkeypatch.setattr(face.DlibLandmarker, "__init__", blind)
    manifest = ef.extract_features("custom", db, tmp_path / "out", FAST, num_workers=1,
                                   progress=False)
    assert manifest["num_samples"] == 3
    assert {e["face_box"] for e in manifest["samples"]} == {"frame"}
    assert all(any("frame box" in w for w in e["warnings"]) for e in manifest["samples"])
    assert manifest["faces"] == {"face_box": {"frame": 3}, "no_face": 0, "usable_share": 1.0}
