"""Every model of the registry (and a user's own) in the LOSO, export, predict and spot;
leave-one-database-out (tiny variants, few epochs)."""
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tscnn_tf import config as config_lib
from tscnn_tf import data, export, loso, models, predict, records
from tscnn_tf.artifacts import ArtifactError, ExportedModel

TINY = loso.TrainConfig(variant="tiny", epochs=2, patience=5, batch_size=16, learning_rate=0.01)
USER_MODEL = textwrap.dedent('''
    import keras

    def small_cnn(num_classes, flow_raw):
        x = keras.Input(flow_raw, name="flow_raw")
        y = keras.layers.Conv2D(4, 3, activation="relu")(x)
        y = keras.layers.GlobalAveragePooling2D()(y)
        out = keras.layers.Dense(num_classes, activation="softmax")(y)
        return keras.Model({"flow_raw": x}, out)
''')


def tiny(model: str, **changes) -> loso.TrainConfig:
    return loso.TrainConfig(**{**TINY.__dict__, "model": model, **changes})


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_nets:small_cnn"


@pytest.fixture(scope="module")
def landmarker(records_3_subjects):
    """The landmarker predict builds for these records' models, built once (it has no state
    from one clip to the next; loading dlib's model is most of a second)."""
    from tscnn_tf.features import FeatureConfig, landmarker_for
    return landmarker_for(FeatureConfig(**data.load_manifest(records_3_subjects)["params"]))


FIELDS = {"offapexnet": ["flow_raw"], "ststnet": ["flow_raw"], "htnet": ["flow_raw"],
          "lbptop_svm": ["lbptop"], "user": ["flow_raw"]}


# TSCNN's LOSO and export are tested in test_train.py and test_export.py; the fold loop and
# aggregation over every fold are the same for every model (test_train.py runs all three folds),
# so each model here trains the one fold whose model it exports.
@pytest.mark.parametrize("name", list(FIELDS))
def test_each_model_trains_a_loso_and_exports_with_parity(name, records_3_subjects, tmp_path,
                                                          request, landmarker):
    model = request.getfixturevalue("user_module") if name == "user" else name
    workdir = tmp_path / "run"
    (tmp_path / "run").mkdir()
    (workdir / "records").symlink_to(records_3_subjects)
    results = loso.train_loso(workdir / "records", workdir, tiny(model), folds=["sub01"])
    assert set(results["per_fold"]) == {"sub01"}
    assert results["num_samples"] == 3 and results["model"]["name"] == model
    assert results["model"]["fields"] == FIELDS[name]
    stored = json.loads((workdir / "results.json").read_text())
    assert stored["model"]["name"] == model and "uf1" in stored and "uar" in stored
    assert list((workdir / "folds" / "sub01" / "logs").iterdir())  # TensorBoard
    assert json.loads((workdir / "config.json").read_text())["identity"]["train"]["model"] == model
    metadata = export.export_run_model(workdir / "folds" / "sub01" / "best.keras",
                                       tmp_path / "export", limit=16)
    assert metadata["model"] == model and list(metadata["inputs"]) == FIELDS[name]
    assert "streams" not in metadata
    parity = metadata["parity"]
    assert parity["saved_model"]["max_abs_diff"] < 1e-5
    assert parity["tflite_float32"]["max_abs_diff"] < 1e-5
    assert parity["tflite_dynamic"]["top1_agreement"] >= 0.5
    assert "sub01" in parity["samples"]  # measured on the fold's held-out subjects
    # predict feeds the model the field its input names (flow_raw, lbptop), from a new clip.
    clip = sorted((records_3_subjects.parent / "db" / "sub01").iterdir())[0]
    for artifact in (tmp_path / "export" / "model.tflite", tmp_path / "export"):
        result = predict.predict_clip(predict.check_model_inputs(ExportedModel(artifact)),
                                      predict.clip_sample(frames=clip), landmarker)["result"]
        assert abs(sum(result["probabilities"].values()) - 1) < 1e-4


