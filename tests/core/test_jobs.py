"""Jobs: the allow-list, GPU detection, and real `pdl` processes (launch, finish, cancel, resume,
restart detection of dead processes, model registration)."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest

from panoptic_deeplab import jobs
from panoptic_deeplab.errors import ConfigError
from panoptic_deeplab.jobs import JobError, JobStore, arguments, process, validate_command
from panoptic_deeplab.jobs import store as job_store

TINY = "synthetic/tiny"


# -- the allow-list ---------------------------------------------------------------------------


def test_a_valid_train_command_passes_unchanged(tmp_path):
    argv = jobs.train_command(
        TINY,
        tmp_path / "data",
        tmp_path / "run",
        steps=5,
        init_from=tmp_path / "base",
        overrides=["train.batch_size=2", "dataset.crop_size=[65, 97]"],
    )
    assert argv == [
        "train",
        "--config",
        TINY,
        "--dataset",
        str(tmp_path / "data"),
        "--workdir",
        str(tmp_path / "run"),
        "--steps",
        "5",
        "--init-from",
        str(tmp_path / "base"),
        "--set",
        "train.batch_size=2",
        "--set",
        "dataset.crop_size=[65, 97]",
    ]
    assert validate_command(argv) == argv


@pytest.mark.parametrize(
    "argv, message",
    [
        (["app", "--port", "80"], "cannot run as a job"),
        (["rm", "-rf", "/"], "cannot run as a job"),
        (["train", "--config", TINY, "--evil", "x"], "not allowed"),
        (["train", "--config", TINY, "--steps"], "needs a value"),
        (["train", "--steps", "ten"], "not a non-negative integer"),
        (["train", "--steps", "-3"], "not a non-negative integer"),
        (["train", "--workdir", "/tmp/x; rm -rf ~"], "shell metacharacters"),
        (["train", "--dataset", "$(reboot)"], "shell metacharacters"),
        (["train", "--dataset", "a`id`"], "shell metacharacters"),
        (["train", "--dataset", "a|b"], "shell metacharacters"),
        (["train", "--dataset", "a\nb"], "shell metacharacters"),
        (["train", "--dataset", "--workdir"], "must not start with '-'"),
        (["train", "--set", "no_equals_sign"], "section.key=value"),
        (["train", "--set", "bad key=1"], "section.key=value"),
        (["train", "--config", "a", "--config", "b"], "given twice"),
        (["train", "stray"], "unexpected argument"),
        (["train", "--split", "val/../../x"], "letters, digits"),
        (["train", "--xla=yes"], "takes no value"),
        (["check-dataset", "/data", "/other"], "unexpected argument"),
        ([], "non-empty list"),
        ("train --steps 3", "non-empty list"),
    ],
)
def test_validation_rejects(argv, message):
    with pytest.raises(JobError, match=message):
        validate_command(argv)


def test_train_command_checks_config_keys_before_launching(tmp_path):
    with pytest.raises(ConfigError, match="batch_sise"):
        jobs.train_command(TINY, tmp_path, tmp_path / "run", overrides=["train.batch_sise=2"])


def test_allowed_options_exist_in_the_real_commands():
    """The allow-list must not drift from the commands' own parsers."""
    import argparse
    import importlib

    from panoptic_deeplab.cli import COMMANDS

    for command, options in jobs.ALLOWED_COMMANDS.items():
        try:
            module = importlib.import_module(COMMANDS[command][0])
        except ModuleNotFoundError:
            pytest.fail(f"pdl {command} is allow-listed but has no module")
        parser = argparse.ArgumentParser()
        module.configure_parser(parser)
        known = {s for a in parser._actions for s in a.option_strings}
        assert set(options) <= known, (
            f"pdl {command}: {set(options) - known} not accepted by its parser"
        )


def test_the_allow_list_is_read_from_the_commands_own_parsers(monkeypatch):
    """Options the hand-kept copy lacked are allowed, with the right kinds, and so is any option
    a command adds later (no second list to keep)."""
    assert validate_command(
        ["train", "--config", TINY, "--low-memory", "--mlflow", "--skip-dataset-check"]
    )
    assert validate_command(["train", "--config", TINY, "--no-low-memory"])
    assert validate_command(
        ["evaluate", "--model", "m", "--dataset", "d", "--scales", "0.75", "1", "1.25", "--flip"]
    )
    with pytest.raises(JobError, match="is not a number"):
        validate_command(["evaluate", "--model", "m", "--scales", "0.75", "big"])
    assert jobs.ALLOWED_COMMANDS["train"]["--set"] == "override*"
    assert jobs.ALLOWED_POSITIONALS["check-dataset"] == ("path",)

    from panoptic_deeplab.commands import check_dataset

    original = check_dataset.configure_parser

    def with_a_new_option(parser):
        original(parser)
        parser.add_argument("--max-images", type=int)

    monkeypatch.setattr(check_dataset, "configure_parser", with_a_new_option)
    options, _ = arguments._command_arguments("check-dataset")
    assert options == {"--split": "name", "--max-images": "int"}


