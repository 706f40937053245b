"""Panoptic-DeepLab losses with deeplab2's normalisation (docs/method.md §3).

total = semantic_weight * L_sem + center_weight * L_center + offset_weight * L_offset
(1.0, 200 and 0.01 in every published config), all at the input resolution.

* L_sem: per-pixel softmax cross-entropy times the pixel weight (0 on ignore pixels, 3 on small
  instances); per image keep the top k = round(top_k_percent * H * W) values, divide their sum by
  the number of non-zero values kept; then the batch mean.
* L_center: per-pixel squared error times the center weight; L_offset: per-pixel absolute error
  averaged over the (y, x) channels times the offset weight. Both: per image, sum divided by the
  number of non-zero per-pixel losses, then the batch mean.

Every function returns a float32 scalar; predictions in float16/bfloat16 (mixed precision) are cast
to float32 first so the sums do not overflow.
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

LOSS_TERMS = ("semantic_loss", "center_loss", "offset_loss")


def _per_pixel(x, batch_shape) -> tf.Tensor:
    """Reshape [B, H, W] or [B, H, W, 1] to [B, H*W] float32."""
    return tf.reshape(tf.cast(x, tf.float32), [batch_shape[0], -1])


def normalized_mean(per_pixel_loss: tf.Tensor, top_k_percent: float = 1.0) -> tf.Tensor:
    """deeplab2's reduction of a [B, N] per-pixel loss: per image keep the top k values
    (all when ``top_k_percent`` is 1), divide their sum by how many of them are non-zero
    (0 when none are), then average over the batch."""
    if not 0.0 < top_k_percent <= 1.0:
        raise ValueError(f"top_k_percent must be in (0, 1], got {top_k_percent}")
    if top_k_percent < 1.0:
        num_pixels = tf.shape(per_pixel_loss)[1]
        k = tf.cast(tf.round(top_k_percent * tf.cast(num_pixels, tf.float32)), tf.int32)
        k = tf.maximum(k, 1)
        per_pixel_loss, _ = tf.math.top_k(per_pixel_loss, k=k, sorted=False)
    total = tf.reduce_sum(per_pixel_loss, axis=1)
    count = tf.reduce_sum(tf.cast(tf.not_equal(per_pixel_loss, 0.0), tf.float32), axis=1)
    return tf.reduce_mean(tf.math.divide_no_nan(total, count))


def semantic_loss(
    labels, logits, weights, *, top_k_percent: float = 0.2, ignore_label: int = 255
) -> tf.Tensor:
    """Weighted bootstrapped softmax cross-entropy.

    labels [B, H, W] (or [B, H, W, 1]) integer train ids, ``ignore_label`` for void;
    logits [B, H, W, C]; weights [B, H, W] per-pixel weights. Pixels whose label is the ignore label
    (or any id outside [0, C)) get weight 0 whatever ``weights`` says.
    """
    logits = tf.cast(logits, tf.float32)
    shape = tf.shape(logits)
    num_classes = shape[-1]
    labels = tf.reshape(tf.cast(labels, tf.int32), shape[:3])
    valid = tf.logical_and(
        tf.logical_and(labels >= 0, labels < num_classes), tf.not_equal(labels, ignore_label)
    )
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    weights = tf.reshape(tf.cast(weights, tf.float32), shape[:3]) * tf.cast(valid, tf.float32)
    return normalized_mean(_per_pixel(ce * weights, shape), top_k_percent)


def center_loss(target, prediction, weights) -> tf.Tensor:
    """Weighted MSE of the center heatmap; target/prediction [B, H, W, 1], weights [B, H, W]."""
    prediction = tf.cast(prediction, tf.float32)
    shape = tf.shape(prediction)
    error = tf.square(_per_pixel(prediction, shape) - _per_pixel(target, shape))
    return normalized_mean(error * _per_pixel(weights, shape))


def offset_loss(target, prediction, weights) -> tf.Tensor:
    """Weighted L1 of the (y, x) offsets, averaged over the two channels; [B, H, W, 2]."""
    prediction = tf.cast(prediction, tf.float32)
    shape = tf.shape(prediction)
    error = tf.reduce_mean(tf.abs(prediction - tf.cast(target, tf.float32)), axis=-1)
    return normalized_mean(_per_pixel(error, shape) * _per_pixel(weights, shape))


class PanopticLoss:
    """The weighted sum of the three terms, configured from ``config.loss``.

    Call with the target dict of the data pipeline and the output dict of the model; returns
    ``{"loss", "semantic_loss", "center_loss", "offset_loss"}`` (terms unweighted, total weighted).
    """

    def __init__(self, loss_config, ignore_label: int = 255):
        self.semantic_weight = float(loss_config.semantic_weight)
        self.center_weight = float(loss_config.center_weight)
        self.offset_weight = float(loss_config.offset_weight)
        self.top_k_percent = float(loss_config.top_k_percent)
        self.ignore_label = int(ignore_label)

    def __call__(
        self, targets: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        sem = semantic_loss(
            targets["semantic"],
            outputs["semantic_logits"],
            targets["semantic_weights"],
            top_k_percent=self.top_k_percent,
            ignore_label=self.ignore_label,
        )
        center = center_loss(
            targets["center_heatmap"], outputs["center_heatmap"], targets["center_weights"]
        )
        offset = offset_loss(targets["offsets"], outputs["offsets"], targets["offset_weights"])
        total = (
            self.semantic_weight * sem + self.center_weight * center + self.offset_weight * offset
        )
        return {"loss": total, "semantic_loss": sem, "center_loss": center, "offset_loss": offset}
