"""Keras' Adam with the update of each variable done by TensorFlow's fused ``ResourceApplyAdam``.

Why: Keras 3 builds the Adam update from about ten small ops per variable, and tracing them one
variable at a time took ~10 s of every ``pdl train`` start for the 234 variables of a small model
(39 ms each). One fused op per variable halves that. The arithmetic is Keras' own (and TF's
documented Adam): ``alpha = lr sqrt(1 - beta2^t) / (1 - beta1^t)``, ``m += (g - m)(1 - beta1)``,
``v += (g^2 - v)(1 - beta2)``, ``w -= alpha m / (sqrt(v) + epsilon)``; the slots are Keras' own
variables, so checkpoints are unchanged. Anything the fused op does not cover (sparse gradients,
amsgrad) takes Keras' path.

It reaches into Keras' private members (``_get_variable_index``, ``_momentums``, ``_velocities``,
a variable's ``_value``), so :func:`make_adam` uses it only on the Keras versions it was verified
on (``VERIFIED_KERAS``, by tests/core/training/test_fused_adam.py) and falls back to stock Adam
elsewhere: slower to trace, same update.
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

# Keras minor versions whose Adam internals FusedAdam was checked against, step by step.
VERIFIED_KERAS = ("3.15",)


def _handle(variable):
    return getattr(variable, "_value", variable).handle  # a Keras variable wraps a tf.Variable


class FusedAdam(keras.optimizers.Adam):
    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def fused_adam_supported(version: str | None = None) -> bool:
    """Whether this Keras is one FusedAdam was verified on, with the private method it calls
    (``_momentums`` and ``_velocities`` appear only when the optimizer is built)."""
    version = keras.__version__ if version is None else version
    minor = ".".join(version.split(".")[:2])
    return minor in VERIFIED_KERAS and callable(
        getattr(keras.optimizers.Adam, "_get_variable_index", None)
    )


def make_adam(**kwargs) -> keras.optimizers.Adam:
    """FusedAdam where verified, else Keras' own Adam (with a warning saying why start-up is slower)."""
    if fused_adam_supported():
        return FusedAdam(**kwargs)
    warnings.warn(
        f"Keras {keras.__version__} is not a version FusedAdam was verified on ({', '.join(VERIFIED_KERAS)}); "
        "training uses Keras' own Adam: the same update, a slower trace at start-up",
        RuntimeWarning,
        stacklevel=2,
    )
    return keras.optimizers.Adam(**kwargs)
