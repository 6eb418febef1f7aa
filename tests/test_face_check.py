"""A face must be a face (issue 17): the frame box is used only where dlib's CNN detector
confirms that the frame is a face; noise, walls, textures, a hand or a crowd give no face."""
import dataclasses
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from pipelines import extract_features as ef
from tscnn_tf import face
from tscnn_tf.databases import synthetic
from tscnn_tf.features import FeatureConfig
from tests.conftest import FAST


@pytest.fixture(scope="module")
def crops():
    """Tight crops (eyebrows at the top edge, as the cropped releases) of 10 synthetic faces."""
    rng = np.random.default_rng(17)
    out = []
    for _ in range(10):
        subject = synthetic.Subject(rng)
        frame = subject.render(np.zeros((synthetic.FRAME_SIZE,) * 2 + (2,), np.float32), 0.0,
                               np.zeros(2), rng)
        out.append(synthetic.tight_face_crop(subject, frame)[0])
    return out


def blind(landmarker):
    """The landmarker with a HOG detector that finds nothing, as on the crops it misses."""
    landmarker._detector = lambda image, upsample: []
    return landmarker


def hand(size=224):
    """A hand: palm and five fingers, skin-grey on a dark background."""
    image = np.full((size, size), 60, np.float32)
    k = size / 224
    cv2.ellipse(image, (round(112 * k), round(150 * k)), (round(55 * k), round(65 * k)), 0, 0, 360,
                170, -1)
    for x, angle, length in ((70, -20, 70), (92, -8, 95), (115, 0, 100), (137, 8, 92), (160, 35, 60)):
        cv2.ellipse(image, (round(x * k), round((120 - length / 2) * k)),
                    (round(11 * k), round(length / 2 * k)), angle, 0, 360, 168, -1)
    image = cv2.GaussianBlur(image, (0, 0), 2) + np.random.default_rng(0).normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def to_crop_shape(image, size=224):
    """A skimage picture as a grey, square, crop-sized frame (where `auto` tries the frame box)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    side = min(image.shape)
    return cv2.resize(image[:side, :side], (size, size), interpolation=cv2.INTER_AREA)


def non_faces(crops) -> dict:
    rng = np.random.default_rng(0)
    wall = 150 + cv2.GaussianBlur(rng.normal(0, 40, (240, 320)), (0, 0), 3) + np.linspace(-20, 20, 320)
    tiles = [cv2.resize(c, (50, 50), interpolation=cv2.INTER_AREA) for c in crops[:8]] * 2
    crowd = np.vstack([np.hstack(tiles[r * 4:(r + 1) * 4]) for r in range(4)])  # 200 x 200
    out = {"noise 320x240": rng.integers(0, 256, (240, 320), dtype=np.uint8),
           "flat": np.full((224, 224), 128, np.uint8),
           "wall": np.clip(wall, 0, 255).astype(np.uint8),
           "hand": hand(), "crowd of 50-px faces": crowd,
           # the cameraman: a person whose face does not fill the frame
           "camera": to_crop_shape(data.camera())}
    for name in ("brick", "grass", "gravel", "coffee", "rocket", "coins", "moon", "chelsea"):
        out[name] = to_crop_shape(getattr(data, name)())
    return out


def test_tight_crops_are_confirmed_by_the_cnn_detector(crops):
    landmarker = blind(face.make_landmarker("dlib", "auto"))
    for crop in crops:
        for frame in (crop, cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA),
                      cv2.resize(crop, (300, 240))):  # small, and wider than the face
            assert landmarker(frame) is not None and landmarker.last_box == "frame"
            assert landmarker.last_refusal is None


def test_non_faces_get_no_frame_box(crops):
    landmarker = blind(face.make_landmarker("dlib", "auto"))
    for name, frame in non_faces(crops).items():
        for face_box in ("auto", "frame"):  # forced or not
            assert landmarker(frame, face_box=face_box) is None, (name, face_box)
            assert landmarker.last_box is None
        assert "CNN" in landmarker.last_refusal and not face.frame_shows_a_face(frame), name


def test_non_faces_and_a_crowd_give_no_face_at_all(crops):
    """With the real detectors: nothing but the cameraman (a real face, not filling the frame)
    gets landmarks. The crowd's 50-px faces are faces to the HOG detector, but too small to
    read a micro-expression from: refused, with the reason."""
    landmarker = face.make_landmarker("dlib", "auto")
    for name, frame in non_faces(crops).items():
        points = landmarker(frame)
        if name == "camera":
            assert points is None or landmarker.last_box in ("detector", "border"), name
        else:
            assert points is None, name
    landmarker(non_faces(crops)["crowd of 50-px faces"])
    assert landmarker.last_faces >= 2 and f"at least {face.MIN_FACE_PX} px" in landmarker.last_refusal


def test_box_iou():
    assert face.box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert face.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert face.box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def write_clip(folder, frames):
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"img{i}.png"), frame)


def test_a_noise_clip_gives_no_record_and_is_counted(tmp_path, crops):
    db = tmp_path / "db"
    rng = np.random.default_rng(3)
    write_clip(db / "s1" / "face", [np.roll(crops[0], i % 2, axis=1) for i in range(4)])
    write_clip(db / "s2" / "noise", [rng.integers(0, 256, (240, 320), dtype=np.uint8)
                                     for _ in range(4)])
    (db / "annotations.csv").write_text("subject,clip,onset,apex,offset,label\n"
                                        "s1,face,0,,3,negative\ns2,noise,0,,3,positive\n")
    manifest = ef.extract_features("custom", db, tmp_path / "out", FAST, num_workers=1,
                                   progress=False)
    assert [e["sample_id"].split("/")[-1] for e in manifest["samples"]] == ["face"]
    [skipped] = [d for d in manifest["skipped"] if d["clip"] == "noise"]
    assert skipped["kind"] == "no face found" and "CNN" in skipped["reason"]
    assert manifest["dropped_per_reason"]["no face found"] == 1
    assert manifest["faces"]["no_face"] == 1 and manifest["faces"]["usable_share"] == 0.5


def test_predict_on_a_noise_video_prints_one_error_and_no_label(tmp_path):
    from tscnn_tf import model as model_lib
    model_lib.build_tscnn(3, variant="tiny").save(tmp_path / "model.keras")
    (tmp_path / "metadata.json").write_text(json.dumps(
        {"class_names": synthetic.CLASS_NAMES,
         "params": dataclasses.asdict(FeatureConfig(flow="dis"))}))
    video = tmp_path / "noise.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(6):
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.predict",
                          f"--model={tmp_path / 'model.keras'}", f"--video={video}"],
                         capture_output=True, text=True)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode != 0 and len(errors) == 1 and "no face" in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "label" not in run.stdout


def test_a_frame_of_several_faces_says_so(tmp_path, crops):
    """Several faces large enough to read: the largest is used, with a warning."""
    from tscnn_tf import features, predict
    tiles = [cv2.resize(c, (100, 100), interpolation=cv2.INTER_AREA) for c in crops[:4]]
    crowd = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    one = cv2.resize(crops[0], (100, 100), interpolation=cv2.INTER_AREA)
    for name, frame in (("crowd", crowd), ("one", one)):
        write_clip(tmp_path / name, [frame] * 3)
    landmarker = face.make_landmarker("dlib", "auto")
    messages = {}
    for name in ("crowd", "one"):
        warnings = []
        _, _, geometry = features.aligned_clip(predict.clip_sample(frames=tmp_path / name), FAST,
                                               landmarker, warnings)
        messages[name] = [w for w in warnings if "faces on the frame" in w]
    assert geometry.faces == 1 and messages["one"] == []
    assert len(messages["crowd"]) == 1 and int(messages["crowd"][0].split()[0]) >= 2
