"""Panoptic-DeepLab decoder (deeplab2 ``model/decoder/panoptic_deeplab.py``, docs/method.md §1).

Starting from the ASPP output, each low-level endpoint (res3 then res2) is fused in turn:
project it with a 1x1 conv, upsample the running feature to its size with corner alignment,
concatenate [upsampled, projected] and apply one 5x5 conv (depthwise-separable, or standard:
deeplab2's ``decoder_conv_type``). Any number of low-level endpoints, none included.
"""

from __future__ import annotations

import keras

from .heads import conv5x5
from .layers import NormFactory, ResizeLike, conv_bn_act


def decoder(
    x,
    endpoints: dict,
    *,
    low_level: list[tuple[str, int]],
    channels: int,
    norm: NormFactory,
    name: str,
    conv: str = "separable",
):
    """``low_level`` lists ``(endpoint name, projection channels)`` from coarse to fine."""
    for i, (endpoint, project_channels) in enumerate(low_level, start=1):
        feature = endpoints[endpoint]
        projected = conv_bn_act(feature, project_channels, 1, norm=norm, name=f"{name}_project{i}")
        upsampled = ResizeLike(name=f"{name}_upsample{i}")([x, feature])
        x = keras.layers.Concatenate(name=f"{name}_concat{i}")([upsampled, projected])
        x = conv5x5(x, channels, conv=conv, norm=norm, name=f"{name}_fuse{i}")
    return x
