"""The Slurm backend's public names, where they were before backends became a package
(``panoptic_deeplab.jobs.backends.slurm`` is the module)."""

from .backends.slurm import (
    MAX_TASKS_PER_NODE,
    SHARED_STORAGE_NOTE,
    Partition,
    SlurmError,
    SlurmOptions,
    describe,
    partitions,
    slurm_info,
    submit,
)

__all__ = [
    "MAX_TASKS_PER_NODE",
    "SHARED_STORAGE_NOTE",
    "Partition",
    "SlurmError",
    "SlurmOptions",
    "describe",
    "partitions",
    "slurm_info",
    "submit",
]
