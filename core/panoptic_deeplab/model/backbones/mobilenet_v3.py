"""MobileNetV3-Large and -Small in deeplab2's layout (docs/method.md §1; deeplab2
``model/encoder/mobilenet.py``, ``model/layers/blocks.py``, ``squeeze_and_excite.py``).

* Standard V3 block tables (below). Every inverted bottleneck is 1x1 expand (skipped when the
  expansion ratio is 1) -> depthwise kxk -> [squeeze-and-excite] -> 1x1 project, BN after each conv,
  with a residual add when the block has stride 1 and keeps its channel count.
* Squeeze-and-excite as deeplab2: global mean -> 1x1 conv (bias) to
  ``make_divisible(expanded * 0.25)`` -> ReLU -> 1x1 conv (bias) back -> **sigmoid** gate
  (deeplab2's default ``se_gating_activation``; the paper's and Keras' MobileNetV3: hard-sigmoid).
* Endpoints are the **depthwise outputs** (after depthwise conv, BN and activation, before SE) of
  the last block at each stride: ``res2`` (stride 4), ``res3`` (8), ``res4`` (16); ``res5`` is the
  final 1x1 conv (960 / 576 channels, BN, hard-swish). Channels res2..res5: Large 72, 120, 672, 960;
  Small 16, 88, 144, 576.
* Output stride 16 (or 8): once the running stride reaches it, later layers drop their stride and
  the depthwise convs dilate by the dropped strides (deeplab2's rule, ``layers.atrous_schedule``).
* ``width`` scales every block's output channels with ``make_divisible(c * width, 8, min 8)``,
  the stem and the final conv included (deeplab2's ``width_multiplier``).
* Trainable parameters at width 1.0: Large 2,971,952, Small 927,008 (deeplab2's counts).

**Layer names and ImageNet weights.** Layers with weights carry the names of Keras 3's
``keras.applications.MobileNetV3Large`` / ``MobileNetV3Small`` (``conv``, ``conv_bn``,
``expanded_conv_depthwise``, ``expanded_conv_3_expand``, ``expanded_conv_3_squeeze_excite_conv``,
``..._squeeze_excite_conv_1``, ``..._project_bn``, ``conv_1``, ``conv_1_bn``), and at width 1.0 with
``include_top=False, minimalistic=False, alpha=1.0`` every one of them has the same weight shapes,
one to one (pinned by the tests). Such weights therefore copy over layer by layer by name::

    app = keras.applications.MobileNetV3Large(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    app.load_weights("weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5")  # a local file
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(app.get_layer(layer.name).get_weights())

They are an initialisation, not an exact copy of the ImageNet network: Keras gates SE with
hard-sigmoid where deeplab2 (and this module) uses sigmoid. Other widths do not match Keras (its
stem stays 16 channels and its last conv is scaled differently).
"""

from __future__ import annotations

from typing import NamedTuple

import keras

from ...errors import ConfigError
from ..layers import (
    NormFactory,
    activation,
    atrous_schedule,
    conv2d,
    depthwise_conv2d,
    make_divisible,
)

SE_RATIO = 0.25


class Block(NamedTuple):
    """One inverted bottleneck: depthwise kernel, stride, output channels, activation, SE or not,
    expansion ratio of the input channels, and whether it is the last block of its stride."""

    kernel: int
    stride: int
    filters: int
    act: str
    se: bool
    expand: float
    is_endpoint: bool


class Spec(NamedTuple):
    stem_filters: int  # 3x3/2 conv, hard-swish
    stem_is_endpoint: bool  # Small's stem is res1; Large's first block is
    blocks: tuple[Block, ...]
    last_filters: int  # final 1x1 conv, hard-swish: res5


HS = "hard_swish"
LARGE = Spec(
    16,
    False,
    (
        Block(3, 1, 16, "relu", False, 1.0, True),
        Block(3, 2, 24, "relu", False, 4.0, False),
        Block(3, 1, 24, "relu", False, 3.0, True),
        Block(5, 2, 40, "relu", True, 3.0, False),
        Block(5, 1, 40, "relu", True, 3.0, False),
        Block(5, 1, 40, "relu", True, 3.0, True),
        Block(3, 2, 80, HS, False, 6.0, False),
        Block(3, 1, 80, HS, False, 2.5, False),
        Block(3, 1, 80, HS, False, 2.3, False),
        Block(3, 1, 80, HS, False, 2.3, False),
        Block(3, 1, 112, HS, True, 6.0, False),
        Block(3, 1, 112, HS, True, 6.0, True),
        Block(5, 2, 160, HS, True, 6.0, False),
        Block(5, 1, 160, HS, True, 6.0, False),
        Block(5, 1, 160, HS, True, 6.0, False),
    ),
    960,
)
SMALL = Spec(
    16,
    True,
    (
        Block(3, 2, 16, "relu", True, 1.0, True),
        Block(3, 2, 24, "relu", False, 72 / 16, False),
        Block(3, 1, 24, "relu", False, 88 / 24, True),
        Block(5, 2, 40, HS, True, 4.0, False),
        Block(5, 1, 40, HS, True, 6.0, False),
        Block(5, 1, 40, HS, True, 6.0, False),
        Block(5, 1, 48, HS, True, 3.0, False),
        Block(5, 1, 48, HS, True, 3.0, True),
        Block(5, 2, 96, HS, True, 6.0, False),
        Block(5, 1, 96, HS, True, 6.0, False),
        Block(5, 1, 96, HS, True, 6.0, False),
    ),
    576,
)
SPECS = {"large": LARGE, "small": SMALL}


