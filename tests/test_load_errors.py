"""A damaged or truncated exported model or metadata.json is one `error:` line naming the file."""
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tscnn_tf import export, model as model_lib
from tscnn_tf.artifacts import ArtifactError, ExportedModel, save_model_atomic
from tscnn_tf.errors import ToolkitError

DATA = "saved_model/variables/variables.data-00000-of-00001"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    """An untrained tiny model as an export folder: model.keras, saved_model/, metadata.json."""
    out = tmp_path_factory.mktemp("export")
    model = model_lib.build_tscnn(3, variant="tiny")
    save_model_atomic(model, out / "model.keras")
    export.write_saved_model(model, out / "saved_model")
    (out / "metadata.json").write_text(json.dumps(
        {"class_names": ["negative", "positive", "surprise"], "params": {"blocks": 3}}))
    return out


def truncated_copy(export_dir, tmp_path, name):
    """A copy of the export with the file `name` cut to half its size."""
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[:len(data) // 2])
    return copy


def test_the_untouched_export_loads(export_dir):
    for path in (export_dir, export_dir / "model.keras"):
        assert ExportedModel(path).num_outputs == 3


@pytest.mark.parametrize("name", [DATA, "saved_model/variables/variables.index",
                                  "saved_model/saved_model.pb"])
def test_a_truncated_saved_model_names_its_file(export_dir, tmp_path, name):
    copy = truncated_copy(export_dir, tmp_path, name)
    with pytest.raises(ArtifactError, match=f"{copy / name} is (damaged or )?truncated"):
        ExportedModel(copy)


def test_a_truncated_keras_file_is_not_called_missing(export_dir, tmp_path):
    copy = truncated_copy(export_dir, tmp_path, "model.keras")
    with pytest.raises(ArtifactError, match=f"{copy / 'model.keras'} is damaged or truncated"):
        ExportedModel(copy / "model.keras")
    records = tmp_path / "records"  # export loads the model right after the manifest
    records.mkdir()
    (records / "manifest.json").write_text("{}")
    with pytest.raises(ArtifactError, match="damaged or truncated") as raised:
        export.export_run_model(copy / "model.keras", tmp_path / "out", records)
    assert "File not found" not in str(raised.value)


def test_a_keras_file_with_a_damaged_member_fails_its_checksum(export_dir, tmp_path):
    copy = tmp_path / "model.keras"
    data = bytearray((export_dir / "model.keras").read_bytes())
    data[len(data) // 3:len(data) // 3 + 64] = b"\xff" * 64
    copy.write_bytes(bytes(data))
    shutil.copy(export_dir / "metadata.json", tmp_path)
    with pytest.raises(ArtifactError, match="is damaged .* fails its checksum"):
        ExportedModel(copy)


@pytest.mark.parametrize("text", ['{"class_names": ["negative", "pos', "", "[1, 2]"])
def test_a_damaged_metadata_json_names_the_file(export_dir, tmp_path, text):
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    (copy / "metadata.json").write_text(text)
    with pytest.raises(ToolkitError, match=f"{copy / 'metadata.json'} is damaged"):
        ExportedModel(copy / "model.keras")


def test_predict_and_spot_give_one_error_line_for_a_truncated_saved_model(export_dir, tmp_path):
    copy = truncated_copy(export_dir, tmp_path, DATA)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((64, 64), 90, np.uint8))
    for command in (["tscnn_tf.predict"], ["tscnn_tf.spot", "--fps=30"]):
        run = subprocess.run([sys.executable, "-m", *command, f"--model={copy}",
                              f"--frames={frames}"], capture_output=True, text=True)
        errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert len(errors) == 1 and f"{copy / DATA} is truncated" in errors[0]
