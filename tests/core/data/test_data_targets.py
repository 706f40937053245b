"""make_targets against hand-computed cases (docs/method.md §2)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.data.targets import make_targets

DIV, IGNORE = 1000, 255
ROAD, PERSON, CAR = 0, 1, 2  # PERSON and CAR are things


def targets(label, **kw):
    kw.setdefault("thing_class_ids", (PERSON, CAR))
    out = make_targets(np.asarray(label, np.int32), label_divisor=DIV, ignore_label=IGNORE, **kw)
    return {k: v.numpy() for k, v in out.items()}


def g(d2, sigma=8.0):
    return math.exp(-d2 / (2 * sigma * sigma))


def test_single_instance_peak_offsets_and_weights():
    label = np.full((20, 30), ROAD * DIV)
    label[2:5, 5:8] = PERSON * DIV + 1  # 3x3 square, mass center (3, 6)
    t = targets(label)
    heat = t["center_heatmap"]
    assert heat[3, 6] == pytest.approx(1.0)
    assert np.unravel_index(heat.argmax(), heat.shape) == (3, 6)
    assert heat[3, 7] == pytest.approx(g(1))
    assert heat[5, 8] == pytest.approx(g(4 + 4))
    # Offsets point from the pixel to the center: (dy, dx) = center - pixel.
    assert tuple(t["offsets"][2, 5]) == (1.0, 1.0)
    assert tuple(t["offsets"][4, 7]) == (-1.0, -1.0)
    assert tuple(t["offsets"][3, 6]) == (0.0, 0.0)
    assert np.all(t["offsets"][label == ROAD * DIV] == 0)
    np.testing.assert_array_equal(t["semantic"], label // DIV)
    np.testing.assert_array_equal(t["offset_weights"], (label != ROAD * DIV).astype(np.float32))
    np.testing.assert_array_equal(t["center_weights"], np.ones_like(heat))  # stuff included
    # 9 px < 4096: weight 3 on the instance, 1 on stuff.
    np.testing.assert_array_equal(t["semantic_weights"], np.where(label == ROAD * DIV, 1.0, 3.0))


def test_mass_center_rounds_half_to_even():
    label = np.zeros((12, 12), np.int32)
    label[0:2, 2:4] = CAR * DIV + 1  # mean (0.5, 2.5) -> (0, 2)
    label[6:8, 8:10] = CAR * DIV + 2  # mean (6.5, 8.5) -> (6, 8)
    label[9:12, 0:2] = CAR * DIV + 3  # rows 9..11 mean 10, cols mean 0.5 -> (10, 0)
    t = targets(label)
    assert t["center_heatmap"][0, 2] == pytest.approx(1.0)
    assert t["center_heatmap"][6, 8] == pytest.approx(1.0)
    assert t["center_heatmap"][10, 0] == pytest.approx(1.0)
    assert tuple(t["offsets"][1, 3]) == (-1.0, -1.0)
    assert tuple(t["offsets"][7, 9]) == (-1.0, -1.0)
    assert tuple(t["offsets"][11, 1]) == (-1.0, -1.0)


def test_center_is_mass_center_not_box_center():
    label = np.zeros((10, 20), np.int32)
    label[4, 0:10] = PERSON * DIV + 7
    label[5, 0] = PERSON * DIV + 7  # 11 px: mean x = 45/11 = 4.09 -> 4, mean y = 45/11 -> 4
    t = targets(label)
    assert t["center_heatmap"][4, 4] == pytest.approx(1.0)
    assert tuple(t["offsets"][5, 0]) == (-1.0, 4.0)


def test_crowd_has_no_center_and_no_weights():
    label = np.full((16, 16), ROAD * DIV)
    label[4:8, 4:8] = CAR * DIV  # thing instance 0 = crowd
    t = targets(label)
    assert t["center_heatmap"].max() == 0.0
    crowd = label == CAR * DIV
    assert np.all(t["center_weights"][crowd] == 0) and np.all(t["center_weights"][~crowd] == 1)
    assert np.all(t["offset_weights"] == 0) and np.all(t["offsets"] == 0)
    assert np.all(t["semantic"][crowd] == CAR)
    assert np.all(t["semantic_weights"] == 1.0)  # crowd is not a small instance


def test_ignore_pixels_get_no_weight():
    label = np.full((8, 8), IGNORE * DIV)
    label[:, :4] = ROAD * DIV
    t = targets(label)
    ignore = label == IGNORE * DIV
    assert np.all(t["semantic"][ignore] == IGNORE)
    for key in ("semantic_weights", "center_weights", "offset_weights"):
        assert np.all(t[key][ignore] == 0)
    assert np.all(t["center_weights"][~ignore] == 1)


def test_small_instance_threshold_and_disable():
    label = np.zeros((10, 10), np.int32)
    label[0:3, 0:3] = PERSON * DIV + 1  # 9 px: not < 9
    label[6:8, 6:8] = PERSON * DIV + 2  # 4 px: < 9
    t = targets(label, small_instance_area=9, small_instance_weight=5.0)
    assert np.all(t["semantic_weights"][0:3, 0:3] == 1.0)
    assert np.all(t["semantic_weights"][6:8, 6:8] == 5.0)
    t = targets(label, small_instance_area=9, small_instance_weight=1.0)
    assert np.all(t["semantic_weights"] == 1.0)


def test_overlapping_gaussians_combine_by_max_and_window_truncates():
    label = np.zeros((5, 80), np.int32)
    label[2, 10] = CAR * DIV + 1
    label[2, 14] = CAR * DIV + 2
    t = targets(label)
    heat = t["center_heatmap"]
    assert heat[2, 12] == pytest.approx(g(4))  # distance 2 from both: max, not the sum
    assert heat[2, 11] == pytest.approx(g(1))  # 1 from the first, 3 from the second
    assert heat[2, 14 + 25] == pytest.approx(g(625))  # the window reaches +-25 px (3 sigma + 1)
    assert heat[2, 14 + 26] == 0.0


def test_sigma_changes_window():
    label = np.zeros((3, 40), np.int32)
    label[1, 0] = CAR * DIV + 1
    t = targets(label, sigma=2.0)
    assert t["center_heatmap"][1, 7] == pytest.approx(g(49, 2.0))  # 3*2+1 = 7
    assert t["center_heatmap"][1, 8] == 0.0


def test_graph_mode_matches_eager():
    rng = np.random.default_rng(0)
    label = np.repeat(np.repeat(rng.integers(0, 4, (6, 9)), 7, 0), 7, 1) * DIV
    label += (label // DIV >= 1) * rng.integers(0, 3, label.shape) * 0 + (label // DIV >= 1)
    fn = tf.function(
        lambda x: make_targets(x, thing_class_ids=(1, 2), label_divisor=DIV, ignore_label=IGNORE)
    )
    graph = fn(tf.constant(label, tf.int32))
    eager = targets(label)
    for key, value in graph.items():
        np.testing.assert_allclose(value.numpy(), eager[key])
