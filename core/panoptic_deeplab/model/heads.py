"""Prediction heads (deeplab2 ``PanopticDeepLabSingleHead``, docs/method.md §1).

A 5x5 conv to ``channels`` (depthwise-separable by default, with BN and ReLU after both convs; or
a standard conv with BN and ReLU: deeplab2's ``head_conv_type``), then a 1x1 conv with bias and a
TruncatedNormal(0.01) kernel. No final activation: semantic logits, the raw center heatmap
(regressed with MSE) and offsets (dy, dx) at the decoder's stride.
"""

from __future__ import annotations

import keras

from .layers import NormFactory, conv_bn_act, separable_conv_bn_act

CONV_TYPES = ("separable", "standard")


def conv5x5(x, channels: int, *, conv: str, norm: NormFactory, name: str):
    """The 5x5 conv of a decoder or head: ``separable`` or ``standard`` (with BN and ReLU)."""
    if conv == "separable":
        return separable_conv_bn_act(x, channels, 5, norm=norm, name=name)
    if conv == "standard":
        return conv_bn_act(x, channels, 5, norm=norm, name=name)
    raise ValueError(f"conv type must be one of {CONV_TYPES}, got {conv!r}")


def head(x, *, channels: int, outputs: int, norm: NormFactory, name: str, conv: str = "separable"):
    x = conv5x5(x, channels, conv=conv, norm=norm, name=f"{name}_conv")
    return keras.layers.Conv2D(
        outputs,
        1,
        use_bias=True,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        name=f"{name}_output",
    )(x)
