"""deeplab2's Axial-ResNet family (``model/encoder/axial_resnet.py``, ``axial_resnet_instances.py``,
``model/layers/axial_block_groups.py``, ``axial_blocks.py``, ``stems.py``; docs/method.md §1 and
docs/zoo.md): ResNet-50, ResNet-50-beta, Wide-ResNet-41, SWideRNet, Axial-SWideRNet, the
MaX-DeepLab-S and -L backbones and the Axial-ResNet / Axial-DeepLab classifiers, as
``ARCHITECTURES`` lists them.

* **Stems.** ``resnet``: a 7x7/2 conv; ``resnet_beta``: the inception stem (3x3/2 64, 3x3 64,
  3x3 128); ``wider_resnet``: one 3x3/2 conv, followed by a fifth stage (``conv1``) of three basic
  blocks at stride 2. No max-pool: the stride moves into the first block of the next stage.
* **Stages.** Each puts its stride in the first block (in the 3x3 conv, ResNet v1.5); block counts
  are the architecture's times ``layers``, truncated (deeplab2 ``scale_int_list``). A stage's base
  width is ``round(32 * stride * width)`` (``stem_width`` for the wide ResNets' first stage).
* **Blocks.** Bottleneck ``[f, f, 4f]`` (ResNets), basic ``[4f, 4f]`` (wide ResNets below stride 32)
  or ``[f, 2f, 4f]`` bottleneck (wide ResNets' last stage); an axial block ``[e * f, f, 4f]`` (1x1,
  height- then width-axial attention, 1x1) where the stride reaches ``axial_from``. A projection
  shortcut where the channel count changes, else the identity (subsampled when strided); the last
  batch norm starts at zero. Optional: switchable atrous convolution in the 3x3 convs of the stages
  whose stride reaches ``sac_beyond_stride``, squeeze-and-excite before the addition, drop path on
  the residual branch from stride ``drop_path_from`` (schedule over stages 0-4).
* **Output stride** 8, 16 or 32: once the stride reaches it, later stages keep stride 1 and their
  3x3 convs dilate by the stride dropped before them; a basic block's second conv dilates by the
  stage's nominal output stride from its first block on (deeplab2's ``BlockGroup`` rules).
* **Stacked decoder** (MaX-DeepLab-L): hourglass stages from the output stride down to stride 4 and
  back, each fusing (1x1 conv, stride-2 conv or resize) the current feature with the last one at its
  stride, then a block. Its output, ``backbone_output``, is not read by Panoptic-DeepLab (deeplab2
  computes it all the same); it is kept so that the weights map one to one.
* **Widths** as deeplab2, with no rounding floor; ``stem_width=None`` uses ``width``.

Endpoints ``res1`` .. ``res5`` are the activated outputs of the stem / stages (``res1``: stride 2).
Layer names follow ``keras.applications.ResNet50`` (``conv2_block1_1_conv``, ``conv2_block1_1_bn``,
...; ``0`` is the shortcut, ``conv1`` the 7x7 stem), so ImageNet weights saved from it load by name
(see ``model/pretrained.py``); ``conv{N}_block{M}_attention_height`` / ``_width``,
``..._2_pre_context`` / ``_post_context``, ``..._se`` and ``..._drop_path`` for the rest, ``stem``
for the wide ResNets' stem and ``decoder{N}_...`` for the stacked decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from ...errors import ConfigError
from ..axial_attention import MAX_LENGTH, AxialAttention
from ..layers import NormFactory, conv2d, conv_bn_act, resize_align_corners
from ..residual import DropPath, SqueezeExcite, conv_bn, drop_path_keep_prob
from .architectures import ARCHITECTURES, HIGH_RESOLUTION_STRIDE, Architecture


@dataclass(frozen=True)
class Options:
    """The per-model settings of a family backbone (``model.*`` in the config)."""

    output_stride: int
    norm: NormFactory
    sac_beyond_stride: int = 0
    squeeze_excite: bool = False
    drop_path_keep_prob: float = 1.0
    drop_path_schedule: str = "constant"
    recompute_grad: bool = True


def scaled(channels: float, width: float) -> int:
    """deeplab2's ``int(round(channels * width))``."""
    return int(round(channels * width))


