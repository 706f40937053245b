"""TensorBoard scalars and images written with core TensorFlow.

TensorFlow 2.21 no longer depends on the ``tensorboard`` package, and ``tf.summary.scalar`` /
``tf.summary.image`` raise without it. ``tf.summary.write`` with the plugin metadata TensorBoard
expects ("scalars": a float scalar; "images": ``[width, height, png, ...]`` strings) produces the
same event files, so runs can be viewed later with ``pip install tensorboard`` and
``tensorboard --logdir WORKDIR/tensorboard``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str) -> bytes:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    ).SerializeToString()


def scalar(name: str, value: float, step: int) -> None:
    tf.summary.write(
        name, tf.constant(float(value), tf.float32), step=step, metadata=_metadata("scalars")
    )


def images(name: str, batch, step: int, max_outputs: int = 2) -> None:
    """``batch``: [N, H, W, C] uint8 (C = 1 or 3), or floats in [0, 1]."""
    batch = np.asarray(batch)[:max_outputs]
    if batch.dtype != np.uint8:
        batch = (np.clip(batch, 0.0, 1.0) * 255).astype(np.uint8)
    if batch.ndim == 3:
        batch = batch[..., None]
    height, width = batch.shape[1:3]
    pngs = [tf.io.encode_png(img).numpy() for img in batch]
    tensor = tf.constant([str(width).encode(), str(height).encode(), *pngs])
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images"))
