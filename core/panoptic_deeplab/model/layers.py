"""Shared building blocks of every backbone, the ASPP, the decoders and the heads.

Conventions (deeplab2, docs/method.md §1):
* stride-1 convs use ``same`` padding; strided convs pad symmetrically (``pad_total // 2`` at the
  top/left) and then run ``valid``, so odd sizes k*OS+1 and even sizes both match deeplab2;
* convs followed by batch norm have no bias; kernels use ``he_normal``, depthwise kernels keep the
  Keras default;
* corner-aligned bilinear resizing (``align_corners=True``) everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

NormFactory = Callable[[str], keras.layers.Layer]


def make_norm(
    momentum: float = 0.99, epsilon: float = 1e-3, synchronized: bool = True
) -> NormFactory:
    """A factory of batch-norm layers: ``norm(name)`` gives a configured ``BatchNormalization``
    (``zero_gamma=True``: scale initialised to zero, deeplab2's last norm of a residual block).
    The settings are also attributes of the factory, for layers with batch norms inside."""

    def norm(name: str, zero_gamma: bool = False) -> keras.layers.Layer:
        return keras.layers.BatchNormalization(
            momentum=momentum,
            epsilon=epsilon,
            synchronized=synchronized,
            gamma_initializer="zeros" if zero_gamma else "ones",
            name=name,
        )

    norm.momentum, norm.epsilon, norm.synchronized = momentum, epsilon, synchronized
    return norm


def _pad_for_stride(x, kernel_size: int, strides: int, dilation_rate: int, name: str):
    """Explicit symmetric zero padding for a strided conv (deeplab2's Conv2DSame)."""
    effective = kernel_size + (kernel_size - 1) * (dilation_rate - 1)
    pad_total = effective - 1
    pad_begin = pad_total // 2
    pad_end = pad_total - pad_begin
    return keras.layers.ZeroPadding2D(
        ((pad_begin, pad_end), (pad_begin, pad_end)), name=f"{name}_pad"
    )(x)


def conv2d(
    x,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    dilation_rate: int = 1,
    use_bias: bool = False,
    kernel_initializer="he_normal",
):
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = _pad_for_stride(x, kernel_size, strides, dilation_rate, name)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )(x)


def depthwise_conv2d(x, kernel_size: int, *, name: str, strides: int = 1, dilation_rate: int = 1):
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = _pad_for_stride(x, kernel_size, strides, dilation_rate, name)
        padding = "valid"
    return keras.layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        padding=padding,
        use_bias=False,
        name=name,
    )(x)


def activation(x, kind: str | None, name: str):
    if kind is None:
        return x
    if kind == "relu":
        return keras.layers.ReLU(name=name)(x)
    return keras.layers.Activation(kind, name=name)(x)


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int,
    *,
    norm: NormFactory,
    name: str,
    strides: int = 1,
    dilation_rate: int = 1,
    act: str | None = "relu",
    zero_gamma: bool = False,
):
    x = conv2d(
        x, filters, kernel_size, strides=strides, dilation_rate=dilation_rate, name=f"{name}_conv"
    )
    x = norm(f"{name}_bn", zero_gamma=True)(x) if zero_gamma else norm(f"{name}_bn")(x)
    return activation(x, act, f"{name}_{act}")


def separable_conv_bn_act(
    x,
    filters: int,
    kernel_size: int,
    *,
    norm: NormFactory,
    name: str,
    strides: int = 1,
    dilation_rate: int = 1,
    act: str | None = "relu",
):
    """deeplab2's depthwise-separable conv: depthwise -> BN -> act -> pointwise -> BN -> act."""
    x = depthwise_conv2d(
        x, kernel_size, strides=strides, dilation_rate=dilation_rate, name=f"{name}_depthwise"
    )
    x = norm(f"{name}_depthwise_bn")(x)
    x = activation(x, act, f"{name}_depthwise_{act}")
    x = conv2d(x, filters, 1, name=f"{name}_pointwise")
    x = norm(f"{name}_pointwise_bn")(x)
    return activation(x, act, f"{name}_pointwise_{act}")


def resize_align_corners(images: tf.Tensor, size, method: str = "bilinear") -> tf.Tensor:
    """Resize ``[B, H, W, C]`` to ``size`` (H, W) with ``align_corners=True`` (TF1 semantics).

    ``method`` is ``bilinear`` or ``nearest``. Works on dynamic sizes inside ``tf.function``.
    """
    # The raw ops are what tf.compat.v1.image.resize_* call, without their deprecation warning.
    size = tf.cast(size, tf.int32)
    if method == "bilinear":
        return tf.raw_ops.ResizeBilinear(
            images=images, size=size, align_corners=True, half_pixel_centers=False
        )
    if method == "nearest":
        return tf.raw_ops.ResizeNearestNeighbor(
            images=images, size=size, align_corners=True, half_pixel_centers=False
        )
    raise ValueError(f"unknown resize method {method!r}")


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class ResizeLike(keras.layers.Layer):
    """Corner-aligned bilinear resize of the first input to the spatial size of the second."""

    def call(self, inputs):
        x, reference = inputs
        size = tf.shape(reference)[1:3]
        return tf.cast(resize_align_corners(tf.cast(x, tf.float32), size), x.dtype)

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class ResizeOffsetsLike(keras.layers.Layer):
    """Corner-aligned resize of an offset map (dy, dx) to the size of the second input, with the
    offsets rescaled to the new pixel grid: dy by (H_out - 1) / (H_in - 1), dx likewise on W
    (deeplab2 ``resize_and_rescale_offsets``). A side of one pixel keeps its offsets unscaled."""

    def call(self, inputs):
        offsets, reference = inputs
        offsets = tf.cast(offsets, tf.float32)
        size_in = tf.cast(tf.shape(offsets)[1:3], tf.float32)
        size_out = tf.cast(tf.shape(reference)[1:3], tf.float32)
        scale = tf.where(
            size_in > 1, (size_out - 1) / tf.maximum(size_in - 1, 1), tf.ones_like(size_in)
        )
        resized = resize_align_corners(offsets, tf.shape(reference)[1:3])
        return tf.cast(resized * tf.reshape(scale, [1, 1, 1, 2]), self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (MobileNet rule, deeplab2
    ``make_divisible``): to the nearest multiple, at least ``min_value`` (default ``divisor``), and
    never more than 10% below ``value``."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def atrous_schedule(strides, output_stride: int) -> list[tuple[int, int]]:
    """``(stride, dilation)`` for each layer of a network whose nominal strides are ``strides``, run
    at ``output_stride`` (TF-slim / deeplab2 rule): once the running stride reaches
    ``output_stride``, each later layer runs with stride 1 and the dilation accumulated from the
    strides dropped *before* it, so the first layer whose stride is dropped keeps dilation 1."""
    schedule, current, rate = [], 1, 1
    for stride in strides:
        if current == output_stride:
            schedule.append((1, rate))
            rate *= stride
        else:
            schedule.append((stride, 1))
            current *= stride
    if current != output_stride:
        raise ValueError(
            f"output stride {output_stride} cannot be reached with strides {list(strides)}"
        )
    return schedule
