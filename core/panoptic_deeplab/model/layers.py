"""Shared building blocks of every backbone, the ASPP, the decoders and the heads.

Conventions (deeplab2, spec section 1.1):
* stride-1 convs use ``same`` padding; strided convs pad symmetrically (``pad_total // 2`` at the
  top/left) and then run ``valid``, so odd sizes k*OS+1 and even sizes both match deeplab2;
* convs followed by batch norm have no bias; kernels use ``he_normal``, depthwise kernels keep the
  Keras default;
* corner-aligned bilinear resizing (``align_corners=True``) everywhere.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

NormFactory = Callable[[str], keras.layers.Layer]


def make_norm(momentum: float = 0.99, epsilon: float = 1e-3, synchronized: bool = True) -> NormFactory:
    """A factory of batch-norm layers: ``norm(name)`` gives a configured ``BatchNormalization``."""

    def norm(name: str) -> keras.layers.Layer:
        return keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, synchronized=synchronized, name=name
        )

    return norm


def _pad_for_stride(x, kernel_size: int, strides: int, dilation_rate: int, name: str):
    """Explicit symmetric zero padding for a strided conv (deeplab2's Conv2DSame)."""
    effective = kernel_size + (kernel_size - 1) * (dilation_rate - 1)
    pad_total = effective - 1
    pad_begin = pad_total // 2
    pad_end = pad_total - pad_begin
    return keras.layers.ZeroPadding2D(((pad_begin, pad_end), (pad_begin, pad_end)), name=f"{name}_pad")(x)


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
        kernel_size, strides=strides, dilation_rate=dilation_rate, padding=padding, use_bias=False, name=name
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
):
    x = conv2d(x, filters, kernel_size, strides=strides, dilation_rate=dilation_rate, name=f"{name}_conv")
    x = norm(f"{name}_bn")(x)
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
    x = depthwise_conv2d(x, kernel_size, strides=strides, dilation_rate=dilation_rate, name=f"{name}_depthwise")
    x = norm(f"{name}_depthwise_bn")(x)
    x = activation(x, act, f"{name}_depthwise_{act}")
    x = conv2d(x, filters, 1, name=f"{name}_pointwise")
    x = norm(f"{name}_pointwise_bn")(x)
    return activation(x, act, f"{name}_pointwise_{act}")


def resize_align_corners(images: tf.Tensor, size, method: str = "bilinear") -> tf.Tensor:
    """Resize ``[B, H, W, C]`` to ``size`` (H, W) with ``align_corners=True`` (TF1 semantics).

    ``method`` is ``bilinear`` or ``nearest``. Works on dynamic sizes inside ``tf.function``.
    """
    if method == "bilinear":
        return tf.compat.v1.image.resize_bilinear(images, size, align_corners=True)
    if method == "nearest":
        return tf.compat.v1.image.resize_nearest_neighbor(images, size, align_corners=True)
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
