"""ASPP image pooling: window from the train crop, tiling, clamping, static == dynamic."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.model.aspp import WindowAveragePooling, pool_size_for_crop


def test_pool_size_from_train_crop():
    assert pool_size_for_crop((1025, 2049), 32) == (33, 65)
    assert pool_size_for_crop((1025, 2049), 16) == (65, 129)
    assert pool_size_for_crop((641, 641), 16) == (41, 41)


def numpy_box_mean(x, wh, ww):
    _, h, w, _ = x.shape
    out = np.zeros((1, h - wh + 1, w - ww + 1, x.shape[-1]), "float64")
    for i in range(h - wh + 1):
        for j in range(w - ww + 1):
            out[0, i, j] = x[0, i : i + wh, j : j + ww].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize(
    "shape, pool, window",
    [
        ((1, 5, 7, 2), (2, 3), (2, 3)),  # tiled pooling
        ((1, 5, 7, 2), (5, 7), (5, 7)),  # window == map: global pooling
        ((1, 3, 7, 2), (5, 4), (3, 4)),  # map shorter than the window in H: global along H only
        ((1, 2, 2, 2), (5, 7), (2, 2)),  # map smaller than the window: global pooling
    ],
)
def test_window_pooling_static_and_dynamic(shape, pool, window):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    expected = numpy_box_mean(x, *window)
    layer = WindowAveragePooling(pool)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    dynamic = tf.function(
        layer.call, input_signature=[tf.TensorSpec([None, None, None, shape[-1]], tf.float32)]
    )
    np.testing.assert_allclose(dynamic(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert layer.compute_output_shape(shape) == expected.shape


def test_global_pooling_without_window():
    x = np.arange(12, dtype="float32").reshape(1, 2, 3, 2)
    out = np.asarray(WindowAveragePooling(None)(x))
    np.testing.assert_allclose(out, [[[[5.0, 6.0]]]])
