"""Size rules (resize, cap, pad) and input conversion, without running a network."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.errors import ImageError
from panoptic_deeplab.inference import InferencePipeline, as_rgb_float, scaled_size
from tests.core.inference.inference_fakes import SPEC, fake_config, fake_model


def pipeline(config, **kwargs):
    return InferencePipeline(fake_model(), config, SPEC, **kwargs)


def test_cityscapes_sizes_pad_by_one():
    p = pipeline(fake_config(crop=(1025, 2049), output_stride=32))
    assert p.network_size(1024, 2048) == (1024, 2048)
    assert p.padded_size(1024, 2048) == (1025, 2049)
    # Smaller images are padded to the crop (deeplab2 evaluates at the crop size).
    assert p.padded_size(65, 97) == (1025, 2049)


def test_minimal_padding_to_k_os_plus_one():
    p = pipeline(fake_config(output_stride=16), pad_to="minimal")
    assert p.padded_size(65, 97) == (65, 97)  # already 4*16+1, 6*16+1
    assert p.padded_size(66, 98) == (81, 113)
    assert p.padded_size(1, 1) == (17, 17)
    assert p.padded_size(17, 16) == (17, 17)


def test_crop_padding_is_per_side():
    p = pipeline(fake_config(crop=(33, 49), output_stride=16))
    assert p.padded_size(20, 30) == (33, 49)
    assert p.padded_size(20, 60) == (33, 65)


def test_coco_resize_to_range():
    p = pipeline(fake_config(crop=(641, 641), min_resize=641, max_resize=641))
    # 480x640: short side to 641 gives 641x854, then the long side fits 641: floor(641 * 641 / 854).
    assert p.network_size(480, 640) == (481, 641)
    assert p.network_size(640, 480) == (641, 481)
    assert p.network_size(641, 641) == (641, 641)
    assert p.padded_size(481, 641) == (641, 641)


def test_max_side_cap():
    p = pipeline(fake_config(), max_side=100)
    assert p.network_size(50, 100) == (50, 100)
    assert p.network_size(300, 150) == (100, 50)
    assert p.network_size(300, 150, cap=False) == (300, 150)
    default = pipeline(fake_config(crop=(1025, 2049)))
    assert default.max_side == 2049
    assert default.network_size(3000, 4000) == (1536, 2049)  # floor(3000 * 2049 / 4000)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(config=dict(crop=(641, 641), min_resize=641, max_resize=641)),
        dict(config=dict(crop=(33, 49)), max_side=150),
        dict(config=dict(crop=(1025, 2049), output_stride=32), pad_to="minimal"),
    ],
)
def test_graph_sizes_match_python_sizes(kwargs):
    p = pipeline(fake_config(**kwargs.pop("config")), **kwargs)
    for h, w in [(1, 1), (2, 3), (17, 200), (480, 640), (333, 1001), (1024, 2048), (641, 77)]:
        nh, nw = p.network_size_tf(tf.constant(h), tf.constant(w))
        ph, pw = p.padded_size_tf(nh, nw)
        assert (int(nh), int(nw)) == p.network_size(h, w)
        assert (int(ph), int(pw)) == p.padded_size(*p.network_size(h, w))


def test_scaled_size_is_deeplab2s_rule():
    assert scaled_size(1025, 0.5) == 513
    assert scaled_size(1025, 1.75) == 1793
    assert scaled_size(33, 0.75) == 25


def test_as_rgb_float_dtypes():
    rgb = np.array([[[0, 128, 255]]], np.uint8)
    np.testing.assert_array_equal(as_rgb_float(rgb), [[[0, 128, 255]]])
    np.testing.assert_allclose(as_rgb_float(rgb.astype(np.uint16) * 257), [[[0, 128, 255]]])
    np.testing.assert_allclose(as_rgb_float(np.array([[[0.0, 0.5, 1.0]]])), [[[0, 127.5, 255]]])
    np.testing.assert_allclose(
        as_rgb_float(np.array([[[0.0, 100.0, 300.0]]], np.float32)), [[[0, 100, 255]]]
    )
    np.testing.assert_allclose(as_rgb_float(np.array([[[1, 2, 3]]], np.int64)), [[[1, 2, 3]]])
    gray = as_rgb_float(np.array([[7, 9]], np.uint8))
    assert gray.shape == (1, 2, 3) and gray[0, 1].tolist() == [9, 9, 9]
    rgba = as_rgb_float(np.array([[[1, 2, 3, 0]]], np.uint8))
    assert rgba.tolist() == [[[1, 2, 3]]]
    assert as_rgb_float(np.array([[True]])).tolist() == [[[255, 255, 255]]]
    assert as_rgb_float(np.zeros((1, 1, 1), np.uint8)).shape == (1, 1, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.full((2, 2, 3), 300, np.int32), "outside 0..255"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (np.zeros((2, 2, 3), np.complex64), "dtype"),
    ],
)
def test_as_rgb_float_rejects(bad, message):
    with pytest.raises(ImageError, match=message):
        as_rgb_float(bad)


def test_as_rgb_float_reads_files(tmp_path):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.full((3, 4, 3), 9, np.uint8)).save(path)
    assert as_rgb_float(path).shape == (3, 4, 3)
    assert as_rgb_float(str(path))[0, 0, 0] == 9.0
