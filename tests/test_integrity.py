"""Issue 27: integrity under damage and faults: records that lie, a full disk, a model that
does not match its metadata, records made by another tool, nonsense flag values."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tscnn_tf import config as config_lib, experiment, loso, manifest as manifest_lib, records
from tscnn_tf.config import DataConfig, ExperimentConfig, ExportConfig, FeatureConfig, RunConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16, learning_rate=0.01)


def copied(records_dir, tmp_path, name="copy") -> Path:
    return Path(shutil.copytree(records_dir, tmp_path / name / "records"))


def alone(records_dir, tmp_path, train=TINY, **run) -> ExperimentConfig:
    """Training from `records_dir` alone (no database)."""
    return ExperimentConfig(
        data=DataConfig(db="custom"), train=train,
        export=ExportConfig(export_dir=str(tmp_path / "export"), parity_samples=8),
        run=RunConfig(records_dir=str(records_dir), num_workers=1, **run))


def rewrite_shard(path: Path, keep) -> None:
    """Rewrite a shard with only the records `keep(index)` selects."""
    kept = [r.numpy() for k, r in enumerate(tf.data.TFRecordDataset(str(path))) if keep(k)]
    records.write_shard(str(path), kept)


def shard_of(records_dir: Path) -> Path:
    return records_dir / json.loads((records_dir / "manifest.json").read_text())["shards"][0]


# 1. Records that hold fewer samples than their manifest lists.

def test_a_shard_holding_fewer_samples_than_listed_is_refused_before_any_fold(
        records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    rewrite_shard(shard, lambda k: k < 6)  # the first 6 of 9 records
    run = tmp_path / "run"
    with pytest.raises(loso.TrainingError, match=rf"{shard.name} holds 6 record\(s\), but its "
                                                 r"manifest lists 9: 3 sample\(s\)"):
        experiment.run(alone(copy, tmp_path), run)
    assert not run.exists()  # nothing written
    # The library entry (`--folds` of a subject whose records are gone) refuses the same way.
    with pytest.raises(loso.TrainingError, match="are not in it"):
        loso.train_loso(copy, run, TINY, folds=("sub03",))
    assert not (run / "config.json").exists()


def test_a_shard_with_records_its_manifest_does_not_list_is_refused(records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    rewrite_shard(shard, lambda k: True)
    extra = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    records.write_shard(str(shard), extra + extra[:1])  # one record twice
    with pytest.raises(loso.TrainingError, match="its manifest.json does not list"):
        experiment.run(alone(copy, tmp_path), tmp_path / "run")


def test_the_manifest_counts_the_samples_of_each_shard(records_3_subjects):
    manifest = json.loads((records_3_subjects / "manifest.json").read_text())
    assert manifest["format"] == manifest_lib.FORMAT_VERSION
    assert manifest["shard_samples"] == {manifest["shards"][0]: 9}


# 2. A damaged shard.

@pytest.mark.parametrize("damage", ["cut", "overwritten"])
def test_a_damaged_shard_is_one_error_naming_it_before_anything_is_written(
        records_3_subjects, tmp_path, damage):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    content = bytearray(shard.read_bytes())
    if damage == "cut":
        content = content[: len(content) // 2]
    else:
        middle = len(content) // 2
        content[middle:middle + 64] = b"\xff" * 64
    shard.write_bytes(bytes(content))
    run = tmp_path / "run"
    with pytest.raises(loso.TrainingError, match=rf"record shard {shard} is damaged or "
                                                 r"truncated .*extract the records again"):
        experiment.run(alone(copy, tmp_path), run)
    assert not run.exists()


def test_train_command_on_a_cut_shard_prints_one_error_line(records_3_subjects, tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    shard = shard_of(copy)
    shard.write_bytes(shard.read_bytes()[:1000])
    out = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--records_dir={copy}",
                          f"--workdir={tmp_path / 'run'}", "--variant=tiny", "--epochs=1",
                          "--nofinal_model"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 1, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: record shard {shard} is damaged or truncated"), last
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


# 7. Flag values that make no sense.

@pytest.mark.parametrize("section,field,value,message", [
    ("train", "epochs", 0, "--epochs=0: must be at least 1"),
    ("train", "val_fraction", 1.5, "--val_fraction=1.5: must be at least 0 and below 1"),
    ("train", "batch_size", 0, "--batch_size=0: must be at least 1"),
    ("train", "learning_rate", float("nan"), "--learning_rate=nan: must be greater than 0"),
    ("train", "dropout", 1.0, "--dropout=1.0: must be at least 0 and below 1"),
    ("train", "patience", -1, "--patience=-1: must be at least 0"),
    ("export", "parity_samples", 0, "--parity_samples=0: must be at least 1"),
    ("run", "num_workers", 0, "--num_workers=0: must be at least 1"),
    ("data", "synthetic_subjects", 0, "--synthetic_subjects=0: must be at least 1"),
    ("data", "fps", -25.0, "--fps=-25.0: must be greater than 0"),
])
def test_every_number_of_the_config_is_checked_when_it_is_made(section, field, value, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        config_lib.SECTIONS[section](**{field: value})


@pytest.mark.parametrize("flag", ["--epochs=0", "--val_fraction=1.5", "--batch_size=0"])
def test_a_nonsense_flag_value_is_refused_before_anything_is_written(tmp_path, flag):
    out = subprocess.run([sys.executable, "-m", "tscnn_tf.train", f"--workdir={tmp_path / 'run'}",
                          "--variant=tiny", flag], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: {flag}: must be"), out.stderr
    assert not (tmp_path / "run").exists()


# 3. A full disk during export and during the feature stage.

@pytest.fixture
def small_disk(tmp_path):
    """`mount(size)`: a tmpfs of `size` bytes (skipped where mounting is not allowed)."""
    mounted = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True)
        if done.returncode:
            pytest.skip("no tmpfs can be mounted here; the injected-ENOSPC tests cover this")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` until `leave` bytes are free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_a_full_disk_during_export_keeps_the_earlier_export(exported_tiny, small_disk):
    from tscnn_tf import exporting
    out, _ = exported_tiny
    size = sum(len(b) for b in tree(out).values())
    disk = small_disk(size + 4_000_000)
    target = disk / "export"
    shutil.copytree(out, target)
    before = tree(target)
    fill(disk, size // 3)
    final = out.parent / "final" / "best.keras"
    with pytest.raises(exporting.ExportError, match=r"no space left on the disk of .*export "
                                                    r"needs about [\d.]+ MB.*the earlier export "
                                                    "there is untouched"):
        exporting.export_run_model(final, target, out.parent / "records", limit=8)
    assert tree(target) == before  # the working export, whole
    assert sorted(p.name for p in disk.iterdir()) == ["export", "filler"]  # no partial left


def test_an_injected_enospc_during_export_keeps_the_earlier_export(exported_tiny, tmp_path,
                                                                   monkeypatch):
    import errno
    from tscnn_tf import exporting
    out, _ = exported_tiny
    target = tmp_path / "export"
    shutil.copytree(out, target)
    before = tree(target)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(exporting, "write_tflite", full)
    with pytest.raises(exporting.ExportError, match="no space left.*untouched"):
        exporting.export_run_model(out.parent / "final" / "best.keras", target,
                                   out.parent / "records", limit=8)
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_reexport_replaces_the_whole_folder(exported_tiny, tmp_path):
    from tscnn_tf import exporting
    out, metadata = exported_tiny
    target = tmp_path / "export"
    shutil.copytree(out, target)
    (target / "model_dynamic.tflite").unlink()  # an earlier, incomplete export
    again = exporting.export_run_model(out.parent / "final" / "best.keras", target,
                                       out.parent / "records", limit=8)
    assert sorted(again["sha256"]) == sorted(["model.keras", "saved_model", "model.tflite",
                                              "model_dynamic.tflite", "model_int8.tflite"])
    assert (target / "model_dynamic.tflite").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_full_disk_during_the_feature_stage_is_one_error(tiny_synthetic, small_disk):
    from pipelines import extraction
    from tests.conftest import FAST
    disk = small_disk(300_000)
    with pytest.raises(extraction.ExtractionError, match=r"no space left on the disk of .*: the "
                                                         r"shard .* needed about [\d.]+ MB"):
        extraction.extract_features("synthetic", tiny_synthetic, disk / "records", FAST,
                                    {"seed": 1, "num_subjects": 2, "clips_per_class": 1},
                                    num_workers=1, progress=False)
    left = [p.name for p in (disk / "records").iterdir()]
    assert not [n for n in left if n.endswith(".tfrecord") or n.startswith("partial-")], left


def test_an_injected_resource_exhausted_in_the_shard_writer_is_one_error(tiny_synthetic,
                                                                       tmp_path, monkeypatch):
    from pipelines import extraction
    from tests.conftest import FAST

    def full(path, examples):
        raise tf.errors.ResourceExhaustedError(None, None, f"{path}; No space left on device")
    monkeypatch.setattr(records, "write_shard", full)
    with pytest.raises(extraction.ExtractionError, match="no space left"):
        extraction.extract_features("synthetic", tiny_synthetic, tmp_path / "records", FAST,
                                    {"seed": 1, "num_subjects": 2, "clips_per_class": 1},
                                    num_workers=1, progress=False)


# 4. A model that does not match its metadata.

def foreign(out: Path, tmp_path: Path, metadata_changes=None) -> Path:
    """A copy of the export whose model.keras is an untrained OFF-ApexNet."""
    from tscnn_tf import models
    other = Path(shutil.copytree(out, tmp_path / "mixed"))
    models.get("offapexnet").build(3).save(other / "model.keras")
    if metadata_changes is not None:
        meta = json.loads((other / "metadata.json").read_text())
        meta = metadata_changes(meta)
        (other / "metadata.json").write_text(json.dumps(meta))
    return other


def test_a_model_beside_the_metadata_of_another_model_is_refused(exported_tiny, tmp_path):
    from tscnn_tf import predicting
    from tscnn_tf.artifacts import ArtifactError
    out, _ = exported_tiny
    other = foreign(out, tmp_path)
    with pytest.raises(ArtifactError, match=r"reads flow_raw, but its metadata.json describes a "
                                            r"model reading apex_gray, blocks, flow"):
        predicting.load_model(other / "model.keras")


def test_an_older_metadata_without_hashes_still_catches_another_model(exported_tiny, tmp_path):
    from tscnn_tf import predicting
    from tscnn_tf.artifacts import ArtifactError

    def older(meta):
        del meta["sha256"], meta["model_name"]
        meta["inputs"] = {"flow_raw": {"shape": [48, 48, 4]}}  # even with matching inputs
        return meta
    other = foreign(out := exported_tiny[0], tmp_path, older)
    with pytest.raises(ArtifactError, match="is the model 'offapexnet', its metadata.json "
                                            "describes 'tscnn'"):
        predicting.load_model(other / "model.keras")
    assert out.is_dir()


@pytest.mark.parametrize("artifact", ["model.keras", "model.tflite", "saved_model"])
def test_the_same_architecture_with_other_weights_is_refused(exported_tiny, tmp_path, artifact):
    from tscnn_tf import predicting
    from tscnn_tf.artifacts import ArtifactError
    out, _ = exported_tiny
    other = Path(shutil.copytree(out, tmp_path / "other"))
    import keras
    model = keras.saving.load_model(other / "model.keras", compile=False)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    if artifact == "model.keras":
        model.save(other / "model.keras")
    elif artifact == "model.tflite":
        shutil.copy(other / "model_dynamic.tflite", other / "model.tflite")
        (other / "model_dynamic.tflite").write_bytes(b"")  # neither is the one recorded now
        meta = json.loads((other / "metadata.json").read_text())
        meta["sha256"] = {k: v for k, v in meta["sha256"].items() if k != "model_dynamic.tflite"}
        (other / "metadata.json").write_text(json.dumps(meta))
    else:
        from tscnn_tf import exporting
        shutil.rmtree(other / "saved_model")
        exporting.write_saved_model(model, other / "saved_model")
    path = other if artifact == "saved_model" else other / artifact
    with pytest.raises(ArtifactError, match="not the file its metadata.json describes"):
        predicting.load_model(path)
    predicting.load_model(out if artifact == "saved_model" else out / artifact)  # the original


def test_export_refuses_a_model_that_is_not_its_runs(exported_tiny, tmp_path):
    from tscnn_tf import exporting, models
    out, _ = exported_tiny
    run = Path(shutil.copytree(out.parent / "final", tmp_path / "final"))
    (run / "config.json").write_text(json.dumps({"identity": {"train": {"model": "ststnet"}}}))
    with pytest.raises(exporting.ExportError, match="is the model 'tscnn_.*trained "
                                                    "--model=ststnet"):
        exporting.export_run_model(run / "best.keras", tmp_path / "export", out.parent / "records")
    assert not (tmp_path / "export").exists() or not any((tmp_path / "export").iterdir())


# 5. Records made by another tool: the contract, its loader and its writer.

OPTIONAL_ENTRY_KEYS = ("clip", "onset", "offset", "apex_given", "apex_spotted", "apex_used",
                       "face_box", "fingerprint", "warnings", "lbptop")


def bare_records(records_dir, tmp_path) -> Path:
    """The records with a manifest of the required keys only (as another tool may write it)."""
    copy = copied(records_dir, tmp_path, "bare")
    manifest = json.loads((copy / "manifest.json").read_text())
    bare = {k: manifest[k] for k in manifest_lib.REQUIRED_KEYS}
    bare["samples"] = [{k: v for k, v in e.items() if k not in OPTIONAL_ENTRY_KEYS}
                       for e in manifest["samples"]]
    (copy / "manifest.json").write_text(json.dumps(bare))
    return copy


def test_inspect_draws_records_whose_manifest_has_only_the_required_keys(records_3_subjects,
                                                                         tmp_path):
    from tscnn_tf import plots
    copy = bare_records(records_3_subjects, tmp_path)
    for faces in (False, True):
        out = plots.contact_sheet(copy, tmp_path / f"sheet{faces}.png", faces=faces)
        assert out["shown"] == 9 and (tmp_path / f"sheet{faces}.png").is_file()


@pytest.mark.parametrize("shard", ["../outside.tfrecord", "/etc/passwd", "link.tfrecord"])
def test_no_command_follows_a_shard_path_out_of_the_records_folder(records_3_subjects, tmp_path,
                                                                   shard):
    from tscnn_tf import plots
    copy = copied(records_3_subjects, tmp_path)
    real = shard_of(copy)
    shutil.copy(real, copy.parent / "outside.tfrecord")
    (copy / "link.tfrecord").symlink_to(copy.parent / "outside.tfrecord")
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["samples"]:
        entry["shard"] = shard
    manifest["shards"] = [shard]
    manifest.pop("shard_samples")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(plots.InspectError, match="not a file name in the records folder|"
                                                 "resolves outside the records folder"):
        plots.contact_sheet(copy, tmp_path / "sheet.png", faces=False)
    with pytest.raises(loso.TrainingError, match="refusing to read it"):
        experiment.run(alone(copy, tmp_path), tmp_path / "run")


@pytest.mark.parametrize("damage,message", [
    (lambda m: m.update(format=99), "records format 99"),
    (lambda m: m.update(class_names=[]), "class_names must be a non-empty list"),
    (lambda m: m["params"].update(blocks=7), "params must hold blocks"),
    (lambda m: m["samples"][0].pop("subject"), "has no subject"),
    (lambda m: m["samples"][0].update(label=5), "has label 5"),
    (lambda m: m["samples"].append(dict(m["samples"][0])), "is listed twice"),
])
def test_the_loader_names_what_breaks_the_contract(records_3_subjects, tmp_path, damage,
                                                   message):
    copy = copied(records_3_subjects, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    damage(manifest)
    manifest.pop("shard_samples")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(manifest_lib.RecordsError, match=message):
        manifest_lib.load(copy)


def test_records_written_by_the_public_writer_train_and_inspect(tmp_path):
    from tscnn_tf import plots
    rng = np.random.default_rng(0)
    out = tmp_path / "mine"
    with records.RecordsWriter(out, db="mydb", class_names=["neg", "pos"], blocks=2,
                               samples_per_shard=5) as writer:
        for k in range(12):
            flow_raw = rng.normal(0, 1, (48, 48, 4)).astype(np.float32)
            writer.add(sample_id=f"s{k % 3}/c{k}", subject=f"s{k % 3}", label=k % 2,
                       apex_gray=rng.random((48, 48)), blocks=rng.random((48, 48, 4)),
                       flow_raw=flow_raw)
    manifest = manifest_lib.load(out)
    assert manifest["shard_samples"] == {"mydb-00000.tfrecord": 5, "mydb-00001.tfrecord": 5,
                                         "mydb-00002.tfrecord": 2}
    records.verify(out, manifest)
    assert plots.contact_sheet(out, tmp_path / "sheet.png", faces=True)["shown"] == 12
    config = alone(out, tmp_path)
    config = config.__class__(**{**config.__dict__, "export": ExportConfig(final_model=False)})
    results = experiment.run(config, tmp_path / "run")["results"]
    assert results["num_samples"] == 12 and results["class_names"] == ["neg", "pos"]
    with pytest.raises(ValueError, match="already holds records"):
        records.RecordsWriter(out, db="mydb", class_names=["neg", "pos"])
    with pytest.raises(ValueError, match="blocks has shape"):
        records.RecordsWriter(tmp_path / "other", "mydb", ["neg"], blocks=3).add(
            "a", "s", 0, np.zeros((48, 48)), np.zeros((48, 48, 4)), np.zeros((48, 48, 4)))


# 6. A clip without motion.

def test_a_clip_without_motion_gets_a_warning(exported_tiny, tiny_synthetic, tmp_path):
    import cv2
    from tscnn_tf import predicting
    out, _ = exported_tiny
    model = predicting.load_model(out / "model.tflite")
    first = sorted(p for p in tiny_synthetic.rglob("*.png"))[0]
    still = tmp_path / "still"
    still.mkdir()
    for k in range(28):
        shutil.copy(first, still / f"img{k}.png")
    result = predicting.predict_clip(model, predicting.clip_sample(frames=still))["result"]
    assert any("no motion" in w and "0.000 px" in w for w in result["warnings"]), result
    moving = next(p.parent for p in sorted(tiny_synthetic.rglob("*.png")))
    result = predicting.predict_clip(model, predicting.clip_sample(frames=moving))["result"]
    assert not any("no motion" in w for w in result["warnings"]), result


def test_the_motion_floor_lies_between_a_still_face_and_the_weakest_expression():
    from tscnn_tf import predicting
    still = np.zeros((48, 48, 4), np.float32)
    assert predicting.motion_warning(still) is not None
    weakest = np.full((48, 48, 4), 0.094 / np.sqrt(2), np.float32)  # docs/bad-input.md
    assert predicting.motion_warning(weakest) is None


# 8. Smaller ones.

def test_a_user_builder_without_softmax_is_warned_about(tmp_path, monkeypatch):
    import importlib
    import textwrap
    from tscnn_tf import device_check, models
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "nosoftmax27.py").write_text(textwrap.dedent('''
        import keras

        def net(num_classes, flow_raw):
            x = keras.Input(flow_raw, name="flow_raw")
            y = keras.layers.GlobalAveragePooling2D()(x)
            return keras.Model({"flow_raw": x}, keras.layers.Dense(num_classes)(y))
    '''))
    importlib.invalidate_caches()
    recs = device_check.write_records(tmp_path / "records", 3, {"a": 3, "b": 3})
    config = loso.TrainConfig(variant="tiny", epochs=1, batch_size=4, model="nosoftmax27:net")
    results = loso.train_loso(recs, tmp_path / "run", config)
    assert any("not probabilities" in w for w in results["warnings"]), results["warnings"]
    assert loso.not_probabilities([{"p_a": 0.3, "p_b": 0.7}], ["a", "b"]) is None
    models._CODE.pop("nosoftmax27", None)


def test_spot_of_a_still_image_is_refused(tmp_path):
    import cv2
    from tscnn_tf import video
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(video.ClipError, match="is a still image, not a video"):
        video.Stream(video=tmp_path / "one.png")
    from tscnn_tf import predicting
    with pytest.raises(predicting.PredictError, match="is a still image, not a video"):
        predicting.clip_sample(video=tmp_path / "one.png")


def test_an_unknown_database_is_named_as_such(tmp_path):
    from pipelines import extraction
    config = ExperimentConfig(data=DataConfig(db="synthtic"))
    with pytest.raises(ValueError, match="unknown database 'synthtic' .did you mean 'synthetic'"):
        experiment.run(config, tmp_path / "run")
    with pytest.raises(ValueError, match="unknown database 'synthtic'"):
        extraction.command(config, str(tmp_path / "records"))
    assert not (tmp_path / "run").exists()


def test_folds_with_an_export_dir_say_that_nothing_is_exported(records_3_subjects, tmp_path):
    config = alone(records_3_subjects, tmp_path, folds=("sub01",))
    outcome = experiment.run(config, tmp_path / "run")
    report = experiment.report(outcome, config, tmp_path / "run")
    assert f"warning: no final model and no export to {tmp_path / 'export'}" in report


def test_export_names_its_own_flag_for_a_folder_of_other_files(tmp_path):
    from tscnn_tf import exporting
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(exporting.ExportError, match="give an empty or new --output_dir"):
        exporting.check_export_dir(tmp_path / "out", "--output_dir")
    out = subprocess.run([sys.executable, "-m", "tscnn_tf.export", "--model=x.keras",
                          f"--output_dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert "--export_dir" not in out.stderr


def test_the_fold_by_database_refusal_counts_what_it_lists():
    manifest = {"samples": [{"subject": f"sub{k}"} for k in range(6)]}
    with pytest.raises(loso.TrainingError, match=r"6 subject\(s\) have none: sub0, sub1, sub2, "
                                                 r"sub3, sub4 and 1 more"):
        loso.fold_groups(manifest, "database")


def test_predict_refuses_an_onset_outside_the_clip(tiny_synthetic):
    from tscnn_tf import predicting
    frames = next(p.parent for p in sorted(tiny_synthetic.rglob("*.png")))
    with pytest.raises(predicting.PredictError, match="--onset=5000 is outside the clip"):
        predicting.clip_sample(frames=frames, onset=5000, offset=6000)
    sample = predicting.clip_sample(frames=frames, offset=6000)
    assert any("--offset=6000 is after the clip's last frame" in w for w in sample.warnings)


def terminated_after(command: list[str], marker: str, tmp_path) -> tuple[int, str]:
    """Run `command`, send it SIGTERM once `marker` is on its stderr; (exit code, stderr)."""
    import signal
    import time
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        try:
            while marker not in err.read_text() and process.poll() is None:
                time.sleep(0.2)
            assert process.poll() is None, err.read_text()[-3000:]
            time.sleep(1)
            process.send_signal(signal.SIGTERM)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
    return code, err.read_text()


@pytest.mark.parametrize("command,marker,kept", [
    (["pipelines.extract_features", "--num_workers=2"], "features:", "finished record shards"),
    (["tscnn_tf.train", "--variant=tiny", "--epochs=500", "--patience=500", "--num_workers=1"],
     "fold 1/", "finished records, epochs and folds"),
])
def test_sigterm_is_reported_like_ctrl_c(tmp_path, command, marker, kept):
    module, *flags = command
    out = ("--output_dir" if module.startswith("pipelines") else "--workdir")
    code, stderr = terminated_after(
        [sys.executable, "-m", module, "--db=synthetic", "--synthetic_subjects=3",
         "--synthetic_clips_per_class=1", "--flow=dis", f"{out}={tmp_path / 'out'}", *flags],
        marker, tmp_path)
    assert code == 143, stderr[-3000:]
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: terminated (SIGTERM); " + kept), last


def test_a_stray_shard_beside_the_listed_ones_is_not_read(records_3_subjects, tmp_path):
    from tscnn_tf import data
    copy = copied(records_3_subjects, tmp_path)
    shutil.copy(shard_of(copy), copy / "synthetic-00099.tfrecord")
    assert data.record_files(copy) == [str(shard_of(copy))]


def test_export_refuses_a_parity_sample_count_below_one(tmp_path):
    from tscnn_tf import exporting
    with pytest.raises(exporting.ExportError, match="--parity_samples=0: must be at least 1"):
        exporting.export_run_model(tmp_path / "best.keras", tmp_path / "out", limit=0)


def test_samples_that_name_no_shard_are_looked_for_in_all_of_them(records_3_subjects, tmp_path):
    """As the Beam pipeline writes them: every entry's shard is "", `shards` lists the files."""
    copy = copied(records_3_subjects, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    for entry in manifest["samples"]:
        entry["shard"] = ""
    manifest.pop("shard_samples")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    records.verify(copy, manifest_lib.load(copy))
    rewrite_shard(shard_of(copy), lambda k: k != 4)
    with pytest.raises(manifest_lib.RecordsError, match=r"1 sample\(s\) that .* lists are in "
                                                        "none of its shards"):
        records.verify(copy, manifest_lib.load(copy))


def test_records_of_another_shape_than_the_manifest_says_are_refused(records_3_subjects,
                                                                    tmp_path):
    copy = copied(records_3_subjects, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["params"]["blocks"] = 2  # the records hold n = 3
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(loso.TrainingError, match=r"holds records that are not of the records "
                                                 r"format its manifest describes \(n=2"):
        experiment.run(alone(copy, tmp_path), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_model_setting_the_builder_refuses_fails_before_any_fold(records_3_subjects, tmp_path):
    train = loso.TrainConfig(variant="tiny", epochs=1, model="ststnet",
                             model_settings=("dropout=2",))
    with pytest.raises(loso.TrainingError, match=r"--model_settings=dropout=2: --model=ststnet "
                                                 r"refuses it"):
        experiment.run(alone(records_3_subjects, tmp_path, train=train), tmp_path / "run")
    assert not list((tmp_path / "run").glob("*"))  # the command removes the empty folder
