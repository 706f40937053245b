"""Atrous Spatial Pyramid Pooling (deeplab2 ``model/decoder/aspp.py``, docs/method.md §1).

Five branches on the backbone's last feature map, concatenated and projected to ``channels``:
a 1x1 conv, three 3x3 atrous convs (standard as in deeplab2, or depthwise-separable as in the
paper with ``separable=True``) and an image-pooling branch. Dropout follows the projection.

Image pooling uses a fixed window taken from the train crop, ``(crop - 1) // OS + 1`` per side
(global pooling at the training resolution), with stride 1 and ``valid`` padding; the pooled map
is resized back with corner alignment, so at larger inputs the pooling is tiled. If the feature
map is smaller than the window along a side, the window shrinks to the feature map along that side
(global pooling there), so every input size works.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .layers import NormFactory, ResizeLike, conv_bn_act, separable_conv_bn_act


def pool_size_for_crop(crop_size: tuple[int, int], output_stride: int) -> tuple[int, int]:
    """The ASPP pooling window for a train crop: ``(size - 1) // OS + 1`` per side.

    E.g. 33x65 for 1025x2049 at OS32."""
    return tuple((int(s) - 1) // output_stride + 1 for s in crop_size)


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class WindowAveragePooling(keras.layers.Layer):
    """Stride-1 ``valid`` average pooling whose window is clamped to the input's spatial size.

    ``pool_size=None`` means global pooling. Works on static and dynamic input sizes: with a
    static size the clamped window is a constant; with a dynamic size the window sums come from an
    integral image (cumulative sums), so no static window is needed.
    """

    def __init__(self, pool_size: tuple[int, int] | None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = None if pool_size is None else tuple(int(p) for p in pool_size)

    def call(self, x):
        if self.pool_size is None:
            return tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        height, width = x.shape[1], x.shape[2]
        if height is not None and width is not None:
            window = (min(self.pool_size[0], height), min(self.pool_size[1], width))
            if window == (height, width):
                return tf.reduce_mean(x, axis=(1, 2), keepdims=True)
            return tf.nn.avg_pool2d(x, window, strides=1, padding="VALID")
        return self._dynamic_pool(x)

    def _dynamic_pool(self, x):
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        shape = tf.shape(x)
        h, w = shape[1], shape[2]
        wh = tf.minimum(self.pool_size[0], h)
        ww = tf.minimum(self.pool_size[1], w)
        # Integral image with a leading zero row and column: box sums are four look-ups.
        s = tf.pad(tf.cumsum(tf.cumsum(x, axis=1), axis=2), [[0, 0], [1, 0], [1, 0], [0, 0]])
        oh, ow = h - wh + 1, w - ww + 1
        box = (
            s[:, wh : wh + oh, ww : ww + ow]
            - s[:, :oh, ww : ww + ow]
            - s[:, wh : wh + oh, :ow]
            + s[:, :oh, :ow]
        )
        return tf.cast(box / tf.cast(wh * ww, tf.float32), dtype)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        if self.pool_size is None:
            return (b, 1, 1, c)
        out = [None if s is None else s - min(p, s) + 1 for s, p in zip((h, w), self.pool_size)]
        return (b, out[0], out[1], c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


def aspp(
    x,
    *,
    channels: int,
    rates: tuple[int, ...],
    pool_size: tuple[int, int] | None,
    separable: bool,
    dropout: float,
    norm: NormFactory,
    name: str,
    projection_only: bool = False,
):
    """The ASPP; ``projection_only``: only its 1x1 projection to ``channels`` (no branches, no
    pooling, no dropout: deeplab2's ``aspp_use_only_1x1_proj_conv``, for attention backbones)."""
    if projection_only:
        return conv_bn_act(x, channels, 1, norm=norm, name=f"{name}_project")
    branches = [conv_bn_act(x, channels, 1, norm=norm, name=f"{name}_conv1x1")]
    for i, rate in enumerate(rates, start=1):
        branch = separable_conv_bn_act if separable else conv_bn_act
        branches.append(
            branch(x, channels, 3, dilation_rate=rate, norm=norm, name=f"{name}_atrous{i}")
        )
    pooled = WindowAveragePooling(pool_size, name=f"{name}_pool")(x)
    pooled = conv_bn_act(pooled, channels, 1, norm=norm, name=f"{name}_pool_proj")
    branches.append(ResizeLike(name=f"{name}_pool_resize")([pooled, x]))
    y = keras.layers.Concatenate(name=f"{name}_concat")(branches)
    y = conv_bn_act(y, channels, 1, norm=norm, name=f"{name}_project")
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
