"""Xception-71, the Panoptic-DeepLab paper's main backbone, as TF1 DeepLab defines it
(``tensorflow/models`` ``research/deeplab/core/xception.py``, ``xception_71``; not in deeplab2).

* Root: 3x3/2 conv to 32 and 3x3 conv to 64, each with BN and ReLU.
* Xception units of three 3x3 separable convs. Each separable conv is depthwise -> BN -> pointwise
  -> BN (DeepLab's variant with BN between depthwise and pointwise); the unit's stride sits in its
  third separable conv (no max-pool). The ReLU comes *before* each separable conv, except in the
  last unit, which puts ReLU after both BNs instead (``activation_fn_in_separable_conv``).
* Skip connections: a 1x1 conv + BN (with the unit's stride) in the entry flow and exit block 1,
  identity in the middle flow, none in the last unit.
* Blocks (one unit each unless said otherwise), output channels and stride:
  entry flow 128/2, 256/1, 256/2, 728/1, 728/2 (Xception-71's two extra blocks vs Xception-65);
  middle flow 16 units of 728/1; exit flow [728, 1024, 1024]/2, then [1536, 1536, 2048]/1.
* Output stride 16 (or 8): once reached, units drop their stride and dilate by the dropped strides
  (TF-slim ``stack_blocks_dense``): at OS16 exit block 1 runs at stride 1 and the last unit at rate
  2. No multi-grid (TF1's default ``[1, 1, 1]``).
* Endpoints, as TF1 DeepLab's decoder takes them (``feature_extractor.py``, ``xception_71``): the
  second separable conv's pointwise BN output (before the unit's strided third conv) of
  ``res2`` entry block 3 (stride 4, 256 channels), ``res3`` entry block 5 (stride 8, 728),
  ``res4`` exit block 1 (stride 16, 1024); ``res5`` is the network output (2048 channels).
* ``width`` scales all channels with ``make_divisible(c * width, 8, min 8)``; 1.0 is the paper's.
* Trainable parameters at width 1.0: 40,289,736 (every conv without bias, BN gamma and beta), the
  same as a layer-by-layer count of TF1's ``xception_71`` without its ImageNet logits. With the
  paper-style decoders (separable ASPP, 134 COCO classes) the model totals about 46.7M, the paper's
  figure. BN moving statistics add 198,976 non-trainable values.

Layer names follow TF1's variable scopes with ``/`` -> ``_`` and ``xception_module`` dropped, e.g.
``entry_flow_block1_unit_1_separable_conv1_depthwise`` for
``xception_71/entry_flow/block1/unit_1/xception_module/separable_conv1_depthwise``; ``_bn`` suffixes
stand for ``/BatchNorm`` and ``entry_flow_conv1_1_conv`` for ``entry_flow/conv1_1``. The kernel
shapes are TF1's, so a TF1 checkpoint maps one to one through that name translation.
"""

from __future__ import annotations

from typing import NamedTuple

import keras

from ...errors import ConfigError
from ..layers import (
    NormFactory,
    atrous_schedule,
    conv_bn_act,
    make_divisible,
    separable_conv_bn_act,
)


class Block(NamedTuple):
    name: str
    depths: tuple[int, int, int]
    skip: str  # 'conv' | 'sum' | 'none'
    act_inside: bool  # ReLU after the BNs (last unit) instead of before each separable conv
    units: int
    stride: int


XCEPTION_71 = (
    Block("entry_flow_block1", (128, 128, 128), "conv", False, 1, 2),
    Block("entry_flow_block2", (256, 256, 256), "conv", False, 1, 1),
    Block("entry_flow_block3", (256, 256, 256), "conv", False, 1, 2),
    Block("entry_flow_block4", (728, 728, 728), "conv", False, 1, 1),
    Block("entry_flow_block5", (728, 728, 728), "conv", False, 1, 2),
    Block("middle_flow_block1", (728, 728, 728), "sum", False, 16, 1),
    Block("exit_flow_block1", (728, 1024, 1024), "conv", False, 1, 2),
    Block("exit_flow_block2", (1536, 1536, 2048), "none", True, 1, 1),
)
# Endpoint -> the unit whose second separable conv feeds the decoder (TF1 DeepLab's choice).
ENDPOINT_UNITS = {
    "res2": "entry_flow_block3_unit_1",
    "res3": "entry_flow_block5_unit_1",
    "res4": "exit_flow_block1_unit_1",
}


def xception_unit(
    x, depths, *, skip: str, act_inside: bool, stride: int, rate: int, norm: NormFactory, name: str
):
    """One Xception unit; returns ``(output, second separable conv's output)``."""
    inputs = x
    features = []
    for i, depth in enumerate(depths, start=1):
        conv_name = f"{name}_separable_conv{i}"
        if not act_inside:
            x = keras.layers.ReLU(name=f"{conv_name}_preact_relu")(x)
        x = separable_conv_bn_act(
            x,
            depth,
            3,
            strides=stride if i == 3 else 1,
            dilation_rate=rate,
            norm=norm,
            act="relu" if act_inside else None,
            name=conv_name,
        )
        features.append(x)
    if skip == "conv":
        shortcut = conv_bn_act(
            inputs, depths[-1], 1, strides=stride, norm=norm, act=None, name=f"{name}_shortcut"
        )
        x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    elif skip == "sum":
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    elif skip != "none":
        raise ValueError(f"unknown skip connection {skip!r}")
    return x, features[1]


def build(inputs, *, output_stride: int, width: float, norm: NormFactory) -> dict:
    """Xception-71 on normalised ``inputs`` [B, H, W, 3]; returns ``res2`` .. ``res5`` at strides
    4, 8, 16 and ``output_stride`` (8, 16 or 32; at 8, res4 is at stride 8 too)."""
    if output_stride not in (8, 16, 32):
        raise ConfigError(
            f"model.output_stride must be 8, 16 or 32 for Xception-71, got {output_stride}."
        )
    if not width > 0:
        raise ConfigError(f"model.backbone_width must be > 0, got {width}.")

    def channels(c: int) -> int:
        return make_divisible(c * width, 8, min_value=8)

    units = [(block, u) for block in XCEPTION_71 for u in range(1, block.units + 1)]
    # The two root convs (strides 2 and 1) come first; each unit has its block's stride.
    schedule = atrous_schedule([2, 1] + [block.stride for block, _ in units], output_stride)

    x = conv_bn_act(
        inputs, channels(32), 3, strides=schedule[0][0], norm=norm, name="entry_flow_conv1_1"
    )
    x = conv_bn_act(x, channels(64), 3, norm=norm, name="entry_flow_conv1_2")
    unit_outputs = {}
    for (block, u), (stride, rate) in zip(units, schedule[2:]):
        name = f"{block.name}_unit_{u}"
        x, unit_outputs[name] = xception_unit(
            x,
            [channels(d) for d in block.depths],
            skip=block.skip,
            act_inside=block.act_inside,
            stride=stride,
            rate=rate,
            norm=norm,
            name=name,
        )
    endpoints = {key: unit_outputs[unit] for key, unit in ENDPOINT_UNITS.items()}
    endpoints["res5"] = x
    return endpoints