def squeeze_excite(x, channels: int, prefix: str):
    """deeplab2 ``SqueezeAndExcite``: squeeze to make_divisible(channels/4), ReLU, expand, then
    gate with a sigmoid."""
    reduced = make_divisible(max(1, int(channels * SE_RATIO)), 8)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(
        x
    )
    s = keras.layers.Conv2D(
        reduced, 1, kernel_initializer="he_normal", name=f"{prefix}squeeze_excite_conv"
    )(s)
    s = keras.layers.ReLU(name=f"{prefix}squeeze_excite_relu")(s)
    s = keras.layers.Conv2D(
        channels, 1, kernel_initializer="he_normal", name=f"{prefix}squeeze_excite_conv_1"
    )(s)
    s = keras.layers.Activation("sigmoid", name=f"{prefix}squeeze_excite_sigmoid")(s)
    return keras.layers.Multiply(name=f"{prefix}squeeze_excite_mul")([x, s])


def inverted_bottleneck(
    x, block: Block, filters: int, *, stride: int, dilation: int, norm: NormFactory, prefix: str
):
    """``(block output, depthwise output)``; ``prefix`` follows Keras' ``expanded_conv_{i}_``."""
    in_filters = x.shape[-1]
    shortcut = x
    expanded = in_filters
    if block.expand > 1:
        expanded = make_divisible(in_filters * block.expand, 8)
        x = conv2d(x, expanded, 1, name=f"{prefix}expand")
        x = norm(f"{prefix}expand_bn")(x)
        x = activation(x, block.act, f"{prefix}expand_{block.act}")
    x = depthwise_conv2d(
        x, block.kernel, strides=stride, dilation_rate=dilation, name=f"{prefix}depthwise"
    )
    x = norm(f"{prefix}depthwise_bn")(x)
    x = activation(x, block.act, f"{prefix}depthwise_{block.act}")
    depthwise_output = x
    if block.se:
        x = squeeze_excite(x, expanded, prefix)
    x = conv2d(x, filters, 1, name=f"{prefix}project")
    x = norm(f"{prefix}project_bn")(x)
    # deeplab2 decides on the nominal stride, so a block whose stride was traded for dilation stays
    # without residual (its channel count changes anyway).
    if block.stride == 1 and in_filters == filters:
        x = keras.layers.Add(name=f"{prefix}add")([shortcut, x])
    return x, depthwise_output


def build(
    inputs, *, output_stride: int, width: float, norm: NormFactory, variant: str = "large"
) -> dict:
    """MobileNetV3 ``variant`` ('large' | 'small') on normalised ``inputs`` [B, H, W, 3].

    Returns ``{'res2', 'res3', 'res4', 'res5'}`` at strides 4, 8, 16 and ``output_stride``
    (8, 16 or 32; res4 is at stride 8 when output_stride is 8)."""
    if variant not in SPECS:
        raise ValueError(f"unknown MobileNetV3 variant {variant!r}; choose one of {sorted(SPECS)}")
    if output_stride not in (8, 16, 32):
        raise ConfigError(
            f"model.output_stride must be 8, 16 or 32 for MobileNetV3, got {output_stride}."
        )
    if not width > 0:
        raise ConfigError(f"model.backbone_width must be > 0, got {width}.")
    spec = SPECS[variant]

    def channels(c: int) -> int:
        return make_divisible(c * width, 8, min_value=8)

    # Layer order: stem, the blocks, the final 1x1 conv; only the stem and blocks have strides.
    schedule = atrous_schedule([2] + [b.stride for b in spec.blocks], output_stride)
    endpoints, level = {}, 1

    stem_stride, _ = schedule[0]
    x = conv2d(inputs, channels(spec.stem_filters), 3, strides=stem_stride, name="conv")
    x = norm("conv_bn")(x)
    x = activation(x, HS, "conv_hard_swish")
    if spec.stem_is_endpoint:
        endpoints[f"res{level}"] = x
        level += 1

    for i, (block, (stride, dilation)) in enumerate(zip(spec.blocks, schedule[1:])):
        prefix = f"expanded_conv_{i}_" if i else "expanded_conv_"
        x, depthwise_output = inverted_bottleneck(
            x,
            block,
            channels(block.filters),
            stride=stride,
            dilation=dilation,
            norm=norm,
            prefix=prefix,
        )
        if block.is_endpoint:
            endpoints[f"res{level}"] = depthwise_output
            level += 1

    x = conv2d(x, channels(spec.last_filters), 1, name="conv_1")
    x = norm("conv_1_bn")(x)
    endpoints[f"res{level}"] = activation(x, HS, "conv_1_hard_swish")
    return {name: endpoints[name] for name in ("res2", "res3", "res4", "res5")}


def build_large(inputs, *, output_stride: int, width: float, norm: NormFactory) -> dict:
    return build(inputs, output_stride=output_stride, width=width, norm=norm, variant="large")


def build_small(inputs, *, output_stride: int, width: float, norm: NormFactory) -> dict:
    return build(inputs, output_stride=output_stride, width=width, norm=norm, variant="small")
