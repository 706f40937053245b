"""Losses against hand-worked values (docs/method.md §3)."""

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.config import LossConfig
from panoptic_deeplab.losses import (
    PanopticLoss,
    center_loss,
    normalized_mean,
    offset_loss,
    semantic_loss,
)


def _np_ce(labels, logits):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


def test_constant_error_two_gives_mse_four_and_l1_two():
    target = np.zeros((2, 5, 7, 1), np.float32)
    weights = np.ones((2, 5, 7), np.float32)
    assert float(center_loss(target, target + 2.0, weights)) == pytest.approx(4.0)
    off_t = np.zeros((2, 5, 7, 2), np.float32)
    assert float(offset_loss(off_t, off_t - 2.0, weights)) == pytest.approx(2.0)


def test_offset_l1_is_the_mean_over_the_two_channels():
    target = np.zeros((1, 2, 2, 2), np.float32)
    pred = np.zeros_like(target)
    pred[..., 0] = 3.0  # y error 3, x error 0 -> per pixel 1.5
    assert float(offset_loss(target, pred, np.ones((1, 2, 2)))) == pytest.approx(1.5)


def test_normalisation_divides_by_non_zero_count_per_image_then_batch_mean():
    # image 0: weights on 2 of 4 pixels, error 1 -> 2/2 = 1; image 1: one pixel error 3 -> 9/1 = 9.
    target = np.zeros((2, 2, 2, 1), np.float32)
    pred = np.zeros_like(target)
    pred[0] = 1.0
    pred[1, 0, 0, 0] = 3.0
    weights = np.array([[[1, 1], [0, 0]], [[1, 1], [1, 1]]], np.float32)
    assert float(center_loss(target, pred, weights)) == pytest.approx((1.0 + 9.0) / 2)


def test_all_zero_weights_give_zero_not_nan():
    target = np.zeros((1, 3, 3, 1), np.float32)
    assert float(center_loss(target, target + 5, np.zeros((1, 3, 3)))) == 0.0


def test_top_k_half_is_the_mean_of_the_top_half():
    values = np.array([[1.0, 7.0, 3.0, 5.0, 2.0, 8.0, 4.0, 6.0]], np.float32)
    assert float(normalized_mean(tf.constant(values), 0.5)) == pytest.approx((8 + 7 + 6 + 5) / 4)


def test_top_k_counts_only_non_zero_kept_entries():
    values = np.array([[0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 2.0]], np.float32)
    # k = 4 keeps {6, 2, 0, 0}: sum 8 over 2 non-zero entries.
    assert float(normalized_mean(tf.constant(values), 0.5)) == pytest.approx(4.0)


def test_semantic_loss_matches_numpy_cross_entropy_and_top_k():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 4, 5))
    weights = np.ones((2, 4, 5), np.float32)
    weights[0, 0, :] = 3.0
    ce = _np_ce(labels, logits) * weights
    k = round(0.2 * 20)
    expected = np.mean([np.sort(ce[b].ravel())[::-1][:k].mean() for b in range(2)])
    got = semantic_loss(labels, logits, weights, top_k_percent=0.2)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # top_k 1.0 is the plain weighted mean over non-zero entries
    got_all = semantic_loss(labels, logits, weights, top_k_percent=1.0)
    assert float(got_all) == pytest.approx(np.mean([ce[b].mean() for b in range(2)]), rel=1e-5)


def test_ignore_pixels_contribute_nothing():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(1, 4, 4))
    labels[0, :2] = (
        255  # top half is void, with weight 1 on purpose: the label alone must exclude it
    )
    weights = np.ones((1, 4, 4), np.float32)
    base = float(semantic_loss(labels, logits, weights, top_k_percent=1.0))
    wild = logits.copy()
    wild[0, :2] = 100.0 * rng.normal(size=(2, 4, 3))
    assert float(semantic_loss(labels, wild, weights, top_k_percent=1.0)) == pytest.approx(base)
    ce = _np_ce(np.where(labels == 255, 0, labels), logits)[0, 2:]
    assert base == pytest.approx(ce.mean(), rel=1e-5)
    # and the gradient at void pixels is exactly zero
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = semantic_loss(labels, x, weights, top_k_percent=0.2)
    grad = tape.gradient(loss, x).numpy()
    assert np.all(grad[0, :2] == 0) and np.any(grad[0, 2:] != 0)


def test_total_is_weighted_sum():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(1, 4, 4))
    ones = np.ones((1, 4, 4), np.float32)
    targets = {
        "semantic": labels,
        "semantic_weights": ones,
        "center_heatmap": np.zeros((1, 4, 4, 1), np.float32),
        "center_weights": ones,
        "offsets": np.zeros((1, 4, 4, 2), np.float32),
        "offset_weights": ones,
    }
    outputs = {
        "semantic_logits": logits,
        "center_heatmap": np.full((1, 4, 4, 1), 2.0, np.float32),
        "offsets": np.full((1, 4, 4, 2), -2.0, np.float32),
    }
    out = PanopticLoss(LossConfig())(targets, outputs)
    ce = float(semantic_loss(labels, logits, ones, top_k_percent=0.2))
    assert float(out["center_loss"]) == pytest.approx(4.0)
    assert float(out["offset_loss"]) == pytest.approx(2.0)
    assert float(out["loss"]) == pytest.approx(ce + 200 * 4 + 0.01 * 2, rel=1e-6)


def test_mixed_precision_predictions_are_reduced_in_float32():
    target = np.zeros((1, 64, 64, 1), np.float32)
    pred = tf.cast(tf.fill([1, 64, 64, 1], 300.0), tf.float16)  # 300^2 * 4096 overflows float16
    assert float(center_loss(target, pred, np.ones((1, 64, 64)))) == pytest.approx(90000.0)
