"""Training: losses are in ``panoptic_deeplab.losses``; this package holds the fit loop
(``train``), the LR schedule, checkpoints, distribution strategies and run logging."""

from .checkpoints import CheckpointStore
from .distribution import make_strategy
from .schedule import WarmupPolyDecay, schedule_from_config
from .trainer import TrainingDivergedError, TrainResult, train

__all__ = [
    "CheckpointStore",
    "TrainResult",
    "TrainingDivergedError",
    "WarmupPolyDecay",
    "make_strategy",
    "schedule_from_config",
    "train",
]