# ------------------------------------------------------------------------------------------------
# Blocks


def residual_block(
    x,
    filters: tuple[int, ...],
    *,
    opts: Options,
    name: str,
    stride: int = 1,
    dilation: int = 1,
    second_dilation: int = 1,
    axial: tuple[float, float] | None = None,
    sac: bool = False,
    keep_prob: float = 1.0,
):
    """One deeplab2 ``AxialBlock`` on the activated input ``x``: bottleneck (3 filters), basic (2)
    or, with ``axial`` = (key, value) depths, axial. Returns (raw sum, activated output)."""
    norm = opts.norm
    shortcut = x
    if x.shape[-1] != filters[-1]:
        shortcut = conv_bn_act(
            x, filters[-1], 1, strides=stride, norm=norm, act=None, name=f"{name}_0"
        )
    elif stride > 1:  # same width, stride 2: deeplab2 subsamples the identity
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_subsample")(x)
    if len(filters) == 2:
        y = conv_bn(
            x,
            filters[0],
            3,
            strides=stride,
            dilation_rate=dilation,
            sac=sac,
            norm=norm,
            name=f"{name}_1",
        )
        y = conv_bn(
            y,
            filters[1],
            3,
            dilation_rate=second_dilation,
            sac=sac,
            act=None,
            zero_gamma=True,
            norm=norm,
            name=f"{name}_2",
        )
    else:
        y = conv_bn_act(x, filters[0], 1, norm=norm, name=f"{name}_1")
        if axial is None:
            y = conv_bn(
                y,
                filters[1],
                3,
                strides=stride,
                dilation_rate=dilation,
                sac=sac,
                norm=norm,
                name=f"{name}_2",
            )
        else:
            y = _axial_attention(y, filters[1], axial, stride, opts, name=f"{name}_attention")
        y = conv_bn_act(y, filters[2], 1, norm=norm, act=None, zero_gamma=True, name=f"{name}_3")
    if opts.squeeze_excite:
        y = SqueezeExcite(name=f"{name}_se")(y)
    if keep_prob < 1.0:
        y = DropPath(keep_prob, name=f"{name}_drop_path")(y)
    raw = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return raw, keras.layers.ReLU(name=f"{name}_out")(raw)


