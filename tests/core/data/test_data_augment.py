"""Augmentation ops against direct (slow) formulations of the same deeplab2 steps."""

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.data import augment


def naive_pad_then_crop(image, label, crop_hw, pad_value, seed):
    """Pad the whole image at the random offset, then crop: the textbook order."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    h, w = image.shape[:2]
    th, tw = max(h, crop_hw[0]), max(w, crop_hw[1])
    draw = lambda s, hi: int(tf.random.stateless_uniform([], s, 0, hi, dtype=tf.int32))  # noqa: E731
    py, px = draw(seeds[0], th - h + 1), draw(seeds[1], tw - w + 1)
    cy, cx = draw(seeds[2], th - crop_hw[0] + 1), draw(seeds[3], tw - crop_hw[1] + 1)
    img = np.full((th, tw, 3), 127.5, np.float32)
    lab = np.full((th, tw), pad_value, np.int32)
    img[py : py + h, px : px + w], lab[py : py + h, px : px + w] = image, label
    return img[cy : cy + crop_hw[0], cx : cx + crop_hw[1]], lab[
        cy : cy + crop_hw[0], cx : cx + crop_hw[1]
    ]


@pytest.mark.parametrize("size", [(20, 30), (9, 40), (40, 9), (5, 6)])
def test_random_pad_and_crop_equals_pad_then_crop(size):
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (*size, 3)).astype(np.float32)
    label = rng.integers(0, 5000, size).astype(np.int32)
    for k in range(5):
        seed = tf.constant([k, 11], tf.int64)
        img, lab = augment.random_pad_and_crop(
            tf.constant(image), tf.constant(label), (12, 17), 255000, seed
        )
        ref_img, ref_lab = naive_pad_then_crop(image, label, (12, 17), 255000, seed)
        np.testing.assert_array_equal(img.numpy(), ref_img)
        np.testing.assert_array_equal(lab.numpy(), ref_lab)


def test_resize_pair_align_corners_and_nearest():
    image = tf.constant(
        np.arange(3, dtype=np.float32).reshape(1, 3, 1) * np.ones((1, 1, 3), np.float32)
    )
    label = tf.constant([[0, 1000, 2000]], tf.int32)
    img, lab = augment.resize_pair(image, label, [1, 5])
    # align_corners: output x maps to input x * (3 - 1) / (5 - 1) = 0, 0.5, 1, 1.5, 2.
    np.testing.assert_allclose(img.numpy()[0, :, 0], [0, 0.5, 1, 1.5, 2])
    assert lab.numpy()[0, 0] == 0 and lab.numpy()[0, 2] == 1000 and lab.numpy()[0, 4] == 2000
    assert lab.dtype == tf.int32


def test_random_scale_draws_from_the_set():
    image, label = tf.zeros([10, 20, 3]), tf.zeros([10, 20], tf.int32)
    sizes = set()
    for k in range(40):
        img, lab = augment.random_scale(
            image, label, [0.5, 1.0, 2.0], tf.constant([k, 0], tf.int64)
        )
        assert img.shape[:2] == lab.shape
        sizes.add(tuple(img.shape[:2]))
    assert sizes == {(5, 10), (10, 20), (20, 40)}


def test_flip_moves_image_and_label_together():
    image = tf.constant(
        np.arange(6, dtype=np.float32).reshape(1, 6, 1) * np.ones((1, 1, 3), np.float32)
    )
    label = tf.constant([[0, 1, 2, 3, 4, 5]], tf.int32)
    flips = 0
    for k in range(20):
        img, lab = augment.random_flip(image, label, tf.constant([k, 3], tf.int64))
        np.testing.assert_array_equal(img.numpy()[0, :, 0], lab.numpy()[0].astype(np.float32))
        flips += int(lab.numpy()[0, 0] == 5)
    assert 0 < flips < 20
