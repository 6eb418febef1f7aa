"""The fused Nesterov update: Keras's SGD to the bit, one kernel per variable, resumable."""
import numpy as np
import pytest

from tscnn_tf import optimizer
from tscnn_tf.config import TrainConfig


def _train(make_opt, model_name="offapexnet", steps=6):
    import keras
    from tscnn_tf import device_check, models
    keras.utils.set_random_seed(0)
    entry = models.get(model_name)
    model = entry.make(3, variant="tiny")
    model.compile(make_opt(), loss=entry.loss, steps_per_execution=4)
    inputs = device_check.random_inputs(device_check.model_inputs(model), 8 * steps)
    labels = np.random.default_rng(0).integers(0, 3, 8 * steps)
    model.fit(inputs, labels, batch_size=8, epochs=2, verbose=0, shuffle=False)
    return model


def _keras_sgd(config):
    import keras
    if config.decay_mode == "lr":
        lr = keras.optimizers.schedules.InverseTimeDecay(config.learning_rate, 1, config.decay)
        return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True)
    return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, nesterov=True,
                                weight_decay=config.decay)


@pytest.mark.parametrize("decay_mode", ["lr", "weight"])
def test_the_fused_update_trains_the_weights_keras_sgd_trains(decay_mode):
    """Same weights and momentum slots to the bit after 12 updates of OFF-ApexNet, with the
    learning-rate decay and with weight decay (the two `--decay_mode`s)."""
    config = TrainConfig(decay_mode=decay_mode, learning_rate=0.05)
    fused = _train(lambda: optimizer.make_optimizer(config))
    plain = _train(lambda: _keras_sgd(config))
    assert isinstance(fused.optimizer, optimizer.NesterovSGD)
    assert type(plain.optimizer).__name__ == "SGD"
    ours = [v.numpy() for v in fused.weights + fused.optimizer.variables]
    theirs = [v.numpy() for v in plain.weights + plain.optimizer.variables]
    assert len(ours) == len(theirs)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    assert not np.array_equal(ours[0], _train(lambda: _keras_sgd(config), steps=1).weights[0]
                              .numpy())  # the comparison can fail: training moved the weights


def _fused_kernels(make_opt) -> tuple[int, int]:
    """(fused kernels in a traced update, trainable variables) of a model trained briefly."""
    import tensorflow as tf
    model = _train(make_opt, steps=1)
    variables = model.trainable_variables

    @tf.function
    def update(grads):
        model.optimizer.apply(grads, variables)

    graph = update.get_concrete_function([tf.TensorSpec(v.shape, v.dtype) for v in variables]
                                         ).graph.as_graph_def()
    ops = [node.op for node in graph.node]
    ops += [node.op for f in graph.library.function for node in f.node_def]
    return ops.count("ResourceApplyKerasMomentum"), len(variables)


def test_the_update_runs_one_fused_kernel_per_variable():
    """A traced update holds ResourceApplyKerasMomentum once per trainable variable (Keras's
    SGD, its element-wise passes instead: none)."""
    fused, variables = _fused_kernels(lambda: optimizer.make_optimizer(TrainConfig()))
    assert fused == variables > 0
    assert _fused_kernels(lambda: _keras_sgd(TrainConfig()))[0] == 0


def test_a_saved_model_resumes_with_the_fused_update(tmp_path):
    """`last.keras` keeps the optimiser (class, settings, step count and momentum slots), so a
    resumed fold goes on with the same update."""
    import keras
    from tscnn_tf import models  # noqa: F401  (registers the model's layers)
    model = _train(lambda: optimizer.make_optimizer(TrainConfig(momentum=0.8)))
    model.save(tmp_path / "last.keras")
    loaded = keras.saving.load_model(tmp_path / "last.keras")
    assert isinstance(loaded.optimizer, optimizer.NesterovSGD)
    assert loaded.optimizer.momentum == pytest.approx(0.8) and loaded.optimizer.nesterov
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 12
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_decay_mode_is_checked():
    with pytest.raises(ValueError, match="decay_mode"):
        optimizer.make_optimizer(TrainConfig(decay_mode="both"))


def test_load_model_in_a_new_process_reads_any_models_checkpoint(tmp_path):
    """`tscnn_tf.load_model` in a fresh interpreter (nothing of the package imported) reads a
    fold's checkpoint of a model built from this package's layers, optimiser included."""
    import subprocess
    import sys
    from tscnn_tf import models  # noqa: F401
    _train(lambda: optimizer.make_optimizer(TrainConfig())).save(tmp_path / "last.keras")
    code = ("import tscnn_tf; m = tscnn_tf.load_model(%r); "
            "print(type(m.optimizer).__name__, m.layers[1].__class__.__name__)"
            % str(tmp_path / "last.keras"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["NesterovSGD", "SelectChannels"]