def _axial_attention(x, filters: int, expansions, stride: int, opts: Options, name: str):
    """deeplab2 ``AxialAttention2D``: height axis, its stride, width axis, its stride, ReLU."""
    key_depth, value_depth = (int(round(filters * e)) for e in expansions)
    settings = dict(
        momentum=opts.norm.momentum,
        epsilon=opts.norm.epsilon,
        synchronized=opts.norm.synchronized,
        recompute=opts.recompute_grad,
        max_length=MAX_LENGTH,
    )
    for axis in ("height", "width"):
        x = AxialAttention(
            key_depth, value_depth, axis=axis, strides=stride, name=f"{name}_{axis}", **settings
        )(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def block_group(
    x,
    *,
    arch: Architecture,
    filters: float,
    blocks: int,
    input_stride: int,
    stride: int,
    opts: Options,
    name: str,
):
    """deeplab2 ``BlockGroup``: ``blocks`` residual blocks at nominal ``input_stride`` (the plain
    network's), the first one strided by ``stride`` unless the output stride is reached. Returns
    (raw, activated) outputs of the last block."""
    os_ = opts.output_stride
    current = input_stride  # the nominal stride of the block being built
    sac = input_stride * stride >= opts.sac_beyond_stride > 0
    raw = None
    for index in range(blocks):
        block_stride = stride if index == 0 and input_stride < os_ else 1
        dilation = current // os_ if current > os_ else 1
        second_dilation = (
            input_stride * stride // os_ if index == 0 and input_stride * stride > os_ else dilation
        )
        keep_prob = 1.0
        if current >= arch.drop_path_from:
            stage = int(round(math.log2(current) - 1))
            keep_prob = drop_path_keep_prob(
                opts.drop_path_keep_prob, opts.drop_path_schedule, stage
            )
        axial = None
        if current >= arch.axial_from > 0:
            widths = (int(filters * arch.attention_expansion), int(filters), int(4 * filters))
            axial = (arch.key_expansion, arch.value_expansion)
        elif arch.stem in ("resnet", "resnet_beta"):
            widths = (int(filters), int(filters), int(4 * filters))
        elif input_stride * stride < 32:
            widths = (int(4 * filters), int(4 * filters))
        else:
            widths = (int(filters), int(2 * filters), int(4 * filters))
        raw, x = residual_block(
            x,
            widths,
            opts=opts,
            name=f"{name}_block{index + 1}",
            stride=block_stride,
            dilation=dilation,
            second_dilation=second_dilation,
            axial=axial,
            sac=sac,
            keep_prob=keep_prob,
        )
        if index == 0 and stride > 1:
            current *= stride
    return raw, x


# ------------------------------------------------------------------------------------------------
# Stems and the network


def stem(x, kind: str, width: float, norm: NormFactory):
    if kind == "resnet":
        return conv_bn_act(x, scaled(64, width), 7, strides=2, norm=norm, name="conv1")
    if kind == "resnet_beta":
        x = conv_bn_act(x, int(64 * width), 3, strides=2, norm=norm, name="stem1")
        x = conv_bn_act(x, int(64 * width), 3, norm=norm, name="stem2")
        x = conv_bn_act(x, int(128 * width), 3, norm=norm, act=None, name="stem3")
        return keras.layers.ReLU(name="stem_relu")(x)
    if kind == "wider_resnet":
        return conv_bn_act(x, scaled(64, width), 3, strides=2, norm=norm, name="stem")
    raise ValueError(f"unknown stem {kind!r}")


def build(
    inputs,
    *,
    output_stride: int,
    width: float,
    norm: NormFactory,
    variant: str = "resnet50",
    stem_width: float | None = None,
    backbone_layers: float = 1.0,
    sac_beyond_stride: int = 0,
    squeeze_excite: bool = False,
    drop_path_keep_prob: float = 1.0,
    drop_path_schedule: str = "constant",
    recompute_grad: bool = True,
) -> dict:
    if variant not in ARCHITECTURES:
        raise ValueError(f"unknown Axial-ResNet variant {variant!r}")
    if not width > 0 or not (stem_width is None or stem_width > 0) or not backbone_layers > 0:
        raise ConfigError(
            "model.backbone_width, stem_width and backbone_layers must be > 0, got "
            f"{width}, {stem_width}, {backbone_layers}."
        )
    if not 0.0 < drop_path_keep_prob <= 1.0 or drop_path_schedule not in ("constant", "linear"):
        raise ConfigError(
            f"model.drop_path_keep_prob must be in (0, 1] and drop_path_schedule constant or "
            "linear, "
            f"got {drop_path_keep_prob} and {drop_path_schedule!r}."
        )
    arch = ARCHITECTURES[variant]
    stem_width = width if stem_width is None else stem_width
    opts = Options(
        output_stride,
        norm,
        sac_beyond_stride=sac_beyond_stride,
        squeeze_excite=squeeze_excite,
        drop_path_keep_prob=drop_path_keep_prob,
        drop_path_schedule=drop_path_schedule,
        recompute_grad=recompute_grad,
    )
    x = stem(inputs, arch.stem, stem_width, norm)  # stride 2
    endpoints = {"res1": x}
    blocks = (3, *(int(n * backbone_layers) for n in arch.blocks))
    wide = arch.stem == "wider_resnet"
    # (stage, input stride, stride): the wide ResNets start one stage earlier, at stride 2.
    stages = [(1, 2, 1)] if wide else []
    stages += [(2, 2, 2), (3, 4, 2), (4, 8, 2), (5, 16, 2)]
    raws = {}
    for stage, input_stride, stride in stages:
        base = 32 * 2 ** (stage - 1)
        filters = scaled(base, stem_width if stage == 1 else width)
        raws[stage], x = block_group(
            x,
            arch=arch,
            filters=filters,
            blocks=blocks[stage - 1],
            input_stride=input_stride,
            stride=stride,
            opts=opts,
            name=f"conv{stage}",
        )
        endpoints[f"res{stage}"] = x
    if arch.decoder_stacks:
        endpoints["backbone_output"] = _stacked_decoder(inputs, raws, arch, width, opts)
    return endpoints


# ------------------------------------------------------------------------------------------------
# MaX-DeepLab's stacked decoder (deeplab2 ``AxialResNet.call_stacked_decoder``, ``ResizedFuse``)


def _stacked_decoder(image, raws: dict, arch: Architecture, width: float, opts: Options):
    if arch.stem != "wider_resnet":
        raise ValueError("the stacked decoder is built for the wide ResNets (MaX-DeepLab-L) only")
    os_ = opts.output_stride
    # The raw (not activated) stage outputs by their real stride; the last stage's wins at the
    # output stride (deeplab2's stride_to_features).
    by_stride = {min(2**stage, os_): [raws[stage]] for stage in (1, 2, 3, 4)}
    by_stride[os_] = [raws[5]]
    current, current_stride, stack, step, going_down = raws[5], os_, 0, 0, True
    while stack < arch.decoder_stacks or current_stride > HIGH_RESOLUTION_STRIDE:
        step += 1
        stride = current_stride // 2 if going_down else current_stride * 2
        nominal = stride  # the stride of the plain network's stage this one mirrors
        if stride == os_:
            stack, nominal, going_down = stack + 1, 32, True
        channels = nominal * 64 * width  # a float, as in deeplab2
        name = f"decoder{step}"
        fused = _resized_fuse(
            image,
            [(current, current_stride), *((f, stride) for f in by_stride[stride][-2:])],
            target_stride=stride,
            channels=scaled(channels, 1.0),
            norm=opts.norm,
            name=name,
        )
        current, _ = block_group(
            keras.layers.ReLU(name=f"{name}_relu")(fused),
            arch=arch,
            filters=channels // 4,
            blocks=1,
            input_stride=nominal,
            stride=1,
            opts=opts,
            name=name,
        )
        current_stride = stride
        if stride == os_ and stack == arch.decoder_stacks:
            return keras.layers.ReLU(name="backbone_output")(current)
        by_stride[stride].append(current)
        if stride == HIGH_RESOLUTION_STRIDE:
            going_down = False
    raise AssertionError("the stacked decoder ends at the output stride")


def _resized_fuse(image, features, *, target_stride, channels, norm, name):
    """deeplab2 ``ResizedFuse`` of ``(feature, stride)`` pairs: each feature brought to
    ``channels`` at the target stride (resized as it is when its channels already match; else
    activated, then a stride-2 1x1 conv when it is at half the target stride, or a 1x1 conv and a
    resize) and the results added. deeplab2 picks the stride-2 conv from the static sizes it is
    built for; for the ``k * OS + 1`` input sizes used here that is exactly the half-stride case."""
    outputs = []
    for index, (feature, source) in enumerate(features, start=1):
        if feature.shape[-1] == channels:
            outputs.append(
                ResizeToStride(target_stride, name=f"{name}_resize{index}")([feature, image])
            )
            continue
        strided = source * 2 == target_stride
        part = f"{name}_{'strided' if strided else 'resized'}{index}"
        y = keras.layers.ReLU(name=f"{part}_relu")(feature)
        y = conv2d(y, channels, 1, strides=2 if strided else 1, name=f"{part}_conv")
        y = norm(f"{part}_bn")(y)
        if not strided:
            y = ResizeToStride(target_stride, name=f"{name}_resize{index}")([y, image])
        outputs.append(y)
    return keras.layers.Add(name=f"{name}_fuse")(outputs)


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class ResizeToStride(keras.layers.Layer):
    """Corner-aligned bilinear resize of the first input to ``(H - 1) // stride + 1`` per side of
    the second (the network input): deeplab2's size for a feature at ``stride``."""

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, inputs):
        x, image = inputs
        size = (tf.shape(image)[1:3] - 1) // self.stride + 1
        return tf.cast(resize_align_corners(tf.cast(x, tf.float32), size), x.dtype)

    def compute_output_shape(self, input_shapes):
        x_shape, image_shape = input_shapes

        def size(n):
            return None if n is None else (n - 1) // self.stride + 1

        return (x_shape[0], size(image_shape[1]), size(image_shape[2]), x_shape[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}
