"""Trainable-parameter counts against the authors' (deeplab2's deeplab_test.py, method.md §1)."""

from __future__ import annotations

import keras
import pytest

from panoptic_deeplab.config import load_config
from panoptic_deeplab.model.builder import build_model


def trainable_params(model: keras.Model) -> int:
    return int(sum(keras.ops.size(w) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def resnet50_os32():
    """Built once for two tests: a full-size build costs seconds. A small static input: parameter
    counts do not depend on it."""
    return build_model(
        load_config("cityscapes/resnet50_os32"), num_classes=19, input_shape=(65, 129)
    )


def test_resnet50_os32_matches_deeplab2_for_19_classes(resnet50_os32):
    assert trainable_params(resnet50_os32) == 54_973_702


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("cityscapes/resnet50_beta_os32", 55_097_478),
        ("cityscapes/mobilenet_v3_large_os16", 18_236_534),
        ("cityscapes/mobilenet_v3_small_os16", 10_484_198),
    ],
)
def test_trainable_params_match_deeplab2_for_19_classes(preset, expected):
    model = build_model(load_config(preset), num_classes=19, input_shape=(65, 129))
    assert trainable_params(model) == expected


def test_resnet50_backbone_alone_matches_deeplab2(resnet50_os32):
    assert trainable_params(resnet50_os32.get_layer("backbone")) == 23_508_032


def test_coco_xception71_is_within_2_percent_of_the_paper():
    model = build_model(load_config("coco/xception71_os16"), num_classes=134, input_shape=(65, 65))
    assert abs(trainable_params(model) - 46.7e6) / 46.7e6 < 0.02


def test_coco_class_count_comes_from_the_dataset_spec():
    model = build_model(load_config("coco/resnet50_os16"), input_shape=(65, 65))
    assert model.output["semantic_logits"].shape[-1] == 134
    assert trainable_params(model) == 55_003_257  # docs/method.md §1, R50 COCO (134 classes)
