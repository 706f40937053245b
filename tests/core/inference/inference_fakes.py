"""Hand-made Keras models with the model's output contract, so that pad/crop/TTA results can be
computed by hand."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from panoptic_deeplab.bundle import Bundle
from panoptic_deeplab.config import load_config
from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.model.aspp import WindowAveragePooling

SPEC = get_dataset_spec("synthetic")


def fake_config(crop=(33, 49), output_stride=16, min_resize=0, max_resize=0, **postprocess):
    overrides = {
        "model.output_stride": output_stride,
        "dataset.crop_size": list(crop),
        "dataset.min_resize_value": min_resize,
        "dataset.max_resize_value": max_resize,
        "postprocess.keep_k_centers": 20,
        "postprocess.stuff_area_limit": 0,
    }
    overrides.update({f"postprocess.{k}": v for k, v in postprocess.items()})
    return load_config("synthetic/tiny", overrides)


@keras.saving.register_keras_serializable(package="tests_inference")
class PaletteLogits(keras.layers.Layer):
    """logit_k = -|rgb - colour_k|^2 / 1000: the class of a pixel is its nearest class colour."""

    def call(self, x):
        colors = tf.constant(SPEC.colors, tf.float32)
        d = tf.reduce_sum(tf.square(x[..., tf.newaxis, :] - colors), axis=-1)
        return -d / 1000.0


@keras.saving.register_keras_serializable(package="tests_inference")
class ShiftLeft(keras.layers.Layer):
    """heat(y, x) = R(y, x + 1) / 255, zero beyond the right border (a position-dependent output
    that tells whether mirrored runs are flipped back)."""

    def call(self, x):
        red = x[..., :1] / 255.0
        return tf.pad(red[:, :, 1:, :], [[0, 0], [0, 0], [0, 1], [0, 0]])


@keras.saving.register_keras_serializable(package="tests_inference")
class ConstantOffsets(keras.layers.Layer):
    """(dy, dx) = (1, 2) at every pixel, in the pixels of the input it sees."""

    def call(self, x):
        return tf.zeros_like(x[..., :2]) + tf.constant([1.0, 2.0])


@keras.saving.register_keras_serializable(package="tests_inference")
class PoolSpy(WindowAveragePooling):
    """A WindowAveragePooling that records the window it was traced with."""

    seen: list = []

    def call(self, x):
        PoolSpy.seen.append(self.pool_size)
        return super().call(x)


def fake_model(pool_size=None) -> keras.Model:
    image = keras.Input((None, None, 3), name="image")
    heat = ShiftLeft()(image)
    if pool_size is not None:
        # Adds 0 x the pooled map so the spy is traced without changing the outputs.
        pooled = PoolSpy(pool_size)(heat)
        heat = keras.layers.Lambda(lambda t: t[0] + 0.0 * tf.reduce_mean(t[1]))([heat, pooled])
    return keras.Model(
        image,
        {
            "semantic_logits": PaletteLogits()(image),
            "center_heatmap": heat,
            "offsets": ConstantOffsets()(image),
        },
    )


def fake_bundle(config=None, pool_size=None) -> Bundle:
    return Bundle(path=None, config=config or fake_config(), spec=SPEC, model=fake_model(pool_size))


def random_image(h, w, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
