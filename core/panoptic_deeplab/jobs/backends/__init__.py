"""Where jobs run: one backend per module of this package, found by its name.

A backend module defines ``BACKEND``, an instance of a ``Backend`` subclass whose ``name`` is the
module's name. ``get_backend("slurm")`` imports ``.slurm`` on first use; ``backend_names()`` lists
every module here, so a new backend is one new file (``pdl jobs --backend NAME`` and
``JobStore.submit(..., backend=NAME)`` find it; its command-line options come with it).

The store keeps the records (``JobStore``'s public methods); a backend starts, polls, cancels and
resumes the job a record describes, and keeps what it needs in ``job.backend_data``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import JobError

if TYPE_CHECKING:  # annotations only: the store imports this package, not the other way round
    from ..records import Job
    from ..store import JobStore


@dataclass(frozen=True)
class Outcome:
    """What a poll found: the job's state now, its message and (once it ended) its exit status."""

    state: str
    message: str = ""
    exit_code: int | None = None


class Backend:
    """Runs the jobs whose ``backend`` is ``name``. Subclasses implement ``start``, ``poll`` and
    ``cancel``; the rest has defaults."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    # Command-line options of `pdl jobs --backend NAME submit`: (flag, argparse keyword arguments).
    cli_options: ClassVar[tuple[tuple[str, dict], ...]] = ()

    def options_from_cli(self, values: dict[str, Any]) -> Any:
        """The ``options`` for ``submit`` from the parsed ``cli_options`` (by argparse dest)."""
        return None

    def prepare(self, argv: list[str], options: Any) -> list[str]:
        """Check ``argv`` and ``options`` before anything is recorded; the argv to record."""
        return argv

    def workdir(self, path: Path) -> Path:
        """The job's workdir as recorded (``path`` is the given or default folder)."""
        return path.resolve()

    def initial_data(self, options: Any) -> dict:
        """``job.backend_data`` of a new job."""
        return {}

    def start(self, store: JobStore, job: Job) -> Job:
        """Start the job's process (submit and resume both come here by default)."""
        raise NotImplementedError

    def submit(self, store: JobStore, job: Job) -> Job:
        """Start a job just recorded; an error removes the record again (the store does that)."""
        return self.start(store, job)

    def resume(self, store: JobStore, job: Job) -> Job:
        return self.start(store, job)

    def poll(self, store: JobStore, job: Job) -> Outcome | None:
        """The state of an active job now, or None when it is as recorded."""
        raise NotImplementedError

    def cancel(self, store: JobStore, job: Job, grace_s: float) -> Job:
        raise NotImplementedError

    def describe(self, store: JobStore, job: Job) -> str:
        """Where the job runs, in a few words."""
        return self.name


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (JobError naming the known ones when there is none)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or ""):
        raise JobError(f"'{name}' is not a backend name; known: {', '.join(backend_names())}")
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise JobError(f"no job backend '{name}'; known: {', '.join(backend_names())}") from None
    backend = getattr(module, "BACKEND", None)
    if not isinstance(backend, Backend) or backend.name != name:
        raise JobError(f"{module_name} defines no BACKEND named '{name}'")
    return backend


def backend_names() -> list[str]:
    """Every backend of this package, ``local`` first."""
    names = [
        m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and not m.ispkg
    ]
    return sorted(names, key=lambda n: (n != "local", n))
