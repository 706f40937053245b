"""FusedAdam makes the same updates as Keras' Adam, with and without gradient accumulation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.training.fused_adam import FusedAdam


@pytest.mark.parametrize("accumulation", [None, 2])
def test_fused_adam_matches_keras_adam_step_by_step(accumulation):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(6)]
    finals = []
    for cls in (keras.optimizers.Adam, FusedAdam):
        weights = [keras.Variable(w) for w in start]
        schedule = keras.optimizers.schedules.PolynomialDecay(1e-2, 10, 1e-3)
        opt = cls(learning_rate=schedule, gradient_accumulation_steps=accumulation)
        opt.build(weights)

        @tf.function
        def step(g):
            opt.apply(g, weights)  # noqa: B023 - traced and called within this iteration

        history = []
        for g in grads:
            step([tf.constant(x) for x in g])
            history.append([w.numpy().copy() for w in weights])
        finals.append(history)
    for keras_step, fused_step in zip(*finals):
        for a, b in zip(keras_step, fused_step):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    assert not np.allclose(finals[1][-1][0], start[0])  # the weights did move


@pytest.mark.parametrize("loss_scale, jit", [(False, True), (True, False), (True, True)])
def test_fused_adam_under_xla_and_loss_scaling(loss_scale, jit):
    """The --xla and mixed_float16 training paths: the fused op compiles and gives Keras' result."""
    results = []
    for cls in (keras.optimizers.Adam, FusedAdam):
        weights = [keras.Variable(np.linspace(-1, 1, 16, dtype="float32").reshape(4, 4))]
        opt = cls(learning_rate=1e-2)
        opt = keras.optimizers.LossScaleOptimizer(opt) if loss_scale else opt
        opt.build(weights)

        @tf.function(jit_compile=jit)
        def step(g):
            opt.apply([g], weights)  # noqa: B023 - traced and called within this iteration

        for k in range(3):
            step(tf.fill((4, 4), 0.5 * (k + 1)))
        results.append(weights[0].numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)  # float rounding only


def test_make_adam_uses_fused_adam_only_on_a_verified_keras(monkeypatch):
    from panoptic_deeplab.training import fused_adam

    assert fused_adam.fused_adam_supported()  # the pinned Keras is a verified one
    assert type(fused_adam.make_adam(learning_rate=1e-3)) is FusedAdam
    assert not fused_adam.fused_adam_supported("3.99.0")
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    with pytest.warns(RuntimeWarning, match="Keras' own Adam"):
        optimizer = fused_adam.make_adam(learning_rate=1e-3)
    assert type(optimizer) is keras.optimizers.Adam


def test_make_adam_falls_back_when_the_private_method_is_gone(monkeypatch):
    from panoptic_deeplab.training import fused_adam

    for base in keras.optimizers.Adam.__mro__:
        if "_get_variable_index" in vars(base):
            monkeypatch.delattr(base, "_get_variable_index")
    assert not fused_adam.fused_adam_supported()
    with pytest.warns(RuntimeWarning):
        assert type(fused_adam.make_adam(learning_rate=1e-3)) is keras.optimizers.Adam
