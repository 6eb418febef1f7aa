"""Speed settings of the training loop change no result."""
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf


def _fit(steps_per_execution: int):
    import keras
    from tscnn_tf import loso, models
    from tscnn_tf.optimizer import make_optimizer
    keras.utils.set_random_seed(0)
    entry = models.get("ststnet")
    model = entry.make(3, variant="tiny")
    model.compile(make_optimizer(loso.TrainConfig()), loss=entry.loss,
                  steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x = {"flow_raw": rng.normal(0, 0.5, (90, 48, 48, 4)).astype("float32")}
    ds = tf.data.Dataset.from_tensor_slices((x, rng.integers(0, 3, 90))).shuffle(
        128, seed=0).batch(8)  # 12 steps an epoch: a partial last execution of 16
    history = model.fit(ds, epochs=2, verbose=0, validation_data=ds)
    return model.get_weights(), history.history


def test_steps_per_execution_gives_the_same_updates():
    from tscnn_tf import loso
    assert loso.STEPS_PER_EXECUTION > 1
    one, h1 = _fit(1)
    many, h2 = _fit(loso.STEPS_PER_EXECUTION)
    assert h1 == h2
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


def test_fixed_input_threads_give_the_same_batches(tmp_path):
    """The training pipeline runs without tf.data's autotuner (it slowed training steps on
    few cores); the augmented, shuffled batches of two epochs are those of TF's default."""
    from tscnn_tf import data, device_check
    records = device_check.write_records(tmp_path / "records", 3, {"a": 4, "b": 3})
    files, fields = data.record_files(records), ("flow_raw", "blocks")

    def batches(autotune):
        ds = data.make_dataset(files, 3, fields, ["sub01", "sub02"], training=True,
                               batch_size=8, seed=5, repeat=True, autotune=autotune)
        assert (ds.options().autotune.enabled is False) is (not autotune)
        return [b for b in ds.take(6)]  # 40 expanded samples: a second, reshuffled epoch

    fixed, tuned = batches(False), batches(True)
    assert any(not np.array_equal(fixed[0][1], b[1]) for b in fixed[1:])
    for (xf, yf), (xt, yt) in zip(fixed, tuned):
        np.testing.assert_array_equal(yf, yt)
        for name in fields:
            np.testing.assert_array_equal(xf[name], xt[name])


def per_fold_pipeline(files, fields, subjects, seed):
    """The training pipeline as it was before the LOSO-wide pool: each fold parsed, filtered,
    expanded x10 and cached its own subjects (in sample-id order, as since)."""
    from tscnn_tf import data
    spec = data.parse_spec(3, fields)
    wanted = tf.constant(sorted(subjects))
    ds = data.in_sample_order(
        tf.data.TFRecordDataset(files).map(lambda s: tf.io.parse_single_example(s, spec)))
    ds = ds.filter(lambda e: tf.reduce_any(tf.equal(e["subject"], wanted)))
    ds = ds.flat_map(lambda e: data.expand_x10(e, 3)).map(lambda e: data.to_model_inputs(e, fields))
    return ds.cache().shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat().batch(8)


def test_folds_drawn_from_one_pool_get_the_batches_of_their_own_pipeline(tmp_path):
    """The x10 expansion is made once per process (`data.sample_pool`) and each fold filters
    its subjects out of it: two folds in a row get, batch for batch over two epochs, what a
    pipeline of their own subjects gave; the second fold finds the pool already made."""
    from tscnn_tf import data, device_check
    records = device_check.write_records(tmp_path / "records", 4, {"a": 5, "b": 4})
    files, fields = data.record_files(records), ("flow_raw", "blocks")
    pools = []
    for test in ("sub01", "sub03"):
        subjects = [s for s in ("sub01", "sub02", "sub03", "sub04") if s != test]
        ours = data.make_dataset(files, 3, fields, subjects, training=True, batch_size=8,
                                 seed=5, repeat=True)
        pools.append(data.sample_pool(files, 3, data.field_names(fields), True))
        theirs = per_fold_pipeline(files, fields, subjects, seed=5)
        got, expected = list(ours.take(9)), list(theirs.take(9))  # into the second epoch
        assert sum(len(y) for _, y in got) == 72 and len(got) == len(expected) == 9
        for (xo, yo), (xt, yt) in zip(got, expected):
            np.testing.assert_array_equal(yo, yt)
            for name in fields:
                np.testing.assert_array_equal(xo[name], xt[name])
    assert pools[0] is pools[1]


def test_records_made_again_in_place_get_a_new_pool(tmp_path):
    """The pool is keyed by the record files' versions: records re-made where the old ones
    were (an --overwrite in the same process) are read again, not served from memory."""
    from tscnn_tf import data, device_check
    records = device_check.write_records(tmp_path / "records", 3, {"a": 3, "b": 3}, seed=0)
    files = data.record_files(records)
    first = data.sample_pool(files, 3, ("flow_raw",), False)
    before = [e["flow_raw"].numpy() for e in first]
    device_check.write_records(tmp_path / "records", 3, {"a": 3, "b": 3}, seed=1)
    second = data.sample_pool(files, 3, ("flow_raw",), False)
    assert second is not first
    after = [e["flow_raw"].numpy() for e in second]
    assert not np.array_equal(before[0], after[0])


def test_the_weight_free_front_is_split_off_where_training_begins():
    """`models.stem.split`: the flow models' derived inputs (u, v, strain, resize, min-max)
    become the stem; the core holds every variable of the model, in its order; a model whose
    first layers have weights (TSCNN) or depend on training (dropout, noise) keeps them."""
    import keras
    from tscnn_tf import models
    from tscnn_tf.models.stem import split
    ststnet = models.get("ststnet").make(3, variant="tiny")
    stem, core = split(ststnet)
    assert tuple(stem.output.shape) == (None, 28, 28, 3)
    assert [l.name for l in stem.layers][-1] == "flow_minmax"
    assert not stem.variables and core.variables == ststnet.variables
    x = {"flow_raw": np.random.default_rng(0).normal(0, 1, (4, 48, 48, 4)).astype("float32")}
    np.testing.assert_array_equal(core(stem(x)), ststnet(x))
    stem, core = split(models.get("offapexnet").make(3, variant="tiny"))
    assert [tuple(t.shape) for t in stem.outputs] == [(None, 28, 28, 1)] * 2  # u and v streams
    assert split(models.get("tscnn").make(3, variant="tiny"))[0] is None

    def user_model(first):
        x = keras.Input((8, 8, 1), name="flow")
        y = keras.layers.Conv2D(2, 3)(first(keras.layers.Rescaling(2.0)(x)))
        return keras.Model({"flow": x}, keras.layers.Dense(3)(keras.layers.Flatten()(y)))
    stem, _ = split(user_model(keras.layers.Rescaling(0.5)))
    assert [type(l).__name__ for l in stem.layers[1:]] == ["Rescaling", "Rescaling"]
    for random_layer in (keras.layers.Dropout(0.5), keras.layers.GaussianNoise(0.1)):
        stem, _ = split(user_model(random_layer))
        assert [type(l).__name__ for l in stem.layers[1:]] == ["Rescaling"]  # not past it


@pytest.mark.parametrize("name", ["ststnet", "offapexnet", "htnet"])
def test_training_the_core_on_precomputed_inputs_gives_the_whole_models_weights(
        tmp_path, monkeypatch, name):
    """A fold trained as the toolkit trains it (the stem once per sample, the core in the
    steps) ends with the weights, to the bit, of the whole model trained on the record fields;
    the checkpoints are whole models that take `flow_raw`."""
    import keras
    from tscnn_tf import data, device_check, loso
    from tscnn_tf.models import stem
    records = device_check.write_records(tmp_path / "records", 3, {"a": 4, "b": 4})
    manifest, files = data.load_manifest(records), data.record_files(records)
    config = loso.TrainConfig(model=name, variant="tiny", epochs=2, patience=9, batch_size=8,
                              learning_rate=0.05)
    plan = loso.plan_model(config, manifest)
    split = loso.fit_model(tmp_path / "split", files, manifest, ["sub01", "sub03"], ["sub02"],
                           config, plan)
    assert [t.name for t in split.inputs] == ["flow_raw"]
    monkeypatch.setattr(stem, "split", lambda model: (None, model))
    whole = loso.fit_model(tmp_path / "whole", files, manifest, ["sub01", "sub03"], ["sub02"],
                           config, plan)
    for a, b in zip(split.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    for path in ("split", "whole"):
        assert json.loads((tmp_path / path / "state.json").read_text())["epoch"] == 2
    last = [keras.saving.load_model(tmp_path / p / "last.keras") for p in ("split", "whole")]
    for a, b in zip(*(m.optimizer.variables for m in last)):  # momentum, iterations
        np.testing.assert_array_equal(a, b)


def test_the_same_records_in_another_order_give_the_same_batches(tmp_path):
    """The feature stage writes records in the order its workers finish them, so two
    extractions of one database can hold them in other orders: the pool sorts them by sample
    id, and a fold's batches (so its weights) depend on the records' content alone."""
    import shutil
    from tscnn_tf import data, device_check
    records = device_check.write_records(tmp_path / "records", 3, {"a": 5, "b": 4})
    [shard] = data.record_files(records)
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(shard)]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(records / "manifest.json", other / "manifest.json")
    with tf.io.TFRecordWriter(str(other / Path(shard).name)) as writer:
        for k in np.random.default_rng(3).permutation(len(serialized)):
            writer.write(serialized[k])
    assert [r.numpy() for r in tf.data.TFRecordDataset(data.record_files(other))] != serialized

    def batches(folder):
        ds = data.make_dataset(data.record_files(folder), 3, ("flow_raw",), ["sub01", "sub02"],
                               training=True, batch_size=8, seed=4, keep_meta=True)
        return [(b["sample_id"].numpy().tolist(), b["flow_raw"].numpy()) for b in ds]
    for (ids, x), (other_ids, other_x) in zip(batches(records), batches(other), strict=True):
        assert ids == other_ids
        np.testing.assert_array_equal(x, other_x)
