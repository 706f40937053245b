"""Corner-aligned bilinear resizing and offset rescaling against hand-computed cases."""

from __future__ import annotations

import numpy as np

from panoptic_deeplab.model.layers import ResizeLike, ResizeOffsetsLike, resize_align_corners


def test_corner_aligned_bilinear_2x2_to_3x3():
    x = np.array([[0.0, 1.0], [2.0, 3.0]], "float32").reshape(1, 2, 2, 1)
    out = np.asarray(resize_align_corners(x, (3, 3)))[0, :, :, 0]
    # Corners map onto corners; the new samples sit halfway between the old ones.
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]])


def test_corner_aligned_bilinear_1d_ramp_3_to_9():
    x = np.array([0.0, 4.0, 12.0], "float32").reshape(1, 1, 3, 1)
    out = np.asarray(resize_align_corners(x, (1, 9)))[0, 0, :, 0]
    # Sample i of 9 sits at source position i * (3-1)/(9-1) = i/4.
    np.testing.assert_allclose(out, [0, 1, 2, 3, 4, 6, 8, 10, 12])


def test_resize_like_takes_the_reference_size():
    x = np.arange(6, dtype="float32").reshape(1, 2, 3, 1)
    ref = np.zeros((1, 3, 5, 7), "float32")
    out = np.asarray(ResizeLike()([x, ref]))
    assert out.shape == (1, 3, 5, 1)
    np.testing.assert_allclose(
        out[0, :, :, 0], [[0, 0.5, 1, 1.5, 2], [1.5, 2, 2.5, 3, 3.5], [3, 3.5, 4, 4.5, 5]]
    )


def test_offsets_are_rescaled_per_axis():
    # 3x5 -> 5x17: dy scales by (5-1)/(3-1) = 2, dx by (17-1)/(5-1) = 4.
    offsets = np.zeros((1, 3, 5, 2), "float32")
    offsets[..., 0] = 1.5  # dy
    offsets[..., 1] = -2.0  # dx
    out = np.asarray(ResizeOffsetsLike()([offsets, np.zeros((1, 5, 17, 1), "float32")]))
    assert out.shape == (1, 5, 17, 2)
    np.testing.assert_allclose(out[..., 0], 3.0)
    np.testing.assert_allclose(out[..., 1], -8.0)


def test_offset_rescale_keeps_a_pixel_pointing_at_the_same_place():
    # A stride-4 pixel at x=1 pointing at x=3 (dx=2) sits at x=4 and points at x=12 after 5 -> 17.
    offsets = np.zeros((1, 1, 5, 2), "float32")
    offsets[0, 0, :, 1] = np.array([3, 2, 1, 0, -1], "float32")  # every pixel points at x=3
    out = np.asarray(ResizeOffsetsLike()([offsets, np.zeros((1, 1, 17, 1), "float32")]))[0, 0, :, 1]
    np.testing.assert_allclose(np.arange(17) + out, 12.0)
