"""Axial attention along one image axis (deeplab2 ``model/layers/axial_layers.py``,
``positional_encodings.py``; Axial-DeepLab, docs/zoo.md).

A block's 3x3 conv becomes two layers: attention along the height (every column is a sequence),
then, after the height stride, along the width. Per sequence of length ``L`` and per head:

* ``q, k, v`` from one matrix product with ``qkv_kernel`` and a batch norm over the channels;
* similarity logits ``q.k``, ``q.r_q`` and ``k.r_k``, with relative positional encodings
  ``r[i, j] = table[j - i + 254]`` (tables of 509 rows, shared by all lengths), each of the three
  batch-normalised per head (deeplab2's per-head batch norm over axes [0, 2]) and summed;
* softmax over keys, then the retrieved ``w.v`` and ``w.r_v``, batch-normalised per head and
  channel and summed; the heads are concatenated.

deeplab2 builds the layer for one sequence length and raises above ``query_shape`` = 129 (local
attention is not implemented there); here the length is read at run time, and a length over
``max_length`` is refused when it is known while tracing. ``model.input_limits`` gives the input
size that keeps every axis within it, and inference resizes larger images to fit.

Training: the batch norms use the batch statistics and update their moving averages (outside the
recomputed part); with ``recompute=True`` the attention maps are recomputed in the backward pass
(``tf.recompute_grad``) instead of being kept, as deeplab2 does for its axial blocks.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .input_limits import MAX_LENGTH  # deeplab2's query_shape: the longest axis it attends over

MAX_SPAN = 255  # deeplab2 positional_encodings.MAX_SPAN: tables of 2 * 255 - 1 rows
_NORMS = {  # name -> (shape builder, reduction axes) of deeplab2's three batch norms
    "qkv": (lambda d: (d["qkv"],), (0, 1)),
    "similarity": (lambda d: (3, 1, d["heads"], 1, 1), (1, 3, 4)),
    "retrieved_output": (lambda d: (2, 1, d["heads"], 1, d["value_per_head"]), (1, 3)),
}


def relative_distances(length):
    """``[L, L]`` table rows ``j - i + MAX_SPAN - 1`` for query ``i`` and key ``j`` (clipped to the
    table beyond ``MAX_SPAN``, as deeplab2)."""
    index = tf.range(length)
    distance = index[None, :] - index[:, None] + (MAX_SPAN - 1)
    return tf.clip_by_value(distance, 0, 2 * MAX_SPAN - 2)


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class AxialAttention(keras.layers.Layer):
    """deeplab2 ``AxialAttention`` along ``axis`` ("height" or "width") of ``[B, H, W, C]``, then a
    subsampling by ``strides`` along that axis. Output channels: ``value_depth``."""

    def __init__(
        self,
        key_depth: int,
        value_depth: int,
        *,
        axis: str,
        num_heads: int = 8,
        strides: int = 1,
        max_length: int = MAX_LENGTH,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        synchronized: bool = False,
        recompute: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if axis not in ("height", "width"):
            raise ValueError(f"axis must be 'height' or 'width', got {axis!r}")
        if key_depth % num_heads or value_depth % num_heads:
            raise ValueError(
                f"key depth {key_depth} and value depth {value_depth} must divide into "
                f"{num_heads} heads"
            )
        self.key_depth, self.value_depth = int(key_depth), int(value_depth)
        self.axis, self.num_heads, self.strides = axis, int(num_heads), int(strides)
        self.max_length = int(max_length)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.synchronized, self.recompute = bool(synchronized), bool(recompute)

    # -- weights ----------------------------------------------------------------------------------

    def build(self, input_shape):
        channels = int(input_shape[-1])
        heads = self.num_heads
        dims = {
            "qkv": 2 * self.key_depth + self.value_depth,
            "heads": heads,
            "value_per_head": self.value_depth // heads,
        }
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel",
            shape=(channels, dims["qkv"]),
            initializer=keras.initializers.TruncatedNormal(stddev=channels**-0.5),
        )
        self.tables = {}
        for name, depth in (
            ("query_rpe", self.key_depth // heads),
            ("key_rpe", self.key_depth // heads),
            ("value_rpe", self.value_depth // heads),
        ):
            self.tables[name] = self.add_weight(
                name=name,
                shape=(2 * MAX_SPAN - 1, depth),
                initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            )
        self.norms = {}
        for name, (shape_of, axes) in _NORMS.items():
            shape = shape_of(dims)
            weights = {
                part: self.add_weight(
                    name=f"{name}_{part}",
                    shape=shape,
                    initializer=init,
                    trainable=part in ("gamma", "beta"),
                    autocast=False,
                )
                for part, init in (
                    ("gamma", "ones"),
                    ("beta", "zeros"),
                    ("moving_mean", "zeros"),
                    ("moving_variance", "ones"),
                )
            }
            self.norms[name] = (weights, axes)

    # -- forward ----------------------------------------------------------------------------------

    def call(self, x, training=None):
        if self.axis == "height":
            x = tf.transpose(x, [0, 2, 1, 3])  # every column becomes a sequence
        shape = tf.shape(x)
        length = x.shape[2] if x.shape[2] is not None else shape[2]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(
                f"{self.name}: {length} positions along the {self.axis}; axial attention takes at "
                f"most {self.max_length} (deeplab2's query_shape). Give a smaller input "
                "(model.input_limits.max_input_side)."
            )
        sequences = tf.reshape(x, [-1, length, shape[3]])
        if training:
            attend = (
                tf.recompute_grad(self._attend_training)
                if self.recompute
                else self._attend_training
            )
            out, *moments = attend(sequences)
            self._update_moving_averages(moments)
        else:
            out = self._attend(sequences, stats=None)
        out = tf.reshape(out, [shape[0], shape[1], length, self.value_depth])
        if self.strides > 1:
            out = out[:, :, :: self.strides]
        if self.axis == "height":
            out = tf.transpose(out, [0, 2, 1, 3])
        return out

    def _attend_training(self, sequences):
        stats = {}
        out = self._attend(sequences, stats=stats)
        return (out, *(value for name in _NORMS for value in stats[name]))

    def _attend(self, x, stats):
        """``[N, L, C]`` -> ``[N, L, value_depth]``. ``stats``: None (moving averages) or a dict
        that receives the batch moments used."""
        heads, dk = self.num_heads, self.key_depth // self.num_heads
        dv = self.value_depth // heads
        length = tf.shape(x)[1]
        qkv = tf.einsum("nlc,cd->nld", x, tf.cast(self.qkv_kernel, x.dtype))
        qkv = self._norm(qkv, "qkv", stats)
        query, key, value = tf.split(qkv, [self.key_depth, self.key_depth, self.value_depth], -1)
        query = tf.transpose(tf.reshape(query, [-1, length, heads, dk]), [0, 2, 1, 3])
        key = tf.transpose(tf.reshape(key, [-1, length, heads, dk]), [0, 2, 1, 3])
        value = tf.reshape(value, [-1, length, heads, dv])
        distances = relative_distances(length)
        rpe = {n: tf.gather(tf.cast(t, x.dtype), distances) for n, t in self.tables.items()}
        similarity = tf.stack(
            [
                tf.einsum("bhld,bhmd->bhlm", query, key),
                tf.einsum("bhld,lmd->bhlm", query, rpe["query_rpe"]),
                tf.einsum("bhmd,lmd->bhlm", key, rpe["key_rpe"]),
            ]
        )
        similarity = tf.reduce_sum(self._norm(similarity, "similarity", stats), axis=0)
        weights = tf.nn.softmax(similarity, axis=-1)
        retrieved = tf.stack(
            [
                tf.einsum("bhlm,bmhd->bhld", weights, value),
                tf.einsum("bhlm,lmd->bhld", weights, rpe["value_rpe"]),
            ]
        )
        retrieved = tf.reduce_sum(self._norm(retrieved, "retrieved_output", stats), axis=0)
        return tf.reshape(tf.transpose(retrieved, [0, 2, 1, 3]), [-1, length, self.value_depth])

    def _norm(self, x, name: str, stats):
        """deeplab2's batch norm with parameters broadcast over ``x`` (per channel, or per head)."""
        weights, axes = self.norms[name]
        dtype = x.dtype
        x = tf.cast(x, tf.float32)
        if stats is None:
            mean, variance = weights["moving_mean"], weights["moving_variance"]
        else:
            mean, variance = keras.ops.moments(
                x, axes=axes, keepdims=True, synchronized=self.synchronized
            )
            mean = tf.reshape(mean, weights["moving_mean"].shape)
            variance = tf.reshape(variance, weights["moving_variance"].shape)
            stats[name] = (mean, variance)
        y = tf.nn.batch_normalization(
            x,
            tf.convert_to_tensor(mean),
            tf.convert_to_tensor(variance),
            tf.convert_to_tensor(weights["beta"]),
            tf.convert_to_tensor(weights["gamma"]),
            self.epsilon,
        )
        return tf.cast(y, dtype)

    def _update_moving_averages(self, moments):
        for i, name in enumerate(_NORMS):
            weights, _ = self.norms[name]
            mean, variance = moments[2 * i], moments[2 * i + 1]
            for part, value in (("moving_mean", mean), ("moving_variance", variance)):
                moving = weights[part]
                moving.assign(
                    moving * self.momentum + tf.stop_gradient(value) * (1.0 - self.momentum)
                )

    # -- Keras plumbing ---------------------------------------------------------------------------

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape

        def strided(n):
            return None if n is None else -(-n // self.strides)

        if self.axis == "height":
            return (b, strided(h), w, self.value_depth)
        return (b, h, strided(w), self.value_depth)

    def mult_adds(self) -> int:
        """Per image: the qkv projection and the five ``L x L`` products of every sequence."""
        _, h, w, _ = self.output.shape
        channels = self.qkv_kernel.shape[0]
        length, count = (h * self.strides, w) if self.axis == "height" else (w * self.strides, h)
        per_sequence = length * channels * (
            2 * self.key_depth + self.value_depth
        ) + length * length * (3 * self.key_depth + 2 * self.value_depth)
        return count * per_sequence

    def get_config(self):
        return {
            **super().get_config(),
            "key_depth": self.key_depth,
            "value_depth": self.value_depth,
            "axis": self.axis,
            "num_heads": self.num_heads,
            "strides": self.strides,
            "max_length": self.max_length,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "synchronized": self.synchronized,
            "recompute": self.recompute,
        }
