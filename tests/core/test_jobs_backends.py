"""Backends by name: a new backend is one new module in panoptic_deeplab/jobs/backends; the store,
`pdl jobs --backend NAME` and its options find it without a change anywhere else."""

from __future__ import annotations

import textwrap

import pytest

from panoptic_deeplab.jobs import JobError, JobStore, backends

ECHO = '''
"""A backend that "runs" a job by writing its command line to the log."""
import os

from panoptic_deeplab.jobs.backends import Backend, Outcome
from panoptic_deeplab.jobs.records import SUCCEEDED, attempt_header


class EchoBackend(Backend):
    name = "echo"
    help = "writes the command to the log"
    cli_options = (("--loud", dict(action="store_true", help="in capitals")),)

    def options_from_cli(self, values):
        return {"loud": values["loud"]}

    def initial_data(self, options):
        return dict(options or {})

    def start(self, store, job):
        os.makedirs(job.workdir, exist_ok=True)
        line = " ".join(job.argv)
        if job.backend_data["loud"]:
            line = line.upper()
        with open(job.log_path, "a") as log:
            log.write(attempt_header(job) + "\\n" + line)
        return store.update(job.id, state="running", attempts=job.attempts + 1)

    def poll(self, store, job):
        return Outcome(SUCCEEDED, "", 0)

    def cancel(self, store, job, grace_s):
        return job


BACKEND = EchoBackend()
'''


@pytest.fixture
def echo_backend(tmp_path, monkeypatch):
    folder = tmp_path / "more_backends"
    folder.mkdir()
    (folder / "echo.py").write_text(textwrap.dedent(ECHO))
    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(folder)])
    yield "echo"
    import sys

    sys.modules.pop("panoptic_deeplab.jobs.backends.echo", None)


def test_a_new_backend_module_is_found_by_name(echo_backend, tmp_path, capsys):
    from panoptic_deeplab.cli import main

    assert backends.backend_names() == ["local", "echo", "slurm"]
    root = str(tmp_path / "work")
    argv = ["check-dataset", str(tmp_path)]
    assert main(["jobs", "--root", root, "--backend", "echo", "--loud", "submit", *argv]) == 0
    (job,) = JobStore(root).list()  # polled through the echo backend
    assert job.backend == "echo" and job.state == "succeeded"
    assert f"CHECK-DATASET {str(tmp_path).upper()}" in JobStore(root).read_log(job)
    assert main(["jobs", "--root", root, "--loud", "list"]) == 2  # its option, not another's
    assert "--loud only apply to `pdl jobs --backend echo submit" in capsys.readouterr().err


def test_an_unknown_backend_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(JobError, match="no job backend 'nomad'; known: local, slurm"):
        JobStore(tmp_path).submit(["check-dataset", str(tmp_path)], backend="nomad")
    with pytest.raises(JobError, match="not a backend name"):
        backends.get_backend("../local")
    assert JobStore(tmp_path).list() == []
