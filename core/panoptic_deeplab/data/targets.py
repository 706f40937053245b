"""Training targets of Panoptic-DeepLab from a panoptic label (deeplab2 sample_generator semantics).

The label is ``semantic * label_divisor + instance``. A thing pixel with instance 0 is *crowd*.
Targets are computed on the augmented crop, so centers belong to the visible part of an instance.

* center: the mass center (mean pixel row/column) rounded half-to-even (``tf.round``); a Gaussian
  ``exp(-d^2 / (2 sigma^2))`` is drawn in a ``(6 sigma + 3)``-wide window around it (peak 1 at the
  window's middle, zero beyond) and overlapping Gaussians combine by max.
* offsets ``[H, W, 2]`` as (dy, dx) = integer center - pixel coordinate, zero off instances.
* semantic weight 1, ``small_instance_weight`` on pixels of instances smaller than
  ``small_instance_area`` pixels, and 0 on ignore pixels (the semantic loss ignores them anyway).
* center weight 1 on every pixel that is neither crowd nor ignore (stuff included).
* offset weight 1 on non-crowd thing pixels.

Runs inside ``tf.data`` (pure TensorFlow) and eagerly on NumPy arrays. The Gaussians are written
with ``tensor_scatter_nd_max`` inside each instance's window only, so the cost does not grow with
image size times instance count.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def gaussian_window(sigma: float) -> tf.Tensor:
    """The ``(6 sigma + 3)`` square Gaussian stamp, 1.0 at index ``3 sigma + 1``."""
    size = int(round(6 * sigma + 3))
    mid = int(round(3 * sigma + 1))
    r = tf.range(size, dtype=tf.float32) - mid
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    return tf.exp(-d2 / (2.0 * sigma * sigma))


def make_targets(
    panoptic,
    *,
    thing_class_ids: Sequence[int],
    label_divisor: int,
    ignore_label: int,
    sigma: float = 8.0,
    small_instance_area: int = 4096,
    small_instance_weight: float = 3.0,
) -> dict[str, tf.Tensor]:
    """Targets for one ``[H, W]`` panoptic label (int tensor or NumPy array).

    Returns ``semantic`` (int32 [H, W]), ``center_heatmap`` (float32 [H, W]), ``offsets``
    (float32 [H, W, 2], dy then dx), ``semantic_weights``, ``center_weights`` and
    ``offset_weights`` (float32 [H, W]). Pass ``small_instance_weight=1.0`` to disable the
    small-instance re-weighting.
    """
    panoptic = tf.cast(tf.convert_to_tensor(panoptic), tf.int32)
    shape = tf.shape(panoptic)
    height, width = shape[0], shape[1]
    things = tf.constant(list(thing_class_ids) or [-1], tf.int32)

    # Work per segment (distinct panoptic value), then spread to pixels with one gather: this keeps
    # the number of full-image passes small, which is what costs at 1025x2049.
    flat = tf.reshape(panoptic, [-1])
    ids, segment_of_pixel = tf.unique(flat)
    num_segments = tf.shape(ids)[0]
    rows = tf.reshape(tf.broadcast_to(tf.range(height, dtype=tf.int64)[:, None], shape), [-1])
    cols = tf.reshape(tf.broadcast_to(tf.range(width, dtype=tf.int64)[None, :], shape), [-1])
    area = tf.math.unsorted_segment_sum(tf.ones_like(rows), segment_of_pixel, num_segments)
    sum_y = tf.math.unsorted_segment_sum(rows, segment_of_pixel, num_segments)
    sum_x = tf.math.unsorted_segment_sum(cols, segment_of_pixel, num_segments)
    # float64 keeps the mean exact for any realistic image, so halves round to even reliably.
    area_f = tf.cast(area, tf.float64)
    center_y = tf.cast(tf.round(tf.cast(sum_y, tf.float64) / area_f), tf.int32)
    center_x = tf.cast(tf.round(tf.cast(sum_x, tf.float64) / area_f), tf.int32)

    seg_semantic = ids // label_divisor
    seg_is_thing = tf.reduce_any(seg_semantic[:, None] == things[None, :], axis=-1)
    seg_is_ignore = tf.equal(seg_semantic, ignore_label)
    seg_is_crowd = seg_is_thing & tf.equal(ids % label_divisor, 0)
    seg_is_instance = seg_is_thing & ~seg_is_crowd & ~seg_is_ignore
    seg_is_small = seg_is_instance & (area < small_instance_area)
    seg_semantic_weight = tf.where(seg_is_small, tf.cast(small_instance_weight, tf.float32), 1.0)
    seg_semantic_weight = tf.where(seg_is_ignore, 0.0, seg_semantic_weight)
    seg_center_weight = tf.cast(~seg_is_crowd & ~seg_is_ignore, tf.float32)
    seg_offset_weight = tf.cast(seg_is_instance, tf.float32)
    table = tf.stack(
        [
            tf.cast(center_y, tf.float32) * seg_offset_weight,
            tf.cast(center_x, tf.float32) * seg_offset_weight,
            seg_semantic_weight,
            seg_center_weight,
            seg_offset_weight,
        ],
        axis=-1,
    )  # [segments, 5]
    per_pixel = tf.reshape(tf.gather(table, segment_of_pixel), [height, width, 5])

    # Offsets: center - pixel on instance pixels, 0 elsewhere (all values are integers).
    offset_weights = per_pixel[..., 4]
    grid = tf.cast(
        tf.stack([tf.reshape(rows, shape), tf.reshape(cols, shape)], axis=-1), tf.float32
    )
    offsets = per_pixel[..., 0:2] - grid * offset_weights[..., None]

    # Center heatmap: stamp each instance's window, clipped to the image, combined by max.
    stamp = gaussian_window(sigma)
    size = stamp.shape[0]
    mid = int(round(3 * sigma + 1))
    centers = tf.stack(
        [tf.boolean_mask(center_y, seg_is_instance), tf.boolean_mask(center_x, seg_is_instance)], -1
    )  # [K, 2]
    delta = tf.range(size, dtype=tf.int32) - mid
    num_centers = tf.shape(centers)[0]
    win_y = tf.broadcast_to(
        centers[:, 0, None, None] + delta[None, :, None], [num_centers, size, size]
    )
    win_x = tf.broadcast_to(
        centers[:, 1, None, None] + delta[None, None, :], [num_centers, size, size]
    )
    values = tf.broadcast_to(stamp[None], [num_centers, size, size])
    inside = (win_y >= 0) & (win_y < height) & (win_x >= 0) & (win_x < width)
    indices = tf.stack([tf.boolean_mask(win_y, inside), tf.boolean_mask(win_x, inside)], -1)
    heatmap = tf.tensor_scatter_nd_max(
        tf.zeros([height, width], tf.float32), indices, tf.boolean_mask(values, inside)
    )

    semantic = panoptic // label_divisor
    semantic_weights = per_pixel[..., 2]
    center_weights = per_pixel[..., 3]

    return {
        "semantic": semantic,
        "center_heatmap": heatmap,
        "offsets": offsets,
        "semantic_weights": semantic_weights,
        "center_weights": center_weights,
        "offset_weights": offset_weights,
    }
