"""Panoptic-DeepLab decoder (deeplab2 ``model/decoder/panoptic_deeplab.py``, docs/method.md §1).

Starting from the ASPP output, each low-level endpoint (res3 then res2) is fused in turn:
project it with a 1x1 conv, upsample the running feature to its size with corner alignment,
concatenate [upsampled, projected] and apply one 5x5 depthwise-separable conv.
"""

from __future__ import annotations

import keras

from .layers import NormFactory, ResizeLike, conv_bn_act, separable_conv_bn_act


def decoder(
    x,
    endpoints: dict,
    *,
    low_level: list[tuple[str, int]],
    channels: int,
    norm: NormFactory,
    name: str,
):
    """``low_level`` lists ``(endpoint name, projection channels)`` from coarse to fine."""
    for i, (endpoint, project_channels) in enumerate(low_level, start=1):
        feature = endpoints[endpoint]
        projected = conv_bn_act(feature, project_channels, 1, norm=norm, name=f"{name}_project{i}")
        upsampled = ResizeLike(name=f"{name}_upsample{i}")([x, feature])
        x = keras.layers.Concatenate(name=f"{name}_concat{i}")([upsampled, projected])
        x = separable_conv_bn_act(x, channels, 5, norm=norm, name=f"{name}_fuse{i}")
    return x