def test_the_model_is_part_of_the_fingerprint_and_tscnn_keeps_its_own():
    default = config_lib.ExperimentConfig()
    identity = default.identity()["train"]
    # Runs made before --model existed: the same identity, so the same fingerprint.
    assert not {"model", "model_settings", "fold_by"} & set(identity)
    named = config_lib.ExperimentConfig(train=loso.TrainConfig(model="tscnn"))
    assert config_lib.fingerprint(named.identity()) == config_lib.fingerprint(default.identity())
    fingerprints = {config_lib.fingerprint(config_lib.ExperimentConfig(train=t).identity())
                    for t in (loso.TrainConfig(), loso.TrainConfig(model="ststnet"),
                              loso.TrainConfig(model="ststnet", model_settings=("dropout=0.3",)),
                              loso.TrainConfig(fold_by="database"))}
    assert len(fingerprints) == 4


def test_model_settings_reach_the_builder_and_bad_ones_are_refused(records_3_subjects, tmp_path):
    assert config_lib.model_settings(tiny("htnet", model_settings=("dropout=0.1", "patch=7",
                                                                   "normalise=none"))) == {
        "dropout": 0.1, "patch": 7, "normalise": "none"}
    with pytest.raises(ValueError, match="is not key=value"):
        tiny("htnet", model_settings=("dropout",))
    manifest = data.load_manifest(records_3_subjects)
    plan = loso.plan_model(tiny("htnet", model_settings=("dropout=0.1",)), manifest)
    assert plan.settings == {"variant": "tiny", "dropout": 0.1} and plan.fields == ("flow_raw",)
    # HTNet keeps its own dropout (0) unless asked; the TSCNN gets --dropout and --streams.
    assert "dropout" not in loso.plan_model(tiny("htnet"), manifest).settings
    assert loso.plan_model(tiny("tscnn", streams="S+T"), manifest).fields == (
        "apex_gray", "flow")
    with pytest.raises(loso.TrainingError, match="ststnet takes no dropuot"):
        loso.train_loso(records_3_subjects, tmp_path / "a",
                        tiny("ststnet", model_settings=("dropuot=0.3",)))
    with pytest.raises(loso.TrainingError, match="--pretrained_s"):
        loso.train_loso(records_3_subjects, tmp_path / "b",
                        tiny("ststnet", pretrained_s=str(tmp_path / "s.keras")))
    with pytest.raises(models.ModelError, match="unknown model 'nets'"):
        loso.train_loso(records_3_subjects, tmp_path / "c", tiny("nets"))
    assert not any((tmp_path / d / "config.json").exists() for d in "abc")  # refused before work


def test_lbptop_svm_on_records_without_lbptop_is_one_clear_error(records_3_subjects, tmp_path):
    """Records made before the feature stage wrote lbptop train every other model."""
    old = relabelled(records_3_subjects, tmp_path / "old", {s: [s] for s in
                                                           ("sub01", "sub02", "sub03")},
                     drop=("lbptop",))
    assert "lbptop" not in data.stored_fields(data.load_manifest(old))
    for train in (loso.train_loso, loso.train_final):
        with pytest.raises(models.ModelError, match="lbptop_svm reads lbptop, which the records "
                                                    f"in {old} do not hold"):
            train(old, tmp_path / "run", tiny("lbptop_svm"))
    assert not (tmp_path / "run" / "config.json").exists()
    results = loso.train_loso(old, tmp_path / "ok", tiny("ststnet", epochs=1, augment=False),
                              folds=["sub01"])
    assert results["num_samples"] == 3


