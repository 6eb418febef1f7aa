"""The optimiser every model trains with: SGD with Nesterov momentum (Section III.B), its update
done by one fused TensorFlow kernel per variable.

Keras's SGD computes the same update in five element-wise passes over each weight (two
multiplies and a subtraction for the momentum, again for the weight, then the add). For a model
whose step is bound by memory traffic (OFF-ApexNet's fully connected layers hold 2.6 M weights)
those passes took about a quarter of the op time of a step in a profile on 2 CPU cores (the step
itself: 1.02-1.18x faster fused, `bench` models.fused_update). TensorFlow's
`ResourceApplyKerasMomentum` does them in one pass:

    m <- momentum * m - lr * g;   w <- w + momentum * m - lr * g   (Nesterov)

the formula of `keras.optimizers.SGD(nesterov=True)`. Trained side by side, TSCNN, OFF-ApexNet,
HTNet and LBP-TOP's SVM end with the same weights and slots to the bit (tests/test_optimizer.py);
STSTNet's differ in the last bit of a few batch-norm slots (6e-8 at most after 40 steps):
rounding, not another formula. Where the kernel does not apply (another backend, a variable
without a TensorFlow resource handle, momentum 0), the Keras update runs.
"""
from __future__ import annotations

import keras

from tscnn_tf.config import TrainConfig


@keras.saving.register_keras_serializable("tscnn_tf")
class NesterovSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD(momentum=..., nesterov=True)` with a fused update (see the module
    docstring); the same arguments, config and saved slots, so checkpoints resume with it."""

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        kwargs.pop("nesterov", None)
        super().__init__(learning_rate, momentum=momentum, nesterov=True, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        m = self.momentums[self._get_variable_index(variable)] if self.momentum else None
        handles = [getattr(v, "handle", None) for v in (variable, m)]
        if keras.backend.backend() != "tensorflow" or None in handles:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=handles[0], accum=handles[1], lr=tf.cast(learning_rate, variable.dtype),
            grad=tf.cast(gradient, variable.dtype), momentum=tf.cast(self.momentum, variable.dtype),
            use_locking=False, use_nesterov=True)


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """The shared optimiser: learning rate, momentum and decay from `config` (decay_mode "lr":
    inverse-time decay of the learning rate; "weight": decoupled weight decay)."""
    if config.decay_mode == "lr":
        lr = keras.optimizers.schedules.InverseTimeDecay(config.learning_rate, 1, config.decay)
        return NesterovSGD(lr, momentum=config.momentum)
    if config.decay_mode == "weight":
        return NesterovSGD(config.learning_rate, momentum=config.momentum,
                           weight_decay=config.decay)
    raise ValueError("decay_mode must be 'lr' or 'weight'")
