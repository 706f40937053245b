"""What a job is: its states and backends, and the records the store keeps (jobs, their progress,
registered models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .arguments import option_value

# States a job can be in. "running" is only ever a claim checked against the live process.
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
LOCAL, SLURM = "local", "slurm"  # backends


@dataclass
class Job:
    id: int
    kind: str
    name: str
    argv: list[str]
    workdir: str
    log_path: str
    state: str
    gpus: list[int] = field(default_factory=list)
    pid: int | None = None
    pid_start: str | None = None
    exit_code: int | None = None
    message: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    attempts: int = 0
    cancel_requested: bool = False
    backend: str = LOCAL

    @property
    def exit_file(self) -> Path:
        return Path(self.workdir) / ".job_exit"

    @property
    def base_model(self) -> str | None:
        return option_value(self.argv, "--init-from")

    @property
    def dataset(self) -> str | None:
        return option_value(self.argv, "--dataset")

    @property
    def is_active(self) -> bool:
        return self.state in (QUEUED, RUNNING)


@dataclass
class Progress:
    state: str | None  # the trainer's own state from status.json, if any
    step: int
    total_steps: int | None
    phase: str | None = (
        None  # what it does before the first step ("building the model", ...), then "training"
    )
    updated: float | None = None  # when status.json was written (epoch seconds)

    @property
    def fraction(self) -> float | None:
        if not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))


@dataclass
class ModelRecord:
    """A model bundle in a work directory's registry. ``missing``: its folder is gone; such a record
    is listed only to be shown as missing (``JobStore.models(include_missing=True)``) and forgotten
    on request, never offered for a job."""

    id: int
    name: str
    path: str
    job_id: int | None
    base_model: str | None
    dataset: str | None
    created_at: float

    @property
    def missing(self) -> bool:
        return not Path(self.path).is_dir()

    @property
    def base_is_bundle(self) -> bool:
        """Whether the base it was fine-tuned from is a bundle here (so the two can be
        evaluated)."""
        from ..bundle import is_bundle

        return bool(self.base_model) and is_bundle(Path(self.base_model).expanduser())
