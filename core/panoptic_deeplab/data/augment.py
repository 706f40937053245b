"""Image + panoptic-label augmentation in TensorFlow (deeplab2 input_preprocessing semantics).

Images are float32 ``[H, W, 3]`` in 0..255, labels int32 ``[H, W]``. Random ops are stateless and
take a ``seed`` (int32/int64 ``[2]`` tensor), so a pipeline is reproducible for a seed.
"""

from __future__ import annotations

import tensorflow as tf

IMAGE_PAD_VALUE = 127.5  # zero after the model's (x - 127.5) / 127.5 normalisation


def scale_values(min_scale: float, max_scale: float, step: float) -> list[float]:
    """The discrete scale set ``linspace(min, max, int((max - min) / step + 1))``."""
    if step <= 0 or max_scale <= min_scale:
        return [float(min_scale)]
    count = int(round((max_scale - min_scale) / step + 1))  # round: 1.5/0.1 is 14.999...
    return (
        [min_scale + (max_scale - min_scale) * k / (count - 1) for k in range(count)]
        if count > 1
        else [min_scale]
    )


def resize_pair(image, label, size):
    """Image bilinear with ``align_corners=True``, label nearest neighbour (also corner-aligned)."""
    # The raw ops are what tf.compat.v1.image.resize_* call, without their deprecation warning.
    size = tf.cast(size, tf.int32)
    image = tf.raw_ops.ResizeBilinear(
        images=image[None], size=size, align_corners=True, half_pixel_centers=False
    )[0]
    label = tf.raw_ops.ResizeNearestNeighbor(
        images=label[None, ..., None], size=size, align_corners=True, half_pixel_centers=False
    )[0, ..., 0]
    return image, label


def random_scale(image, label, scales, seed):
    """Resize both by a scale drawn uniformly from ``scales``; new size = int(size * scale)."""
    if len(scales) == 1 and scales[0] == 1.0:
        return image, label
    index = tf.random.stateless_uniform([], seed, 0, len(scales), dtype=tf.int32)
    scale = tf.gather(tf.constant(scales, tf.float32), index)
    size = tf.cast(tf.cast(tf.shape(image)[:2], tf.float32) * scale, tf.int32)
    return resize_pair(image, label, size)


def resize_to_range(image, label, min_size: int, max_size: int):
    """Resize so the short side is ``min_size`` unless the long side would exceed ``max_size``,
    in which case the long side becomes ``max_size`` (0: no limit; deeplab2 ``resize_to_range``)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    short, long = tf.reduce_min(shape), tf.reduce_max(shape)
    factor = tf.constant(1.0)
    if min_size:
        factor = min_size / short
    if max_size:
        factor = tf.where(long * factor > max_size, max_size / long, factor)
    size = tf.cast(tf.round(shape * factor), tf.int32)
    return resize_pair(image, label, size)


def pad_pair(image, label, target_hw, offset_yx, label_pad_value):
    """Pad to ``target_hw``, content at ``offset_yx``: image 127.5, label ``label_pad_value``."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    pads = [
        [offset_yx[0], target_hw[0] - h - offset_yx[0]],
        [offset_yx[1], target_hw[1] - w - offset_yx[1]],
    ]
    image = tf.pad(image, pads + [[0, 0]], constant_values=IMAGE_PAD_VALUE)
    label = tf.pad(label, pads, constant_values=label_pad_value)
    return image, label


def random_pad_and_crop(image, label, crop_hw, label_pad_value, seed):
    """Pad to at least ``crop_hw`` at a random offset, then crop ``crop_hw`` at a random offset."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    target = tf.stack([tf.maximum(h, crop_hw[0]), tf.maximum(w, crop_hw[1])])
    pad_y = tf.random.stateless_uniform([], seeds[0], 0, target[0] - h + 1, dtype=tf.int32)
    pad_x = tf.random.stateless_uniform([], seeds[1], 0, target[1] - w + 1, dtype=tf.int32)
    crop_y = tf.random.stateless_uniform(
        [], seeds[2], 0, target[0] - crop_hw[0] + 1, dtype=tf.int32
    )
    crop_x = tf.random.stateless_uniform(
        [], seeds[3], 0, target[1] - crop_hw[1] + 1, dtype=tf.int32
    )
    # Same result as padding then cropping, without materialising the padded (possibly 2x scaled)
    # image: slice the part of the original inside the crop window, then pad only that.
    top, left = crop_y - pad_y, crop_x - pad_x  # crop window origin in original coordinates
    y0, x0 = tf.maximum(top, 0), tf.maximum(left, 0)
    y1, x1 = tf.minimum(top + crop_hw[0], h), tf.minimum(left + crop_hw[1], w)
    image, label = image[y0:y1, x0:x1], label[y0:y1, x0:x1]
    return pad_pair(
        image, label, tf.constant(crop_hw, tf.int32), [y0 - top, x0 - left], label_pad_value
    )


def random_flip(image, label, seed):
    """Horizontal flip of both with probability 0.5."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    label = tf.cond(flip, lambda: label[:, ::-1], lambda: label)
    return image, label


def eval_pad(image, label, crop_hw, label_pad_value):
    """Pad at the bottom/right to ``crop_hw``; an image larger than the crop is an error."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    checks = [
        tf.debugging.assert_less_equal(
            tf.stack([h, w]),
            tf.constant(crop_hw, tf.int32),
            message="image larger than dataset.crop_size; raise crop_size or set "
            "min/max_resize_value",
        )
    ]
    with tf.control_dependencies(checks):
        return pad_pair(image, label, tf.constant(crop_hw, tf.int32), [0, 0], label_pad_value)
