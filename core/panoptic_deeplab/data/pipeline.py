"""The ``tf.data`` input pipeline: files on disk -> (features, targets) batches.

Training (deeplab2 semantics, docs/method.md §2):

1. decode the image (JPEG/PNG) and the panoptic label (the reader's ``load_panoptic``);
2. optional resize to range (``dataset.min_resize_value`` / ``max_resize_value``, 0 = off);
3. random scale from the discrete set ``min_scale..max_scale`` step ``scale_step``
   (image bilinear with ``align_corners=True``, label nearest);
4. pad to at least ``dataset.crop_size`` at a random offset (image 127.5, label
   ``ignore_label * label_divisor``) and crop ``crop_size`` at a random offset;
5. horizontal flip with probability 0.5 (``dataset.flip``);
6. targets of the crop (:func:`panoptic_deeplab.data.targets.make_targets`).

Evaluation: optional resize to range, then pad at the bottom/right to ``crop_size``.

Each element is ``(features, targets)``: ``features = {"image": float32 [B, H, W, 3] in 0..255}``
and ``targets`` = the ``make_targets`` dict plus ``"panoptic"`` (the augmented int32 label, crowd
kept as instance 0 of its class). Decoding and augmentation run in parallel
(``num_parallel_calls=AUTOTUNE``, deterministic order) and batches are prefetched. Random ops are
stateless, seeded from ``seed`` (default ``config.train.seed``) and the element's position, so the
same seed gives the same batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ..datasets.reader_base import Reader
from ..datasets.readers import open_dataset
from ..datasets.specs import DatasetSpec
from . import augment
from .targets import make_targets


def _decode_image(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return tf.cast(image, tf.float32)


def make_dataset(
    reader_or_root: Reader | str | Path,
    split: str,
    config,
    *,
    training: bool,
    batch_size: int,
    spec: DatasetSpec | None = None,
    shuffle: bool = True,
    repeat: bool | None = None,
    seed: int | None = None,
) -> tf.data.Dataset:
    """A batched, prefetched ``tf.data.Dataset`` of ``(features, targets)`` (see module docstring).

    ``reader_or_root`` is a reader or a data set folder (opened with ``open_dataset(root, split)``).
    ``spec`` defaults to the reader's. ``repeat`` defaults to ``training``. Shuffling happens only
    when training. Training batches drop the remainder so every batch has ``batch_size`` crops.
    """
    reader = (
        reader_or_root
        if isinstance(reader_or_root, Reader)
        else open_dataset(reader_or_root, split, spec)
    )
    spec = spec or reader.spec
    data_cfg = config.dataset
    seed = int(config.train.seed if seed is None else seed)
    repeat = training if repeat is None else repeat
    crop_hw = tuple(int(v) for v in data_cfg.crop_size)
    void = spec.ignore_label * spec.label_divisor
    scales = augment.scale_values(data_cfg.min_scale, data_cfg.max_scale, data_cfg.scale_step)
    small_weight = (
        data_cfg.small_instance_weight if data_cfg.increase_small_instance_weights else 1.0
    )
    if len(reader) == 0:
        from ..errors import DatasetError

        raise DatasetError(f"split '{split}' of the data set has no images; check the annotations")

    def load_label(index):
        return reader.load_panoptic(int(index))

    def load(index, path, element_seed):
        image = _decode_image(path)
        label = tf.numpy_function(load_label, [index], tf.int32, stateful=False)
        label = tf.ensure_shape(label, [None, None])
        checks = [
            tf.debugging.assert_equal(
                tf.shape(image)[:2],
                tf.shape(label),
                message="image and panoptic PNG sizes differ; run `pdl check-dataset`",
            )
        ]
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        if data_cfg.min_resize_value or data_cfg.max_resize_value:
            image, label = augment.resize_to_range(
                image, label, data_cfg.min_resize_value, data_cfg.max_resize_value
            )
        if training:
            seeds = tf.random.experimental.stateless_split(element_seed, 3)
            image, label = augment.random_scale(image, label, scales, seeds[0])
            image, label = augment.random_pad_and_crop(image, label, crop_hw, void, seeds[1])
            if data_cfg.flip:
                image, label = augment.random_flip(image, label, seeds[2])
        else:
            image, label = augment.eval_pad(image, label, crop_hw, void)
        image = tf.ensure_shape(image, [*crop_hw, 3])
        label = tf.ensure_shape(label, crop_hw)
        targets = make_targets(
            label,
            thing_class_ids=spec.thing_class_ids,
            label_divisor=spec.label_divisor,
            ignore_label=spec.ignore_label,
            sigma=data_cfg.sigma,
            small_instance_area=data_cfg.small_instance_area,
            small_instance_weight=small_weight,
        )
        targets["panoptic"] = label
        return {"image": image}, targets

    indices = np.arange(len(reader), dtype=np.int64)
    paths = [example.image_path for example in reader.examples]
    ds = tf.data.Dataset.from_tensor_slices((indices, paths))
    if training and shuffle:
        ds = ds.shuffle(len(reader), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    # Per-element seed pair (seed, position): reproducible and independent of parallelism.
    counter = tf.data.Dataset.counter()
    ds = tf.data.Dataset.zip((ds, counter)).map(
        lambda pair, k: (pair[0], pair[1], tf.stack([tf.constant(seed, tf.int64), k])),
    )
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
