"""Layers of deeplab2's residual blocks beyond plain convolutions (``model/layers/convolutions.py``,
``squeeze_and_excite.py``, ``drop_path.py``; docs/zoo.md):

* ``SwitchableAtrousConv``: one kernel applied at two atrous rates, ``r`` and ``3r``, mixed per
  pixel by a switch, a 1x1 conv (with bias) on a 5x5 average pool of the input (DetectoRS'
  switchable atrous convolution, as in SWideRNet). Stride 1 only, as in deeplab2.
* ``GlobalContext``: adds a 1x1 conv (with bias) of the global average to every pixel; deeplab2
  puts one before and one after each switchable atrous convolution (also a strided one).
* ``SqueezeExcite``: deeplab2's simplified squeeze-and-excite (one 1x1 conv with bias, hard
  sigmoid ``relu6(x + 3) * 0.16667``).
* ``DropPath``: stochastic depth; each sample's residual branch is kept with probability ``p``
  and scaled by ``1 / p`` when training, the identity at inference.

``conv_bn`` builds a conv + batch norm (+ activation) with the switchable conv and its global
context layers when ``sac`` is set, and exactly ``layers.conv_bn_act`` otherwise.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .layers import NormFactory, activation, conv2d, conv_bn_act

HARD_SIGMOID_SLOPE = 0.16667  # deeplab2's hard sigmoid, not exactly 1/6


def _conv(x, kernel, strides=1, dilation=1, padding="SAME"):
    return tf.nn.conv2d(x, tf.cast(kernel, x.dtype), strides, padding, dilations=dilation)


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class SwitchableAtrousConv(keras.layers.Layer):
    """``s * conv(x, rate 3r) + (1 - s) * conv(x, rate r)``, ``s = switch(avg_pool_5x5(x))``."""

    def __init__(self, filters: int, kernel_size: int, dilation_rate: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, channels, self.filters), initializer="he_normal"
        )
        # deeplab2 starts the switch at zero: the plain rate-r convolution.
        self.switch_kernel = self.add_weight(
            name="switch_kernel", shape=(1, 1, channels, 1), initializer="zeros"
        )
        self.switch_bias = self.add_weight(name="switch_bias", shape=(1,), initializer="zeros")

    def call(self, x):
        pooled = tf.nn.avg_pool2d(x, 5, 1, "SAME")  # the average over the valid pixels
        switch = _conv(pooled, self.switch_kernel) + tf.cast(self.switch_bias, x.dtype)
        small = _conv(x, self.kernel, dilation=self.dilation_rate)
        large = _conv(x, self.kernel, dilation=3 * self.dilation_rate)
        return switch * large + (1 - switch) * small

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def mult_adds(self) -> int:
        """Two convolutions and the switch, per output pixel (see flops.py)."""
        _, h, w, _ = self.output.shape
        k, cin = self.kernel_size, self.kernel.shape[2]
        return h * w * (2 * k * k * cin * self.filters + cin)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dilation_rate": self.dilation_rate,
        }


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class GlobalContext(keras.layers.Layer):
    """``x + conv1x1(mean over H, W of x)`` (deeplab2 ``GlobalContext``; starts at zero)."""

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(1, 1, channels, channels), initializer="zeros"
        )
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def call(self, x):
        pooled = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        return x + (_conv(pooled, self.kernel) + tf.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class SqueezeExcite(keras.layers.Layer):
    """deeplab2 ``SimplifiedSqueezeAndExcite``: ``x * hard_sigmoid(conv1x1(mean_HW(x)))``."""

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(1, 1, channels, channels), initializer="variance_scaling"
        )
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def call(self, x):
        pooled = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        squeezed = _conv(pooled, self.kernel, padding="VALID") + tf.cast(self.bias, x.dtype)
        return tf.nn.relu6(squeezed + 3.0) * HARD_SIGMOID_SLOPE * x

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class DropPath(keras.layers.Layer):
    """Training: ``x * floor(keep_prob + U[0, 1)) / keep_prob``, one draw per sample; else ``x``."""

    def __init__(self, keep_prob: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"drop path keep probability must be in (0, 1], got {keep_prob}")
        self.keep_prob = float(keep_prob)

    def call(self, x, training=None):
        if not training or self.keep_prob == 1.0:
            return x
        shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
        keep = tf.floor(self.keep_prob + tf.random.uniform(shape, dtype=x.dtype))
        return x * (keep / self.keep_prob)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "keep_prob": self.keep_prob}


def drop_path_keep_prob(keep_prob: float, schedule: str, stage: int, stages: int = 4) -> float:
    """deeplab2 ``get_drop_path_keep_prob``: ``keep_prob`` everywhere (constant) or falling
    linearly from 1 at stage 0 to ``keep_prob`` at the last stage (linear)."""
    if schedule == "constant":
        return keep_prob
    if schedule == "linear":
        return 1.0 - (1.0 - keep_prob) * stage / stages
    raise ValueError(f"drop path schedule must be 'constant' or 'linear', got {schedule!r}")


def conv_bn(
    x,
    filters: int,
    kernel_size: int,
    *,
    norm: NormFactory,
    name: str,
    strides: int = 1,
    dilation_rate: int = 1,
    act: str | None = "relu",
    sac: bool = False,
    zero_gamma: bool = False,
):
    """deeplab2 ``Conv2DSame`` with batch norm: ``conv_bn_act``, or with ``sac`` the global context
    before, the switchable atrous conv (a plain conv when strided) and the global context after."""
    if not sac:
        return conv_bn_act(
            x,
            filters,
            kernel_size,
            norm=norm,
            name=name,
            strides=strides,
            dilation_rate=dilation_rate,
            act=act,
            zero_gamma=zero_gamma,
        )
    x = GlobalContext(name=f"{name}_pre_context")(x)
    if strides == 1:
        x = SwitchableAtrousConv(filters, kernel_size, dilation_rate, name=f"{name}_conv")(x)
    else:
        x = conv2d(
            x,
            filters,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            name=f"{name}_conv",
        )
    x = GlobalContext(name=f"{name}_post_context")(x)
    x = norm(f"{name}_bn", zero_gamma=zero_gamma)(x)
    return activation(x, act, f"{name}_{act}")
