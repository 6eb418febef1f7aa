"""A user's builder is part of its run by its code, not its name alone: folds trained with other
code are never resumed or pooled into the same run."""
import dataclasses
import importlib
import sys
import textwrap

import pytest

from tscnn_tf import data, device_check, loso, models

BUILDER = textwrap.dedent('''
    import keras

    def net(num_classes, flow_raw):
        x = keras.Input(flow_raw, name="flow_raw")
        y = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model({"flow_raw": x}, keras.layers.Dense(num_classes, activation="softmax")(y))
''')


def fresh_import(name):
    """The module as a new process would import it (and the hash a new process would read)."""
    sys.modules.pop(name, None)
    models._CODE.pop(name, None)
    importlib.invalidate_caches()


def test_the_run_identity_holds_a_user_builders_code(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    records = device_check.write_records(tmp_path / "records", 3, {"a": 3, "b": 3})
    manifest = data.load_manifest(records)
    config = dataclasses.replace(loso.TrainConfig(), model="code_mod:net")
    (tmp_path / "code_mod.py").write_text(BUILDER)
    fresh_import("code_mod")
    first = loso.run_identity(manifest, config)
    assert len(first["train"]["model_code"]) == 12
    assert loso.run_identity(manifest, config) == first  # read once a process
    (tmp_path / "code_mod.py").write_text(BUILDER.replace("GlobalAveragePooling2D",
                                                          "GlobalMaxPooling2D"))
    assert loso.run_identity(manifest, config) == first  # an edit during a run splits nothing
    fresh_import("code_mod")
    edited = loso.run_identity(manifest, config)
    assert edited["train"]["model_code"] != first["train"]["model_code"]
    assert loso.fingerprint(edited) != loso.fingerprint(first)
    (tmp_path / "run").mkdir()
    loso.claim_run_dir(tmp_path / "run", first, None, False, loso.LOSO_FILES)
    with pytest.raises(loso.TrainingError, match="model_code"):  # the same workdir, new code
        loso.claim_run_dir(tmp_path / "run", edited, None, False, loso.LOSO_FILES)
    plan = loso.plan_model(config, manifest)
    assert loso.model_record(config, plan)["code"] == edited["train"]["model_code"]
    # Registry models: their code is the toolkit's; their identity is as before.
    ststnet = dataclasses.replace(config, model="ststnet")
    assert "model_code" not in loso.run_identity(manifest, ststnet)["train"]
    assert "code" not in loso.model_record(ststnet, loso.plan_model(ststnet, manifest))
    fresh_import("code_mod")


NEEDS_LBPTOP = BUILDER + textwrap.dedent('''
    def reads_lbptop(num_classes, lbptop):
        x = keras.Input(lbptop, name="lbptop")
        return keras.Model({"lbptop": x}, keras.layers.Dense(num_classes, activation="softmax")(x))

    def open_ended(num_classes, flow_raw, **settings):
        return net(num_classes, flow_raw)
''')


def test_a_user_builder_is_checked_before_any_training(tmp_path, monkeypatch):
    """A setting it does not take is refused (unless it takes **kwargs); a field it reads that
    the records lack is refused by the same early check every model gets (a sweep's too)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "check_mod.py").write_text(NEEDS_LBPTOP)
    fresh_import("check_mod")
    with pytest.raises(loso.TrainingError, match="check_mod:net takes no foo; it takes flow_raw"):
        loso.check_model_settings(loso.TrainConfig(model="check_mod:net",
                                                   model_settings=("foo=1",)))
    loso.check_model_settings(loso.TrainConfig(model="check_mod:open_ended",
                                               model_settings=("foo=1",)))
    records = device_check.write_records(tmp_path / "records", 3, {"a": 3, "b": 3})
    manifest = data.load_manifest(records)
    manifest["fields"] = [f for f in manifest["fields"] if f != "lbptop"]
    with pytest.raises(models.ModelError, match="reads lbptop"):
        loso.plan_model(loso.TrainConfig(model="check_mod:reads_lbptop"), manifest)
    fresh_import("check_mod")
