"""The local backend: each job is a process on this machine, in its own session (so a crash never
takes the app down, and cancel can signal its whole process group), with stdout and stderr going to
its log.

The process runs ``python -m panoptic_deeplab.jobs --exit-file F -- <pdl argv>``: the same ``pdl``
entry point, wrapped only so that the exit status is written to ``F`` and survives an app restart.
A job recorded as running whose process is gone (or whose pid now belongs to another process) is
failed; one that wrote its exit status ended with it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..gpus import job_environment
from ..process import alive, process_start, read_exit_file, signal_group
from ..records import FAILED, RUNNING, Job, attempt_header
from . import Backend, Outcome

if TYPE_CHECKING:
    from ..store import JobStore

# Popen handles of the jobs this process started, by (store file, job id): polling them reaps the
# child (no zombie that would look alive) and gives the exit status directly.
_CHILDREN: dict[tuple[str, int], subprocess.Popen] = {}


class LocalBackend(Backend):
    name = "local"
    help = "a process on this machine (default)"

    def start(self, store: JobStore, job: Job) -> Job:
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        job.exit_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "panoptic_deeplab.jobs",
            "--exit-file",
            str(job.exit_file),
            "--",
            *job.argv,
        ]
        with open(job.log_path, "ab") as log:
            log.write(attempt_header(job).encode() + b"\n")
            log.flush()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=job_environment(job.gpus),
                    cwd=workdir,
                )
            except OSError as err:
                return store.update(
                    job.id, state=FAILED, message=f"could not start: {err}", ended_at=time.time()
                )
        _CHILDREN[(str(store.db_path), job.id)] = proc
        return store.update(
            job.id,
            state=RUNNING,
            pid=proc.pid,
            pid_start=process_start(proc.pid),
            started_at=time.time(),
            ended_at=None,
            exit_code=None,
            message="",
            attempts=job.attempts + 1,
            cancel_requested=False,
            progress={},
        )

    def poll(self, store: JobStore, job: Job) -> Outcome | None:
        if job.state != RUNNING:
            return None
        key = (str(store.db_path), job.id)
        proc = _CHILDREN.get(key)
        code = proc.poll() if proc is not None and proc.pid == job.pid else None
        if code is None and alive(job.pid, job.pid_start, started_by=job.started_at):
            return None
        if code is None:
            code = read_exit_file(job.exit_file)
        _CHILDREN.pop(key, None)
        return store.outcome_of_exit(job, code)

    def cancel(self, store: JobStore, job: Job, grace_s: float) -> Job:
        """SIGTERM the job's process group, then SIGKILL it if still there after ``grace_s``."""
        if job.state != RUNNING:
            return job
        store.update(job.id, cancel_requested=True)
        signal_group(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if store.refresh(job.id).state != RUNNING:
                break
            time.sleep(0.1)
        else:
            signal_group(job.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while store.refresh(job.id).state == RUNNING and time.monotonic() < deadline:
                time.sleep(0.05)
        return store.refresh(job.id)

    def describe(self, store: JobStore, job: Job) -> str:
        return f"GPUs {job.gpus}" if job.gpus else "CPU"


BACKEND = LocalBackend()
