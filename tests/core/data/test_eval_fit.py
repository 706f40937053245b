"""Images that evaluation mode would pad to a smaller crop are refused before training starts."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from panoptic_deeplab.config import load_config
from panoptic_deeplab.data import augment
from panoptic_deeplab.data.eval_fit import check_eval_inputs_fit, resized_size
from panoptic_deeplab.datasets.readers import Example
from panoptic_deeplab.errors import ConfigError


@pytest.mark.parametrize("min_size,max_size", [(0, 0), (641, 0), (0, 640), (641, 640), (100, 120)])
def test_resized_size_is_the_pipelines(min_size, max_size):
    for h, w in [(480, 640), (640, 427), (1024, 2048), (37, 1000), (641, 641)]:
        image, label = tf.zeros([h, w, 3]), tf.zeros([h, w], tf.int32)
        if min_size or max_size:
            image, _ = augment.resize_to_range(image, label, min_size, max_size)
        assert resized_size(h, w, min_size, max_size) == tuple(image.shape[:2]), (h, w)


def _example(tmp_path, name, h, w):
    path = tmp_path / name
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    return Example(image_id=name, image_path=str(path), label_path="")


def test_the_first_image_too_large_is_named_with_the_fixes(tmp_path):
    examples = [_example(tmp_path, "small.png", 40, 60), _example(tmp_path, "tall.png", 70, 50),
                Example(image_id="gone", image_path=str(tmp_path / "gone.png"), label_path="")]
    config = load_config("synthetic/tiny", {"dataset.crop_size": [65, 65]})
    with pytest.raises(ConfigError, match=r"tall\.png: the image is 70x50, larger than dataset\.crop_size 65x65; "
                                          r"periodic evaluation pads .*--set dataset\.crop_size=\[97,65\]"):
        check_eval_inputs_fit(examples, config, "periodic evaluation")
    check_eval_inputs_fit(examples[:1] + examples[2:], config, "periodic evaluation")  # unreadable: not ours to report
    shrunk = load_config("synthetic/tiny", {"dataset.crop_size": [65, 65], "dataset.max_resize_value": 60})
    check_eval_inputs_fit(examples, shrunk, "periodic evaluation")  # 70x50 -> 60x43 fits
