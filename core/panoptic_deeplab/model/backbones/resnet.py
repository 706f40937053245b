"""ResNet-50 and ResNet-50-beta as in deeplab2 (spec section 1.3).

* No max-pool: the stride moves into the first block of stage 2.
* Each stage puts its stride in the first 3x3 conv of its first block (ResNet v1.5); the
  projection shortcut is a strided 1x1 conv.
* Output stride 16 replaces the stride of stage 5 by dilation 2 in all its blocks.
* ``resnet50_beta`` replaces the 7x7 stem by the inception stem (3x3/2 64, 3x3 64, 3x3 128).

Layer names follow ``keras.applications.ResNet50`` (``conv2_block1_1_conv``, ``conv2_block1_1_bn``,
...), so ImageNet weights saved from it load by name (see ``model/pretrained.py``).
"""
from __future__ import annotations

import keras

from ..layers import NormFactory, conv_bn_act

BLOCKS = (3, 4, 6, 3)  # stages 2..5
FILTERS = (64, 128, 256, 512)  # bottleneck widths; stage outputs are 4x these


def scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width)))


def bottleneck(x, filters: int, *, stride: int, dilation: int, project: bool, norm: NormFactory, name: str):
    shortcut = x
    if project:
        shortcut = conv_bn_act(x, 4 * filters, 1, strides=stride, norm=norm, act=None, name=f"{name}_0")
    y = conv_bn_act(x, filters, 1, norm=norm, name=f"{name}_1")
    y = conv_bn_act(y, filters, 3, strides=stride, dilation_rate=dilation, norm=norm, name=f"{name}_2")
    y = conv_bn_act(y, 4 * filters, 1, norm=norm, act=None, name=f"{name}_3")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def stem(x, variant: str, width: float, norm: NormFactory):
    if variant == "resnet50":
        return conv_bn_act(x, scaled(64, width), 7, strides=2, norm=norm, name="conv1")
    if variant == "resnet50_beta":
        x = conv_bn_act(x, scaled(64, width), 3, strides=2, norm=norm, name="stem1")
        x = conv_bn_act(x, scaled(64, width), 3, norm=norm, name="stem2")
        x = conv_bn_act(x, scaled(128, width), 3, norm=norm, act=None, name="stem3")
        return keras.layers.ReLU(name="stem_relu")(x)
    raise ValueError(f"unknown ResNet variant {variant!r}")


def build(inputs, *, output_stride: int, width: float, norm: NormFactory, variant: str = "resnet50") -> dict:
    x = stem(inputs, variant, width, norm)  # stride 2
    endpoints = {"res1": x}
    current_stride, dilation = 2, 1
    for stage, (blocks, filters) in enumerate(zip(BLOCKS, FILTERS), start=2):
        stride = 2
        if current_stride * stride > output_stride:
            dilation *= stride  # atrous instead of striding past the output stride
            stride = 1
        current_stride *= stride
        for block in range(1, blocks + 1):
            x = bottleneck(
                x,
                scaled(filters, width),
                stride=stride if block == 1 else 1,
                dilation=dilation,
                project=block == 1,
                norm=norm,
                name=f"conv{stage}_block{block}",
            )
        endpoints[f"res{stage}"] = x
    return endpoints
