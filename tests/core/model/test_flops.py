"""Analytic multiply-add counting against hand-computed layers."""

from __future__ import annotations

import keras
import pytest

from panoptic_deeplab.config import load_config
from panoptic_deeplab.model.builder import build_model
from panoptic_deeplab.model.flops import count_mult_adds


def test_conv_depthwise_dense_counts():
    x = inputs = keras.Input((10, 12, 8))
    x = keras.layers.Conv2D(16, 3, padding="same")(x)  # 10*12 * 3*3*8 * 16
    x = keras.layers.Conv2D(4, 3, strides=2, padding="valid")(x)  # 4*5 * 3*3*16 * 4
    x = keras.layers.DepthwiseConv2D(5, padding="same", depth_multiplier=2)(x)  # 4*5 * 5*5*4*2
    x = keras.layers.Dense(3)(x)  # 4*5 * 8 * 3
    x = keras.layers.ReLU()(x)  # not counted
    model = keras.Model(inputs, x)
    assert count_mult_adds(model) == 120 * 72 * 16 + 20 * 144 * 4 + 20 * 200 + 20 * 24


def test_decoders_and_heads_of_r50_os32_match_the_spec():
    # Spec 1.5: ASPP + decoders + heads of R50 OS32 at 1025x2049 take 97.7 G multiply-adds.
    from panoptic_deeplab.model.flops import mult_adds_by_part

    model = build_model(
        load_config("cityscapes/resnet50_os32"), num_classes=19, input_shape=(1025, 2049)
    )
    parts = mult_adds_by_part(model)
    assert (parts["semantic"] + parts["instance"]) / 1e9 == pytest.approx(97.7, abs=0.05)
