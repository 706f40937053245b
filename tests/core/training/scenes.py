"""A tiny hand-made panoptic data set for trainer tests: sky above road, one or two 'car' boxes,
images painted in the class colours plus noise, targets from data.targets.make_targets; and the tiny
synthetic data set on disk that the `pdl train` process tests train on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from panoptic_deeplab.config import load_config
from panoptic_deeplab.data.targets import make_targets
from panoptic_deeplab.datasets.specs import get_dataset_spec

SPEC = get_dataset_spec("synthetic")
PDL = [sys.executable, "-m", "panoptic_deeplab"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def tiny_config(**overrides):
    """synthetic/tiny at 65x97 with short schedules; extra overrides as dotted keys."""
    base = {
        "dataset.crop_size": [65, 97],
        "train.batch_size": 4,
        "train.log_every": 1,
        "train.warmup_steps": 0,
    }
    base.update(overrides)
    return load_config("synthetic/tiny", base)


def make_tiny_dataset(parent: Path) -> Path:
    """What `pdl make-dataset synthetic --num-train 6 --num-val 2 --height 65 --width 97 --seed 5`
    writes, into ``parent/synthetic`` (in this process: a `pdl` start costs seconds). Tests share
    one through the session fixture ``tiny_dataset`` (tests/conftest.py)."""
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(
        Path(parent) / "synthetic", 6, 2, height=65, width=97, seed=5, workers=1
    )


ROAD, SKY, CAR = 0, 4, 6


def scene(rng: np.random.Generator, height: int, width: int):
    div = SPEC.label_divisor
    panoptic = np.full((height, width), SKY * div, np.int32)
    panoptic[height // 2 :] = ROAD * div
    for inst in range(1, rng.integers(1, 3) + 1):
        h, w = rng.integers(height // 5, height // 2), rng.integers(width // 6, width // 3)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        panoptic[y : y + h, x : x + w] = CAR * div + inst
    colors = np.asarray(SPEC.colors, np.float32)
    image = colors[panoptic // div] + rng.normal(0, 12, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.float32), panoptic


def arrays(n: int, height: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(n):
        image, panoptic = scene(rng, height, width)
        t = make_targets(
            panoptic,
            thing_class_ids=SPEC.thing_class_ids,
            label_divisor=SPEC.label_divisor,
            ignore_label=SPEC.ignore_label,
            sigma=4.0,
            small_instance_area=256,
        )
        t = {k: np.asarray(v) for k, v in t.items()}
        t["panoptic"] = panoptic
        images.append(image)
        targets.append(t)
    return np.stack(images), {k: np.stack([t[k] for t in targets]) for k in targets[0]}


def dataset_fn(n: int = 16, height: int = 65, width: int = 97, nan_after: int | None = None):
    """``dataset_fn(batch, seed)`` for ``train()``; ``nan_after``: images become NaN after that many
    batches (to test the NaN stop)."""
    images, targets = arrays(n, height, width)

    def make(batch_size: int, seed: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(({"image": images}, targets))
        ds = ds.shuffle(n, seed=seed).repeat().batch(batch_size, drop_remainder=True)
        if nan_after is not None:

            def poison(i, batch):
                features, t = batch
                image = features["image"]
                return {
                    "image": tf.where(
                        i >= nan_after, tf.fill(tf.shape(image), np.float32("nan")), image
                    )
                }, t

            ds = ds.enumerate().map(poison)
        return ds

    return make
