"""Export to every format with measured parity, prediction on new clips, and their bad inputs."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import tscnn_tf
from tscnn_tf import bench, export, predict
from tscnn_tf.artifacts import ArtifactError
from tscnn_tf.databases import list_frames



@pytest.fixture(scope="module")
def exported(exported_tiny):
    """A tiny model trained on 2 of 3 subjects (the third held out) and exported (conftest)."""
    return exported_tiny


def random_inputs(n=4, blocks=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"apex_gray": rng.random((n, 48, 48, 1), np.float32),
            "blocks": rng.random((n, 48, 48, blocks * blocks), np.float32),
            "flow": rng.random((n, 48, 48, 4), np.float32)}


class ExportTest(tf.test.TestCase):
    """The artifacts agree with the Keras model (keras-hub style round trips)."""

    @pytest.fixture(autouse=True)
    def _exported(self, exported):
        self.out, self.metadata = exported

    def test_every_artifact_and_metadata(self):
        for name in ("model.keras", "saved_model/saved_model.pb", "model.tflite",
                     "model_dynamic.tflite", "model_int8.tflite", "metadata.json"):
            self.assertTrue((self.out / name).exists(), name)
        meta = json.loads((self.out / "metadata.json").read_text())
        self.assertEqual(meta["class_names"], ["negative", "positive", "surprise"])
        self.assertEqual(meta["params"]["blocks"], 3)
        for key in ("apex_lambda", "flow"):
            self.assertIn(key, meta["params"])
        self.assertEqual(set(meta["inputs"]), {"apex_gray", "blocks", "flow"})
        self.assertIn("tensorflow", meta["versions"])
        self.assertIn("held-out subjects", meta["parity"]["samples"])
        self.assertGreaterEqual(meta["parity"]["num_samples"], 10)

    def test_measured_parity(self):
        parity = self.metadata["parity"]
        self.assertLess(parity["saved_model"]["max_abs_diff"], 1e-5)
        self.assertLess(parity["tflite_float32"]["max_abs_diff"], 1e-5)
        self.assertGreaterEqual(parity["tflite_dynamic"]["top1_agreement"], 0.9)
        self.assertGreaterEqual(parity["tflite_int8"]["top1_agreement"], 0.9)

    def test_round_trips_give_the_same_outputs(self):
        x = random_inputs()
        expected = tscnn_tf.load_model(self.out).predict(x, verbose=0)
        self.assertAllClose(expected, export.run_saved_model(self.out / "saved_model", x), atol=1e-6)
        self.assertAllClose(expected, export.run_tflite(self.out / "model.tflite", x), atol=1e-5)
        served = tf.saved_model.load(str(self.out / "saved_model")).signatures["serving_default"]
        result = served(**{k: tf.constant(v) for k, v in x.items()})
        self.assertAllEqual(result["class_index"], np.argmax(expected, axis=-1))


def test_int8_runs_in_xnnpack_with_parity(exported):
    """Issue 19: as int8, PReLU, average pooling and softmax have no XNNPACK kernel and ran on
    TFLite's own (PReLU's a reference one) between 8 XNNPACK partitions, slower than float32.
    They stay in float; convolutions and dense layers stay int8, all in XNNPACK as in float32."""
    out, metadata = exported
    int8, float32 = (bench.tflite_ops(out / name) for name in ("model_int8.tflite", "model.tflite"))
    assert int8["ops"]["CONV_2D int8"] == {"count": 15, "xnnpack": 15}
    assert int8["ops"]["FULLY_CONNECTED int8"] == {"count": 4, "xnnpack": 4}
    assert int8["ops"]["PRELU float32"] == {"count": 18, "xnnpack": 18}
    assert int8["ops"]["AVERAGE_POOL_2D float32"] == {"count": 6, "xnnpack": 6}
    assert int8["ops"]["SOFTMAX float32"] == {"count": 1, "xnnpack": 1}
    outside = {name for name, e in int8["ops"].items() if e["xnnpack"] < e["count"]}
    # the class index's argmax and Flatten's shape ops, outside in float32 too
    assert outside <= {"ARG_MAX int8", "SHAPE int8", "STRIDED_SLICE int32", "PACK int32",
                       "RESHAPE int8"}
    assert {"SHAPE float32", "PACK int32"} <= {n for n, e in float32["ops"].items()
                                               if e["xnnpack"] == 0}
    assert int8["xnnpack_partitions"] <= float32["xnnpack_partitions"] == 2
    assert metadata["parity"]["tflite_int8"]["top1_agreement"] >= 0.9
    assert metadata["parity"]["tflite_int8"]["max_abs_diff"] < 0.05


def test_export_errors(exported, tmp_path, records_3_subjects):
    with pytest.raises(export.ExportError, match="no model"):
        export.export_run_model(tmp_path / "none.keras", tmp_path / "out")
    out, _ = exported
    shutil.copy(out / "model.keras", tmp_path / "model.keras")
    with pytest.raises(export.ExportError, match="pass --records_dir"):
        export.export_run_model(tmp_path / "model.keras", tmp_path / "out")


def first_clip(records_3_subjects):
    return sorted(p for p in (records_3_subjects.parent / "db" / "sub01").iterdir())[0]


def write_video(path, frames, fps=30):
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (first.shape[1], first.shape[0]))
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    return path


def test_predict_frames_and_mp4_agree(exported, records_3_subjects, tmp_path):
    out, _ = exported
    clip = first_clip(records_3_subjects)
    frames = list(list_frames(clip).values())
    model = predict.Model(out / "model_int8.tflite")
    from_frames = predict.predict_clip(model, predict.clip_sample(frames=clip))["result"]
    video = write_video(tmp_path / "clip.mp4", frames)
    from_video = predict.predict_clip(model, predict.clip_sample(video=video))["result"]
    assert from_frames["label"] == from_video["label"]
    assert (from_video["onset"], from_video["offset"]) == (0, len(frames) - 1)
    first = min(list_frames(clip))
    assert abs((from_frames["apex"] - first) - from_video["apex"]) <= 1
    assert abs(from_frames["probabilities"][from_frames["label"]]
               - from_video["probabilities"][from_video["label"]]) < 0.05


def test_predict_cli_json_visualize_and_dump(exported, records_3_subjects, tmp_path):
    out, _ = exported
    clip = first_clip(records_3_subjects)
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.predict", f"--model={out}",
                          f"--frames={clip}", "--json", f"--visualize={tmp_path / 'v.png'}",
                          f"--dump_features={tmp_path / 'f.npz'}"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(result) == {"label", "probabilities", "onset", "apex", "offset", "warnings"}
    assert result["warnings"] == []  # one steady face, no cut: nothing to warn about
    assert result["onset"] <= result["apex"] <= result["offset"]
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-4
    assert cv2.imread(str(tmp_path / "v.png")) is not None
    dumped = np.load(tmp_path / "f.npz")
    assert dumped["blocks"].shape == (1, 48, 48, 9) and dumped["flow"].shape == (1, 48, 48, 4)
    # The dumped features give the same prediction through the LiteRT interpreter directly.
    probs = export.run_tflite(out / "model.tflite", dict(dumped))
    assert result["label"] == ["negative", "positive", "surprise"][int(np.argmax(probs))]


def test_predict_bad_inputs(exported, records_3_subjects, tmp_path):
    out, _ = exported
    model = predict.Model(out / "model.keras")
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(5):
        cv2.imwrite(str(grey / f"img{i}.png"), np.full((120, 120), 90, np.uint8))
    with pytest.raises(predict.PredictError, match="no face"):
        predict.predict_clip(model, predict.clip_sample(frames=grey))
    with pytest.raises(predict.PredictError, match="fewer than 3 frames"):
        predict.clip_sample(frames=grey, onset=3)
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(predict.PredictError, match="unreadable video"):
        predict.clip_sample(video=tmp_path / "broken.mp4")
    with pytest.raises(predict.PredictError, match="no video file"):
        predict.clip_sample(video=tmp_path / "missing.mp4")
    # Metadata that does not match the model (another n).
    other = tmp_path / "other"
    shutil.copytree(out, other)
    meta = json.loads((other / "metadata.json").read_text())
    meta["params"]["blocks"] = 2
    (other / "metadata.json").write_text(json.dumps(meta))
    clip = first_clip(records_3_subjects)
    with pytest.raises(ArtifactError, match="does not match"):
        predict.predict_clip(predict.Model(other / "model.tflite"), predict.clip_sample(frames=clip))
    for args, message in (([f"--model={other}", f"--frames={clip}"], "does not match"),
                          ([f"--model={out}", f"--frames={grey}"], "no face")):
        run = subprocess.run([sys.executable, "-m", "tscnn_tf.predict", *args],
                             capture_output=True, text=True)
        assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr
        assert len([l for l in run.stderr.splitlines() if l.startswith("error:")]) == 1


@pytest.mark.parametrize("flag,value,message", [
    ("--visualize", "x.txt", "must end in"), ("--visualize", ".", "is a folder"),
    ("--visualize", "nowhere/x.png", "does not exist"), ("--dump_features", ".", "is a folder"),
    ("--dump_features", "f.txt", "must end in .npz")])
def test_predict_outputs_are_checked_before_any_frame(exported, tmp_path, flag, value, message):
    """The video does not exist: an output error first proves the outputs are checked before
    the clip is read or the model loaded (was a cv2 traceback after inference)."""
    out, _ = exported
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.predict", f"--model={out}",
                          f"--video={tmp_path / 'missing.mp4'}", f"{flag}={value}"],
                         capture_output=True, text=True, cwd=tmp_path)
    errors = [l for l in run.stderr.splitlines() if l.startswith("error:")]
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-1500:]
    assert len(errors) == 1 and flag in errors[0] and message in errors[0], run.stderr


@pytest.mark.parametrize("artifact", ["model.keras", "model.tflite", "saved_model"])
@pytest.mark.parametrize("class_names", [["a", "b", "c", "d"], ["a", "b"]])
def test_model_and_metadata_with_other_classes_are_refused(exported, tmp_path, artifact,
                                                           class_names):
    out, _ = exported
    other = tmp_path / "other"
    shutil.copytree(out, other)
    meta = json.loads((other / "metadata.json").read_text())
    (other / "metadata.json").write_text(json.dumps({**meta, "class_names": class_names}))
    path = other if artifact == "saved_model" else other / artifact
    with pytest.raises(ArtifactError, match=f"3 outputs but its metadata.json names "
                                                   f"{len(class_names)} classes"):
        predict.Model(path)


def test_a_model_file_copied_out_of_its_export_names_the_missing_metadata(exported, tmp_path):
    out, _ = exported
    shutil.copy(out / "model_int8.tflite", tmp_path / "model_int8.tflite")
    with pytest.raises(ArtifactError, match=f"missing {tmp_path / 'metadata.json'}"):
        predict.Model(tmp_path / "model_int8.tflite")


def test_spot_then_recognise_labels_each_interval(exported, tmp_path):
    """Each spotted interval goes through the feature stage's code and the exported model."""
    from tscnn_tf import spot, spotting, video
    from tscnn_tf.artifacts import ExportedModel
    from tscnn_tf.databases import synthetic_long
    videos = synthetic_long.read_synthetic_long(tmp_path / "long", seed=5, num_videos=1,
                                                seconds=6, fps=60)
    out, _ = exported
    model = ExportedModel(out / "model.tflite")
    result = spot.spot_source(video.Stream(video=videos[0].path), spotting.SpotConfig(), model)
    assert result["intervals"]
    for interval in result["intervals"]:
        assert interval["label"] in model.class_names
        assert abs(sum(interval["probabilities"].values()) - 1) < 1e-4
    evaluated = spot.evaluate_database(videos, spotting.SpotConfig(), model)["results"]
    recognition = evaluated["recognition"]
    assert recognition["num_true_positives"] == evaluated["overall"]["tp"] > 0
    assert recognition["strs"] == evaluated["overall"]["f1"] * recognition["analysis_f1"]


def test_export_never_writes_into_a_folder_of_other_files(tmp_path):
    """An --export_dir holding files an export does not write is refused before anything is
    written; the user's file survives."""
    folder = tmp_path / "my_models"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(export.ExportError, match="refusing to write into it"):
        export.export_model(None, folder, {"class_names": ["a", "b"], "params": {}}, {}, {})
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"
