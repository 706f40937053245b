"""Fold batch norms into the preceding convolutions for inference.

In inference mode ``BN(conv(x))`` equals ``conv'(x) + b'`` with the kernel scaled per output
channel by ``gamma / sqrt(var + eps)`` and ``b' = beta - mean * gamma / sqrt(var + eps)``. The
folded model computes the same outputs (up to float rounding) and saves the separate
normalisation passes over every feature map; the conv, bias and ReLU are adjacent ops that
TensorFlow's CPU graph optimiser fuses into one kernel. Inference only: the folded model has no
batch norms to train.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class FoldedConv(keras.layers.Layer):
    """A Conv2D or DepthwiseConv2D with a folded batch norm: ``conv(x, kernel) + bias`` (frozen)."""

    def __init__(
        self,
        kernel: np.ndarray,
        bias: np.ndarray,
        *,
        depthwise: bool,
        strides: int,
        dilation_rate: int,
        padding: str,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self._kernel_value = np.asarray(kernel, np.float32)
        self._bias_value = np.asarray(bias, np.float32)
        self.depthwise = depthwise
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.padding = padding.upper()

    def build(self, input_shape=None):
        self.kernel = self.add_weight(
            name="kernel",
            shape=self._kernel_value.shape,
            initializer=keras.initializers.Constant(self._kernel_value),
            trainable=False,
        )
        self.bias = self.add_weight(
            name="bias",
            shape=self._bias_value.shape,
            initializer=keras.initializers.Constant(self._bias_value),
            trainable=False,
        )

    def call(self, x):
        kernel = tf.cast(self.kernel, x.dtype)
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(
                x,
                kernel,
                [1, self.strides, self.strides, 1],
                self.padding,
                dilations=[self.dilation_rate] * 2,
            )
        else:
            y = tf.nn.conv2d(x, kernel, self.strides, self.padding, dilations=self.dilation_rate)
        return tf.nn.bias_add(y, tf.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        out_c = c * self._kernel_value.shape[3] if self.depthwise else self._kernel_value.shape[3]

        def size(n):
            if n is None:
                return None
            if self.padding == "SAME":
                return -(-n // self.strides)
            effective = (self._kernel_value.shape[0] - 1) * self.dilation_rate + 1
            return (n - effective) // self.strides + 1

        return (b, size(h), size(w), out_c)


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class FoldedAway(keras.layers.Layer):
    """Stands where a folded batch norm was: passes its input through (same call signature)."""

    def call(self, x, training=None, mask=None):
        return x

    def compute_output_shape(self, input_shape):
        return input_shape


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _conv_bn_pairs(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """conv layer name -> the batch norm that alone consumes its output."""
    pairs = {}
    for layer in _all_layers(model):
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        if len(parents) != 1:
            continue
        conv = parents[0].operation
        if not isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        grouped = not isinstance(conv, keras.layers.DepthwiseConv2D) and conv.groups != 1
        if (
            len(conv._inbound_nodes) == 1
            and len(conv._outbound_nodes) == 1  # nothing else reads the un-normalised output
            and conv.activation in (None, keras.activations.linear)
            and conv.data_format == "channels_last"
            and not grouped
        ):
            pairs[conv.name] = layer
    return pairs


def _folded(conv, bn) -> FoldedConv:
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    kernel = conv.kernel.numpy()
    bias = conv.bias.numpy() if conv.use_bias else 0.0
    depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
    if depthwise:  # kernel [kh, kw, cin, mult]; output channel = cin * mult + m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    folded_bias = (bias - bn.moving_mean.numpy()) * scale + beta
    return FoldedConv(
        kernel,
        np.broadcast_to(folded_bias, scale.shape),
        depthwise=depthwise,
        strides=conv.strides[0],
        dilation_rate=conv.dilation_rate[0],
        padding=conv.padding,
        name=conv.name,
        dtype=conv.dtype_policy,
    )


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A copy of ``model`` for inference, each conv -> BN pair folded into one conv with bias."""
    pairs = _conv_bn_pairs(model)
    folded_bns = {bn.name for bn in pairs.values()}
    originals = {layer.name: layer for layer in _all_layers(model)}

    def clone(layer):
        if layer.name in pairs:
            return _folded(layer, pairs[layer.name])
        if layer.name in folded_bns:
            return FoldedAway(name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    folded = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for layer in _all_layers(folded):
        source = originals.get(layer.name)
        if isinstance(layer, (FoldedConv, FoldedAway, keras.Model)) or source is None:
            continue
        if layer.weights:
            layer.set_weights(source.get_weights())
    return folded
