"""What a job is: its states, and the records the store keeps (jobs, their progress, registered
models)."""

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
LOCAL, SLURM = "local", "slurm"  # the backends that ship (see .backends)

# What a job does, in order; a job's stage only moves forward within one start of its process.
# "training" and "evaluating" are the same step of the order (the work itself).
STAGES = ("starting", "loading", "tracing", "training", "evaluating", "saving", "done")
STAGE_RANK = {name: rank for rank, name in enumerate(STAGES)}
STAGE_RANK["evaluating"] = STAGE_RANK["training"]
ATTEMPT_PREFIX = "# job {id} attempt "  # each start of a job's process writes this to its log


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
    backend_data: dict = field(default_factory=dict)  # what the backend keeps (e.g. Slurm's job id)
    progress: dict = field(
        default_factory=dict
    )  # the furthest progress seen (see JobStore.progress)

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


def attempt_header(job: Job) -> str:
    """The line a backend writes to the job's log each time it starts the job's process."""
    return f"{ATTEMPT_PREFIX.format(id=job.id)}{job.attempts + 1}: pdl {' '.join(job.argv)}"


@dataclass
class Progress:
    """How far a job is. ``phase`` is the run's own words for what it does ("building the model",
    then "training"), ``stage`` the same on the fixed scale of ``STAGES`` (forward only)."""

    state: str | None  # the trainer's own state from status.json (never "running" once it is gone)
    step: int
    total_steps: int | None
    phase: str | None = None
    updated: float | None = None  # when status.json was written (epoch seconds)
    stage: str | None = None  # one of STAGES
    unit: str = "steps"  # what step counts: "steps" (training) or "images" (evaluation)
    seconds_per_step: float | None = None  # timed on steps after the first (which traces)
    eta_s: float | None = None  # seconds left, from seconds_per_step

    @property
    def fraction(self) -> float | None:
        if not self.total_steps:
            return None
        return max(0.0, min(1.0, self.step / self.total_steps))

    @property
    def text(self) -> str:
        """One line for people, without the job's name: "tracing the training step",
        "training: step 40/200, about 3m10s left", "evaluating: 8/8 images"."""
        words = self.phase or self.stage or "waiting"
        if self.stage == "done":
            words = self.state if self.state in ("failed", "stopped", "finished") else "ended"
            if self.total_steps:
                words += (
                    f" at {'step ' if self.unit == 'steps' else ''}{self.step}/{self.total_steps}"
                )
        elif self.stage in ("training", "evaluating") and self.total_steps:
            what = "step " if self.unit == "steps" else ""
            unit = "" if self.unit == "steps" else f" {self.unit}"
            words = f"{self.stage}: {what}{self.step}/{self.total_steps}{unit}"
            if self.eta_s is not None and self.step < self.total_steps:
                words += f", about {duration(self.eta_s)} left"
        return words


def duration(seconds: float) -> str:
    """``95`` -> ``1m35s``, ``4000`` -> ``1h06m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


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
        """Whether the base it was fine-tuned from is a bundle here (so both can be evaluated)."""
        from ..bundle import is_bundle

        return bool(self.base_model) and is_bundle(Path(self.base_model).expanduser())
