"""ResNet-50 and ResNet-50-beta as in deeplab2 (docs/method.md §1).

* No max-pool: the stride moves into the first block of stage 2.
* Each stage puts its stride in the first 3x3 conv of its first block (ResNet v1.5); the
  projection shortcut (a 1x1 conv with the block's stride) exists where the channel count changes.
* Output stride 16: stage 5 keeps stride 1 and its 3x3 convs dilate by 2, except in its first
  block, which keeps dilation 1 (deeplab2's ``BlockGroup`` rule: a block dilates by its nominal
  input stride over the output stride, so the first block of a stage sees the stride before it).
* ``resnet50_beta`` replaces the 7x7 stem by the inception stem (3x3/2 64, 3x3 64, 3x3 128).
* Widths as deeplab2's ``axial_resnet``: ``width`` scales the stages (``round(c * width)``,
  at least 8), ``stem_width`` the stem (``round(64 * w)`` for the 7x7 stem, ``int(c * w)`` for the
  inception stem); ``stem_width=None`` uses ``width``.

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


def bottleneck(x, filters: int, *, stride: int, dilation: int, norm: NormFactory, name: str):
    shortcut = x
    if x.shape[-1] != 4 * filters:
        shortcut = conv_bn_act(
            x, 4 * filters, 1, strides=stride, norm=norm, act=None, name=f"{name}_0"
        )
    elif stride > 1:  # same width, stride 2: deeplab2 subsamples the identity
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_subsample")(x)
    y = conv_bn_act(x, filters, 1, norm=norm, name=f"{name}_1")
    y = conv_bn_act(
        y, filters, 3, strides=stride, dilation_rate=dilation, norm=norm, name=f"{name}_2"
    )
    y = conv_bn_act(y, 4 * filters, 1, norm=norm, act=None, name=f"{name}_3")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def stem(x, variant: str, width: float, norm: NormFactory):
    if variant == "resnet50":
        return conv_bn_act(x, int(round(64 * width)), 7, strides=2, norm=norm, name="conv1")
    if variant == "resnet50_beta":
        x = conv_bn_act(x, int(64 * width), 3, strides=2, norm=norm, name="stem1")
        x = conv_bn_act(x, int(64 * width), 3, norm=norm, name="stem2")
        x = conv_bn_act(x, int(128 * width), 3, norm=norm, act=None, name="stem3")
        return keras.layers.ReLU(name="stem_relu")(x)
    raise ValueError(f"unknown ResNet variant {variant!r}")


def build(
    inputs,
    *,
    output_stride: int,
    width: float,
    norm: NormFactory,
    variant: str = "resnet50",
    stem_width: float | None = None,
) -> dict:
    x = stem(inputs, variant, width if stem_width is None else stem_width, norm)  # stride 2
    endpoints = {"res1": x}
    for stage, (blocks, filters) in enumerate(zip(BLOCKS, FILTERS), start=2):
        input_stride = 2 ** (stage - 1)  # the stage's input stride in the plain network
        stride = 2 if input_stride < output_stride else 1
        for block in range(1, blocks + 1):
            nominal = input_stride if block == 1 else 2 * input_stride
            x = bottleneck(
                x,
                scaled(filters, width),
                stride=stride if block == 1 else 1,
                dilation=max(1, nominal // output_stride),
                norm=norm,
                name=f"conv{stage}_block{block}",
            )
        endpoints[f"res{stage}"] = x
    return endpoints
