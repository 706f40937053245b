"""Choosing a ``tf.distribute`` strategy from a flag, and who writes files in a multi-worker run."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from ..config import STRATEGIES
from ..errors import ConfigError


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """``auto``: all local GPUs with MirroredStrategy when there are several, else one device;
    ``one_device``: the first GPU, or the CPU; ``mirrored``: MirroredStrategy over the local GPUs
    (or the CPU); ``multi_worker``: MultiWorkerMirroredStrategy configured by ``TF_CONFIG``.

    Must be called before any other TensorFlow op when using ``multi_worker``.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"train.strategy '{name}' is not one of {', '.join(STRATEGIES)}.")
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError(
                "--strategy multi_worker needs the TF_CONFIG environment variable (cluster and "
                "task); see docs/distributed-training.md."
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"TF_CONFIG is not valid JSON ({err}); see docs/distributed-training.md."
            ) from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


def task_info(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The chief (or worker 0 when there is no chief) writes logs, checkpoints and the bundle."""
    task_type, task_id = task_info(strategy)
    if task_type is None:
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0
