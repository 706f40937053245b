"""Learning-rate schedule: linear warmup, then polynomial decay (deeplab2, docs/method.md §5)."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="panoptic_deeplab")
class WarmupPolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(s) = (base - end) * (1 - s / total) ** power + end`` for s >= warmup, and
    ``base_lr * s / warmup_steps`` (deeplab2's linear warmup) before; s is clipped to total_steps.

    ``accumulation``: the optimizer counts micro-batches when it accumulates gradients, so the step
    the schedule sees is divided by it; the schedule is always in optimizer updates.
    """

    def __init__(
        self,
        base_learning_rate: float,
        total_steps: int,
        end_learning_rate: float = 0.0,
        power: float = 0.9,
        warmup_steps: int = 0,
        accumulation: int = 1,
    ):
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = max(int(total_steps), 1)
        self.end_learning_rate = float(end_learning_rate)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)
        self.accumulation = max(int(accumulation), 1)

    def __call__(self, step):
        step = tf.cast(tf.math.floordiv(tf.cast(step, tf.int64), self.accumulation), tf.float32)
        progress = tf.minimum(step, float(self.total_steps)) / float(self.total_steps)
        poly = (self.base_learning_rate - self.end_learning_rate) * tf.pow(
            1.0 - progress, self.power
        )
        poly = poly + self.end_learning_rate
        if self.warmup_steps <= 0:
            return poly
        warm = self.base_learning_rate * step / float(self.warmup_steps)
        return tf.where(step < float(self.warmup_steps), warm, poly)

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "total_steps": self.total_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
            "accumulation": self.accumulation,
        }


def schedule_from_config(train_config, total_steps: int | None = None) -> WarmupPolyDecay:
    return WarmupPolyDecay(
        base_learning_rate=train_config.base_learning_rate,
        total_steps=total_steps or train_config.steps,
        end_learning_rate=train_config.end_learning_rate,
        power=train_config.poly_power,
        warmup_steps=train_config.warmup_steps,
        accumulation=train_config.gradient_accumulation,
    )
