"""Colour maps, the offset wheel and blending, checked on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.visualize import (
    blend,
    distinct_colors,
    draw_centers,
    heatmap_to_color,
    instance_color,
    instance_map_to_color,
    offset_color_wheel,
    offsets_to_color,
    panoptic_overlay,
    panoptic_to_color,
    segment_boundaries,
    semantic_to_color,
)

SPEC = get_dataset_spec("synthetic")


def test_semantic_colors_use_the_spec_table():
    semantic = np.array([[0, 5], [255, 7]])
    out = semantic_to_color(semantic, SPEC.colors, ignore_label=255)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert tuple(out[0, 0]) == (128, 64, 128)  # road, Cityscapes colour
    assert tuple(out[0, 1]) == (220, 20, 60)  # person
    assert tuple(out[1, 0]) == (0, 0, 0)  # void
    assert tuple(out[1, 1]) == (0, 60, 100)  # bus


def test_panoptic_colors_stuff_things_and_void():
    d = SPEC.label_divisor
    person = 5
    panoptic = np.array([[0 * d, person * d + 1, person * d + 2], [255 * d, person * d + 1, 4 * d]])
    out = panoptic_to_color(panoptic, SPEC.colors, label_divisor=d, ignore_label=255)
    assert tuple(out[0, 0]) == SPEC.colors[0]  # stuff keeps its class colour
    assert tuple(out[1, 2]) == SPEC.colors[4]
    assert tuple(out[1, 0]) == (0, 0, 0)  # void
    first, second = tuple(out[0, 1]), tuple(out[0, 2])
    assert first == tuple(out[1, 1])  # the same instance has one colour
    assert first != second  # two instances of a class differ
    for color in (first, second):
        assert np.all(np.abs(np.subtract(color, SPEC.colors[person])) <= 60)


def test_instance_color_is_stable_and_zero_is_the_class_color():
    assert instance_color((10, 20, 30), 0) == (10, 20, 30)
    assert instance_color((100, 100, 100), 7) == instance_color((100, 100, 100), 7)
    colors = {instance_color((128, 128, 128), i) for i in range(1, 30)}
    assert len(colors) == 29


def test_distinct_colors_and_instance_map():
    palette = distinct_colors(20)
    assert palette.shape == (20, 3) and len({tuple(c) for c in palette}) == 20
    out = instance_map_to_color(np.array([[0, 3, 3], [9, 0, 3]]))
    assert tuple(out[0, 0]) == (0, 0, 0) == tuple(out[1, 1])
    assert tuple(out[0, 1]) == tuple(out[0, 2]) == tuple(out[1, 2]) != tuple(out[1, 0])


def test_blend():
    image = np.full((2, 2, 3), 100, np.uint8)
    overlay = np.full((2, 2, 3), 201, np.uint8)
    np.testing.assert_array_equal(blend(image, overlay, 0.0), image)
    np.testing.assert_array_equal(blend(image, overlay, 1.0), overlay)
    half = blend(image, overlay, 0.5)
    assert np.all(np.abs(half.astype(int) - 150.5) <= 0.5)
    masked = blend(image, overlay, 1.0, mask=np.array([[True, False], [False, False]]))
    assert tuple(masked[0, 0]) == (201, 201, 201) and tuple(masked[1, 1]) == (100, 100, 100)
    with pytest.raises(ValueError, match="alpha"):
        blend(image, overlay, 1.5)


def test_offset_colors_directions():
    offsets = np.array(
        [[[0.0, 5.0], [0.0, -5.0]], [[0.0, 0.0], [0.0, 2.5]]], np.float32
    )  # (dy, dx)
    out = offsets_to_color(offsets, max_magnitude=5.0)
    assert tuple(out[0, 0]) == (255, 0, 0)  # pointing right: red
    assert tuple(out[0, 1]) == (0, 255, 255)  # pointing left: cyan
    assert tuple(out[1, 0]) == (255, 255, 255)  # no offset: white
    assert tuple(out[1, 1]) == (255, 127, 127) or tuple(out[1, 1]) == (
        255,
        128,
        128,
    )  # half length: pale red
    down = offsets_to_color(np.array([[[5.0, 0.0]]]), max_magnitude=5.0)[0, 0]
    assert down[1] == 255 and down[2] == 0 and 120 <= down[0] <= 135  # 90 degrees: chartreuse
    masked = offsets_to_color(offsets, mask=np.array([[True, False], [True, True]]))
    assert tuple(masked[0, 1]) == (0, 0, 0)


def test_offset_wheel_is_the_legend_of_offsets_to_color():
    wheel = offset_color_wheel(65)
    assert wheel.shape == (65, 65, 3)
    assert tuple(wheel[32, 32]) == (255, 255, 255)  # center: no offset
    assert tuple(wheel[32, 64]) == (255, 0, 0)  # right edge: full length to the right
    assert tuple(wheel[0, 0]) == (255, 255, 255)  # outside the disc
    # Any pixel inside shows the colour of the offset from the center to it.
    y, x = 10, 45
    expected = offsets_to_color(np.array([[[y - 32.0, x - 32.0]]]), max_magnitude=32.0)[0, 0]
    # (OpenCV's vectorised and scalar HSV conversions may differ by one level.)
    assert np.abs(wheel[y, x].astype(int) - expected).max() <= 1


def test_heatmap_colors_go_from_blue_to_red():
    out = heatmap_to_color(np.array([[0.0, 1.0, 2.0]]), vmin=0.0, vmax=1.0)
    low, high, clipped = out[0]
    assert low[2] > 100 and low[0] == 0  # blue end of JET
    assert high[0] > 100 and high[2] == 0  # red end
    np.testing.assert_array_equal(high, clipped)


def test_segment_boundaries():
    labels = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    edge = segment_boundaries(labels)
    expected = np.array([[False, True, True], [True, True, True], [True, True, True]])
    np.testing.assert_array_equal(edge, expected)
    assert not segment_boundaries(np.zeros((4, 4))).any()


def test_panoptic_overlay_and_centers():
    image = np.zeros((6, 8, 3), np.uint8)
    d = SPEC.label_divisor
    panoptic = np.zeros((6, 8), np.int64)
    panoptic[:, 4:] = 6 * d + 1
    out = panoptic_overlay(image, panoptic, SPEC.colors, label_divisor=d, alpha=1.0)
    assert tuple(out[0, 0]) == SPEC.colors[0]
    assert tuple(out[0, 3]) == (255, 255, 255)  # outline
    dots = draw_centers(image, [(3, 2)], color=(0, 255, 0), radius=2)
    assert tuple(dots[3, 2]) == (0, 255, 0)
    assert tuple(dots[0, 7]) == (0, 0, 0)
