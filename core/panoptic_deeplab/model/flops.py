"""Multiply-adds of a built model, counted analytically from the layers' static shapes.

Counted: ``Conv2D`` (k_h * k_w * C_in / groups * C_out per output pixel), ``DepthwiseConv2D``
(k_h * k_w * C_in * multiplier per output pixel) and ``Dense``. Not counted: batch norm,
activations, pooling, resizes and additions (element-wise work, a few percent at most). Nested
models (the backbone) are walked recursively. The model must have a static input size.
"""

from __future__ import annotations

import math

import keras


def _spatial(shape) -> int:
    dims = shape[1:-1]
    if any(d is None for d in dims):
        raise ValueError(
            "multiply-adds need a model built with a static input size (input_shape=(H, W))"
        )
    return math.prod(dims)


def layer_mult_adds(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.Model):
        return sum(layer_mult_adds(inner) for inner in layer.layers)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, cin, mult = layer.kernel.shape
        return _spatial(layer.output.shape) * kh * kw * cin * mult
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin_per_group, cout = layer.kernel.shape
        return _spatial(layer.output.shape) * kh * kw * cin_per_group * cout
    if isinstance(layer, keras.layers.Dense):
        cin, cout = layer.kernel.shape
        return math.prod(d for d in layer.output.shape[1:-1]) * cin * cout
    return 0


def count_mult_adds(model: keras.Model) -> int:
    """Multiply-adds for one image (batch 1) at the model's static input size."""
    return layer_mult_adds(model)


def mult_adds_by_part(model: keras.Model) -> dict[str, int]:
    """Multiply-adds split into backbone, semantic and instance branches (by layer-name prefix)."""
    parts = {"backbone": 0, "semantic": 0, "instance": 0}
    for layer in model.layers:
        count = layer_mult_adds(layer)
        if layer.name == "backbone":
            parts["backbone"] += count
        elif layer.name.startswith("semantic"):
            parts["semantic"] += count
        else:
            parts["instance"] += count
    return parts
