"""Training: losses are in ``panoptic_deeplab.losses``; this package holds the fit loop
(``train``), its callbacks, the LR schedule, checkpoints, distribution strategies and run files.

The names below are imported on first use: reading a run's files (``run_files``, ``history``)
must not start TensorFlow.
"""

import importlib

_EXPORTS = {
    "CheckpointStore": ".checkpoints",
    "TrainResult": ".trainer",
    "TrainingDivergedError": ".trainer",
    "WarmupPolyDecay": ".schedule",
    "make_strategy": ".distribution",
    "schedule_from_config": ".schedule",
    "train": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