def relabelled(records_dir, out_dir, subjects: dict[str, list[str]], drop=()):
    """A copy of the records whose subject s appears as each name in subjects[s] (a subject
    listed twice is copied, with new sample ids), without the fields `drop`."""
    out_dir.mkdir()
    manifest = json.loads((records_dir / "manifest.json").read_text())
    examples, samples = [], []
    for path in sorted(records_dir.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(path)):
            example = tf.train.Example.FromString(raw.numpy())
            feature = example.features.feature
            for name in subjects[feature["subject"].bytes_list.value[0].decode()]:
                sample_id = f"{name}/{feature['sample_id'].bytes_list.value[0].decode()}"
                copy = tf.train.Example()
                copy.CopyFrom(example)
                copy.features.feature["subject"].bytes_list.value[:] = [name.encode()]
                copy.features.feature["sample_id"].bytes_list.value[:] = [sample_id.encode()]
                for field in drop:
                    del copy.features.feature[field]
                examples.append(copy.SerializeToString())
    for entry in manifest["samples"]:
        for name in subjects[entry["subject"]]:
            samples.append({**{k: v for k, v in entry.items() if k not in drop},
                            "subject": name, "sample_id": f"{name}/{entry['sample_id']}",
                            "shard": "x-00000.tfrecord"})  # the manifest lists what it holds
    records.write_shard(str(out_dir / "x-00000.tfrecord"), examples)
    fields = [f for f in manifest.get("fields", ()) if f not in drop]
    (out_dir / "manifest.json").write_text(json.dumps({
        **manifest, "samples": samples, "fields": fields, "shards": ["x-00000.tfrecord"],
        "shard_samples": {"x-00000.tfrecord": len(samples)}}))
    return out_dir


def test_fold_by_database_leaves_one_database_out(records_3_subjects, tmp_path):
    composite = relabelled(records_3_subjects, tmp_path / "composite", {
        "sub01": ["casme2_sub01"], "sub02": ["smic_s2"], "sub03": ["samm_006"]})
    results = loso.train_loso(composite, tmp_path / "run", tiny("ststnet", fold_by="database",
                                                               epochs=1, augment=False),
                              folds=["smic", "samm"])
    assert set(results["per_fold"]) == {"smic", "samm"}  # the casme2 fold is the same code
    assert results["num_samples"] == 6 and results["model"]["fold_by"] == "database"
    split = json.loads((tmp_path / "run" / "folds" / "smic" / "split.json").read_text())
    assert split["test"] == ["smic_s2"]
    assert sorted(split["train"] + split["validation"]) == ["casme2_sub01", "samm_006"]
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()[1:]
    assert {r.split(",")[1] for r in rows if r.split(",")[2] == "samm"} == {"samm_006"}


def test_database_folds_hold_every_subject_of_their_database(records_3_subjects, tmp_path):
    two = relabelled(records_3_subjects, tmp_path / "two", {
        "sub01": ["casme2_a", "smic_d"], "sub02": ["casme2_b"], "sub03": ["smic_c"]})
    results = loso.train_loso(two, tmp_path / "run", tiny("ststnet", fold_by="database",
                                                         epochs=1, augment=False), folds=["smic"])
    assert set(results["per_fold"]) == {"smic"} and results["per_fold"]["smic"]["num_samples"] == 6
    split = json.loads((tmp_path / "run" / "folds" / "smic" / "split.json").read_text())
    assert split["test"] == ["smic_c", "smic_d"]
    assert sorted(split["train"] + split["validation"]) == ["casme2_a", "casme2_b"]
    assert split["train"] and split["validation"]  # subject-held-out inside the other database


def manifest_of(*subjects):
    return {"samples": [{"subject": s, "label_name": "x"} for s in subjects]}


