"""`--detect_width` (issue 19): the face detector runs on the frame scaled down to that width,
the 68 landmarks are fitted on the full frame; at its default (0, the frame's own) no record,
model or run fingerprint changes."""
import dlib
import numpy as np
import pytest

from tscnn_tf import bench, face, predict, spot
from tscnn_tf.config import ExperimentConfig, FeatureConfig
from tscnn_tf.databases.synthetic import source_face
from tscnn_tf.experiment import records_config

# FeatureConfig().fingerprint() and FeatureConfig(flow="dis").fingerprint() before the field
# existed: the `params` of every record and model made so far.
OLD_DEFAULT, OLD_DIS = "101ff4513b07", "709388d155a8"


def test_the_default_keeps_the_fingerprint_of_records_made_before_it():
    assert FeatureConfig(detect_width=0).fingerprint() == OLD_DEFAULT
    assert FeatureConfig().fingerprint() == OLD_DEFAULT
    assert FeatureConfig(flow="dis", detect_width=0).fingerprint() == OLD_DIS
    assert "detect_width" not in FeatureConfig(detect_width=0).to_dict()
    assert ExperimentConfig(features=FeatureConfig(detect_width=0)).identity() == \
        ExperimentConfig().identity()


def test_a_detect_width_is_in_the_fingerprint_and_reads_back():
    config = FeatureConfig(detect_width=320)
    assert config.to_dict()["detect_width"] == 320
    assert config.fingerprint() not in (OLD_DEFAULT, FeatureConfig(detect_width=400).fingerprint())
    assert FeatureConfig(**config.to_dict()) == config
    with pytest.raises(ValueError, match="detect_width"):
        FeatureConfig(detect_width=50)
    with pytest.raises(ValueError, match="dlib"):  # not silently ignored
        FeatureConfig(detect_width=320, landmarks="face_alignment")


def manifest(params: dict) -> dict:
    return {"db": "synthetic", "class_names": ["a", "b"], "params": params, "samples": []}


def test_records_made_before_the_field_train_as_they_are_and_new_ones_keep_theirs():
    old = FeatureConfig().to_dict()  # what a manifest written before the field holds
    assert records_config(ExperimentConfig(), manifest(old), "records").features == \
        FeatureConfig(detect_width=0)
    made = FeatureConfig(detect_width=320).to_dict()
    assert records_config(ExperimentConfig(), manifest(made), "records").features.detect_width \
        == 320


@pytest.fixture(scope="module")
def landmarkers():
    return {w: face.make_landmarker("dlib", "detect", w) for w in (0, 256, 1024)}


def detector_widths(monkeypatch, landmarker) -> list[int]:
    """The widths of the images the landmarker's face detector is given."""
    widths, real = [], landmarker._detector
    monkeypatch.setattr(landmarker, "_detector",
                        lambda image, up: widths.append(image.shape[1]) or real(image, up))
    return widths


def test_a_box_found_at_the_reduced_width_fits_the_full_frame(landmarkers, monkeypatch):
    gray = source_face()[0].astype(np.uint8)  # 512 px wide
    full = landmarkers[0](gray)
    widths = detector_widths(monkeypatch, landmarkers[256])
    points = landmarkers[256](gray)
    assert widths == [256] and landmarkers[256].last_box == "detector"
    assert bench.landmark_shift(points, full) < 0.03  # measured 0.004; 1 px is 0.005 here
    assert points[:, 0].max() > 256  # in the full frame's pixels, not the detector's
    narrow = detector_widths(monkeypatch, landmarkers[1024])  # never scaled up
    np.testing.assert_allclose(landmarkers[1024](gray), full)
    assert narrow == [512]


@pytest.mark.parametrize("side, found", [(45, True), (35, False)])
def test_min_face_px_is_counted_in_full_frame_pixels(landmarkers, monkeypatch, side, found):
    """A 45-px face at half width is 89 px in the frame: read (in the detector's pixels it would
    be under 80); a 35-px one is 69 px: refused, in the frame's pixels."""
    gray = source_face()[0].astype(np.uint8)
    landmarker = landmarkers[256]
    monkeypatch.setattr(landmarker, "_detector",
                        lambda image, up: [dlib.rectangle(60, 50, 60 + side - 1, 50 + side - 1)])
    points = landmarker(gray)
    assert (points is not None) == found
    if not found:
        assert "69 px wide" in landmarker.last_refusal
        assert f"at least {face.MIN_FACE_PX} px" in landmarker.last_refusal


class StubModel:
    """What predict and spot read of an exported model: its metadata and inputs."""

    def __init__(self, params: dict):
        self.metadata = {"class_names": ["a", "b"], "params": params}
        self.class_names = ["a", "b"]
        self.input_shapes = {"apex_gray": (48, 48, 1), "blocks": (48, 48, 9),
                             "flow": (48, 48, 4)}

    def __call__(self, features):
        return np.array([0.25, 0.75])

    def require(self, fields, what):
        pass


def test_predict_and_spot_take_the_detect_width_from_the_model(tmp_path, monkeypatch):
    made, real = [], face.make_landmarker

    def recording(*args):
        landmarker = real(*args)
        made.append(detector_widths(monkeypatch, landmarker))
        return landmarker
    monkeypatch.setattr(face, "make_landmarker", recording)
    sample = bench.edge_clip(tmp_path / "clip.avi", shape=(9, 640, 480))
    model = StubModel(FeatureConfig(flow="dis", detect_width=320).to_dict())
    out = predict.predict_clip(model, predict.clip_sample(video=sample.video))
    assert out["result"]["label"] == "b"
    assert len(made) == 1 and made[0] and set(made[0]) == {320}  # never the 640-px frame
    assert callable(spot.make_recogniser(model))  # spot --model reads the same metadata