# -- GPUs -------------------------------------------------------------------------------------


def test_detect_gpus_reads_nvidia_smi(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\nprintf '0, NVIDIA H100 80GB HBM3, 81559\\n1, NVIDIA H100 80GB HBM3, 81559\\n'\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    gpus = jobs.detect_gpus(str(fake))
    assert [(g.index, g.name, g.memory_mib) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", 81559),
        (1, "NVIDIA H100 80GB HBM3", 81559),
    ]
    broken = tmp_path / "broken-smi"
    broken.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    assert jobs.detect_gpus(str(broken)) == []
    assert jobs.detect_gpus(str(tmp_path / "absent")) == []


def test_job_environment_exposes_only_the_chosen_gpus():
    assert jobs.job_environment([1, 3], base={})["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert jobs.job_environment([], base={})["CUDA_VISIBLE_DEVICES"] == "-1"  # CPU


# -- real processes ---------------------------------------------------------------------------


def _wait(store: JobStore, job_id: int, timeout: float = 60) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.refresh(job_id)
        if not job.is_active:
            return job
        time.sleep(0.1)
    raise AssertionError(
        f"job {job_id} still running after {timeout} s:\n{store.read_log(store.get(job_id))}"
    )


def _gone(pid: int) -> bool:
    return not process._alive(pid, None)


def _live_group_members(pgid: int, wait_s: float = 5.0) -> list[int]:
    """The processes of group ``pgid`` that are not zombies, after the kernel has had up to
    ``wait_s`` to deliver a kill. A killed helper process of the job (one that Python or a library
    started) stays a zombie until init reaps it, and ``killpg(pgid, 0)`` still finds it."""
    deadline = time.monotonic() + wait_s
    while True:
        live = []
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended while we looked
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                live.append(int(entry.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


def test_jobs_that_succeed_make_and_check_a_data_set(tmp_path):
    store = JobStore(tmp_path / "jobs")
    data = tmp_path / "data"
    make = store.submit(
        [
            "make-dataset",
            "synthetic",
            "--out",
            str(data),
            "--num-train",
            "2",
            "--num-val",
            "1",
            "--height",
            "65",
            "--width",
            "97",
            "--workers",
            "1",
        ],
        name="make",
    )
    make = _wait(store, make.id, timeout=120)
    assert make.state == jobs.SUCCEEDED and make.exit_code == 0, store.read_log(make)
    assert (data / "annotations" / "panoptic_val.json").is_file()
    assert Path(make.workdir) == (tmp_path / "jobs" / "jobs" / str(make.id)).resolve()
    check = _wait(
        store, store.submit(["check-dataset", str(data), "--split", "val"]).id, timeout=120
    )
    assert check.state == jobs.SUCCEEDED, store.read_log(check)
    assert [j.id for j in JobStore(tmp_path / "jobs").list()] == [
        check.id,
        make.id,
    ]  # newest first, reopened


def test_a_job_that_fails_is_recorded_with_its_status_and_log(tmp_path):
    store = JobStore(tmp_path / "jobs")
    # A real `pdl check-dataset` run on a missing folder: it starts, then reports the error.
    job = store.submit(["check-dataset", str(tmp_path / "nowhere")], name="bad-data")
    assert job.state == jobs.RUNNING and job.pid
    job = _wait(store, job.id, timeout=120)
    assert job.state == jobs.FAILED and job.exit_code == 1, store.read_log(job)  # "problems found"
    assert "nowhere" in store.read_log(job)  # the user error, naming the folder, is in the log
    assert store.models() == []


def test_cancel_kills_the_process_group_and_resume_restarts_it(tmp_path):
    store = JobStore(tmp_path / "jobs")
    argv = [
        "train",
        "--config",
        TINY,
        "--dataset",
        str(tmp_path / "nowhere"),
        "--workdir",
        str(tmp_path / "run"),
    ]
    job = store.submit(argv)
    time.sleep(0.5)  # it is importing TensorFlow: a long way from finishing
    cancelled = store.cancel(job.id, grace_s=10)
    assert cancelled.state == jobs.CANCELLED and cancelled.cancel_requested
    assert _gone(job.pid)
    assert _live_group_members(job.pid) == []  # nothing of its group is left running

    resumed = store.resume(job.id)
    assert resumed.state == jobs.RUNNING and resumed.attempts == 2 and resumed.pid != job.pid
    assert resumed.workdir == job.workdir and resumed.argv == argv
    with pytest.raises(JobError, match="still running"):
        store.resume(job.id)
    assert store.cancel(job.id, grace_s=10).state == jobs.CANCELLED
    assert store.read_log(store.get(job.id)).count("# job 1 attempt") == 2


def test_a_job_whose_process_died_shows_failed_after_an_app_restart(tmp_path):
    store = JobStore(tmp_path / "jobs")
    job = store.submit(
        [
            "train",
            "--config",
            TINY,
            "--dataset",
            str(tmp_path / "x"),
            "--workdir",
            str(tmp_path / "run"),
        ]
    )
    proc = job_store._CHILDREN.pop(
        (str(store.db_path), job.id)
    )  # a restarted app has no handle on it
    os.killpg(job.pid, signal.SIGKILL)  # the process dies without writing its exit status
    try:
        deadline = time.monotonic() + 10
        while process._alive(job.pid, job.pid_start) and time.monotonic() < deadline:
            time.sleep(0.05)
        fresh = JobStore(tmp_path / "jobs")  # the app starts again and opens the same records
        (listed,) = fresh.list()
        assert listed.state == jobs.FAILED and "without reporting" in listed.message
    finally:
        proc.wait()


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path):
    store = JobStore(tmp_path / "jobs")
    with (
        store._connect() as db
    ):  # a record claiming that this test process is the job, started long ago
        db.execute(
            "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, pid, pid_start, "
            "created_at) VALUES ('train', 'old', '[\"train\"]', ?, ?, 'running', ?, '1', 0)",
            (str(tmp_path), str(tmp_path / "job.log"), os.getpid()),
        )
    (job,) = JobStore(tmp_path / "jobs").list()
    assert job.state == jobs.FAILED


def test_register_model_is_idempotent(tmp_path):
    store = JobStore(tmp_path / "jobs")
    (tmp_path / "bundle").mkdir()
    a = store.register_model(tmp_path / "bundle", "first")
    b = store.register_model(tmp_path / "bundle", "renamed", base_model="/base")
    assert a.id == b.id and [m.name for m in store.models()] == ["renamed"]
    with pytest.raises(JobError, match="not found"):
        store.register_model(tmp_path / "missing")


@pytest.mark.slow
def test_a_finished_training_job_registers_its_model(tmp_path):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    data = tmp_path / "data"
    make_synthetic_dataset(data, 2, 1, height=65, width=97, workers=1)
    store = JobStore(tmp_path / "jobs")
    argv = jobs.train_command(
        TINY,
        data,
        tmp_path / "run",
        steps=2,
        overrides=["train.batch_size=2", "dataset.crop_size=[65, 97]"],
    )
    job = _wait(store, store.submit(argv, name="tiny").id, timeout=300)
    assert job.state == jobs.SUCCEEDED, store.read_log(job)
    progress = store.progress(job)
    assert (progress.state, progress.step, progress.total_steps, progress.fraction) == (
        "finished",
        2,
        2,
        1.0,
    )
    assert list(store.metrics(job)["step"].dropna().astype(int)) == [
        1,
        2,
    ]  # short runs log every step
    assert progress.phase == "finished"
    (model,) = store.models()
    assert Path(model.path) == (tmp_path / "run" / "model").resolve() and model.job_id == job.id
    assert model.dataset == str(data) and (Path(model.path) / "bundle.json").is_file()


def test_the_pdl_jobs_command_submits_lists_and_refuses(tmp_path, capsys):
    from panoptic_deeplab.cli import main

    root = str(tmp_path / "jobs")
    assert (
        main(
            [
                "jobs",
                "--root",
                root,
                "--name",
                "mk",
                "submit",
                "make-dataset",
                "synthetic",
                "--out",
                str(tmp_path / "d"),
                "--num-train",
                "1",
                "--num-val",
                "1",
                "--height",
                "64",
                "--width",
                "64",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    job = _wait(JobStore(root), 1)
    assert job.state == jobs.SUCCEEDED, JobStore(root).read_log(job)
    capsys.readouterr()
    assert main(["jobs", "--root", root]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["jobs", "--root", root, "submit", "app", "--port", "1"]) == 2
    assert "cannot run as a job" in capsys.readouterr().err
    assert main(["jobs", "--root", root, "cancel"]) == 2  # no id


def test_a_failed_job_carries_its_own_error_message(tmp_path):
    """The page that started a job shows why it failed: pdl's own "error: ..." text, not a state."""
    store = JobStore(tmp_path / "jobs")
    job = _wait(
        store,
        store.submit(
            [
                "evaluate",
                "--model",
                str(tmp_path / "m"),
                "--dataset",
                str(tmp_path / "not-a-data-set"),
                "--split",
                "val",
            ]
        ).id,
        timeout=120,
    )
    assert job.state == jobs.FAILED and job.exit_code == 2
    assert "not-a-data-set" in job.message and "exited with status 2" in job.message
    assert not job.message.startswith("exited with status"), job.message


def test_failure_message_reads_the_error_or_the_traceback():
    log = (
        "# job 1\nI0000 00:00:17.1 1 port.cc:153] oneDNN\n"
        "error: /x/annotations: not found\n  fix: give the root\n"
    )
    assert (
        jobs.failure_message(log, 2)
        == "/x/annotations: not found\n  fix: give the root\n(exited with status 2)"
    )
    trace = (
        'Traceback (most recent call last):\n  File "a.py", line 1\n    boom()\n'
        "ValueError: bad shape\n"
    )
    assert jobs.failure_message(trace, 1).startswith("ValueError: bad shape")
    assert jobs.failure_message("", 3) == "exited with status 3; see the log"
