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
