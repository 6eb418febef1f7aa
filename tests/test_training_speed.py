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

