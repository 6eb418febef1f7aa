"""Speed settings of the training loop change no result."""
import numpy as np
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
    expanded x10 and cached its own subjects."""
    from tscnn_tf import data
    spec = data.parse_spec(3, fields)
    wanted = tf.constant(sorted(subjects))
    ds = tf.data.TFRecordDataset(files).map(lambda s: tf.io.parse_single_example(s, spec))
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
