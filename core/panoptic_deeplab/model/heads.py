"""Prediction heads (deeplab2 ``PanopticDeepLabSingleHead``, docs/method.md §1).

A 5x5 depthwise-separable conv to ``channels`` (BN and ReLU after both convs), then a 1x1 conv with
bias and a TruncatedNormal(0.01) kernel. No final activation: semantic logits, the raw center
heatmap (regressed with MSE) and offsets (dy, dx) at the decoder's stride.
"""

from __future__ import annotations

import keras

from .layers import NormFactory, separable_conv_bn_act


def head(x, *, channels: int, outputs: int, norm: NormFactory, name: str):
    x = separable_conv_bn_act(x, channels, 5, norm=norm, name=f"{name}_conv")
    return keras.layers.Conv2D(
        outputs,
        1,
        use_bias=True,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        name=f"{name}_output",
    )(x)