def test_fold_groups():
    assert loso.fold_groups(manifest_of("b", "a", "a"), "subject") == {"a": ["a"], "b": ["b"]}
    assert loso.fold_groups(manifest_of("smic_1", "samm_2", "casme2_3", "smic_4"),
                            "database") == {"casme2": ["casme2_3"], "samm": ["samm_2"],
                                            "smic": ["smic_1", "smic_4"]}
    with pytest.raises(loso.TrainingError, match="at least 2 databases; all 3 subjects are of smic"):
        loso.fold_groups(manifest_of("smic_1", "smic_2", "smic_3"), "database")
    with pytest.raises(loso.TrainingError, match="2 subject.s. have none: sub01, sub02"):
        loso.fold_groups(manifest_of("sub01", "sub02", "smic_3"), "database")
    with pytest.raises(loso.TrainingError, match="testing on smic leaves 1 subject"):
        loso.fold_groups(manifest_of("smic_1", "smic_2", "samm_3"), "database")


def test_a_model_reading_a_field_the_clip_path_cannot_make_is_refused(tmp_path):
    from tscnn_tf import spot
    model = models.get("lbptop_svm").make(3)
    model.save(tmp_path / "model.keras")
    exported = ExportedModel(tmp_path / "model.keras", metadata={"class_names": ["a", "b", "c"],
                                                                 "params": {}})
    assert "lbptop" in predict.clip_fields()  # made for a clip when the model reads it
    predict.check_model_inputs(exported)
    spot.make_recogniser(exported)
    with pytest.raises(ArtifactError, match="reads lbptop, which the clip path of spot does not "
                                            "make .it makes flow."):
        exported.require(("flow",), "the clip path of spot")
    with pytest.raises(ArtifactError, match="reads lbptop, which the features of this clip"):
        exported({"flow_raw": np.zeros((48, 48, 4))})


def test_lbptop_svm_scales_the_histograms_before_its_margins():
    """Unscaled (values averaging 1/59) the shared SGD hardly moved the SVM: 58 % on the main
    command's LOSO; times 4 it trains (77.8 %)."""
    model = models.get("lbptop_svm").make(3)
    assert model.get_layer("histogram_scale").scale == 4.0
    x = np.full((1, model.inputs[0].shape[-1]), 1 / 59, np.float32)
    margins = model.get_layer("svm_margins")
    assert np.allclose(keras_margins(model, x), 4 * x @ margins.kernel.numpy() + margins.bias.numpy(),
                       atol=1e-5)


def keras_margins(model, x):
    import keras
    return keras.Model(model.inputs, model.get_layer("svm_margins").output)(x).numpy()


def test_the_printed_result_names_the_model():
    """`train` prints the model's name, not the TSCNN's streams, for another model."""
    from tscnn_tf import experiment
    results = {"warnings": [], "accuracy": 0.5, "f1_macro": 0.5, "uf1": 0.5, "uar": 0.5,
               "num_samples": 4, "fingerprint": "x"}
    for name, label in (("ststnet", "ststnet"), ("tscnn", "L+S+T")):
        config = config_lib.ExperimentConfig(train=config_lib.TrainConfig(model=name))
        line = experiment.report({"results": results, "export": None}, config, Path("w"))
        assert line.splitlines()[0].startswith(label + " "), line


@pytest.mark.parametrize("sweep", [None, "model"])
def test_bad_model_settings_are_refused_before_the_feature_stage(tmp_path, monkeypatch, sweep):
    """A setting the model does not take is refused before the database is read or any clip
    extracted (it used to surface only in the LOSO, after the feature stage)."""
    from tscnn_tf import experiment

    def refuse(*args, **kwargs):
        raise AssertionError("the feature stage ran")
    monkeypatch.setattr(experiment, "read_database", refuse)
    monkeypatch.setattr(experiment.ef, "extract_features", refuse)
    config = config_lib.ExperimentConfig(
        data=config_lib.DataConfig(db="custom", data_dir=str(tmp_path)),
        train=tiny("ststnet", model_settings=("dropuot=0.3",)),
        run=config_lib.RunConfig(sweep=sweep, sweep_values=("ststnet",) if sweep else None))
    with pytest.raises(loso.TrainingError, match="ststnet takes no dropuot"):
        experiment.run(config, tmp_path / "run")
