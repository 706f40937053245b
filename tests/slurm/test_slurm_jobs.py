"""Jobs on a real Slurm cluster (the one-node cluster of conftest.py): a two-task multi-worker
fine-tune from the Train page, preemption (requeue), cancel and resume, Slurm's refusals, a task
that cannot find its data set, and an app restart that keeps every job and its state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from panoptic_deeplab import jobs
from panoptic_deeplab.jobs import JobStore
from panoptic_deeplab.jobs.slurm import SlurmError, SlurmOptions, slurm_info, submit
from tests.app import apptest_utils as u

PAGE = str(u.APP_DIR / "pages" / "train.py")
TINY = [
    "dataset.crop_size=[65,97]",
    "train.log_every=1",
    "train.warmup_steps=0",
    "train.batch_size=2",
]


def _wait(store: JobStore, job_id: int, done, timeout: float, what: str) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.refresh(job_id)
        if done(job):
            return job
        if job.state in jobs.FINAL_STATES:
            break
        time.sleep(0.5)
    raise AssertionError(
        f"{what}: job is {job.state} ({job.message})\n{store.read_log(job)[-4000:]}"
    )


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_unknown_partition_gives_slurms_message_and_no_record(slurm_cluster, tmp_path):
    store = JobStore(tmp_path / "work")
    argv = [
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(tmp_path),
        "--workdir",
        str(tmp_path / "run"),
    ]
    with pytest.raises(SlurmError) as err:
        submit(store, argv, SlurmOptions(partition="nosuch"))
    assert str(err.value).startswith("sbatch: invalid partition specified: nosuch")
    assert store.list() == [] and not (tmp_path / "run").exists()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "jobs",
            "--root",
            str(tmp_path / "work"),
            "--backend",
            "slurm",
            "--partition",
            "nosuch",
            "submit",
            *argv,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "invalid partition specified: nosuch" in done.stderr and store.list() == []


def test_a_time_limit_over_the_partitions_is_one_line(slurm_cluster, tmp_path):
    store = JobStore(tmp_path / "work")
    argv = [
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(tmp_path),
        "--workdir",
        str(tmp_path / "run"),
    ]
    with pytest.raises(
        SlurmError, match=r"--time 00:05:00 is over partition short's limit of 00:01:00"
    ):
        submit(store, argv, SlurmOptions(partition="short", time="00:05:00"))
    assert store.list() == []


def test_a_workdir_with_spaces_is_refused_before_slurm_sees_it(slurm_cluster, tmp_path):
    store = JobStore(tmp_path / "work")
    argv = [
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(tmp_path),
        "--workdir",
        str(tmp_path / "my run"),
    ]
    with pytest.raises(jobs.JobError, match="cannot contain spaces"):
        submit(store, argv, SlurmOptions())
    assert store.list() == [] and not (tmp_path / "my run").exists()


def test_a_task_that_cannot_find_the_data_set_fails_with_that_message(slurm_cluster, tmp_path):
    store = JobStore(tmp_path / "work")
    argv = [
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(tmp_path / "not-shared"),
        "--workdir",
        str(tmp_path / "run"),
    ]
    job = submit(store, argv, SlurmOptions(tasks_per_node=2))
    job = _wait(store, job.id, lambda j: j.state == jobs.FAILED, 60, "did not fail")
    assert job.message.startswith(
        f"task 0 on localhost cannot find the data set {tmp_path / 'not-shared'}"
    ) or job.message.startswith(
        f"task 1 on localhost cannot find the data set {tmp_path / 'not-shared'}"
    )
    # Both tasks stop on the check; the first exits 2 and srun ends the other (SIGTERM: 143) when
    # it is still starting, so the job's status is either, by timing. The message names the cause.
    assert "storage every node of the cluster sees" in job.message and job.exit_code in (2, 143)


def test_the_train_page_without_slurm_says_so_in_one_line(tmp_path, monkeypatch):
    import streamlit as st

    st.cache_data.clear()  # the partitions are cached for 30 s
    u.set_app_env(monkeypatch, tmp_path, data=tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    at.radio(key="run_on").set_value("Slurm")
    at = _run(at)
    assert at.error[0].value.startswith("Slurm is not available here: `scontrol` is not on PATH")
    next(b for b in at.button if b.label == "Start fine-tune").click()
    at = _run(at)
    assert (
        "Slurm cannot be reached from here" in at.error[-1].value
        and JobStore(tmp_path / "work").list() == []
    )
    st.cache_data.clear()


@pytest.mark.slow
def test_a_two_task_fine_tune_from_the_train_page(
    slurm_cluster, tiny_dataset, tmp_path, monkeypatch
):
    u.set_app_env(monkeypatch, tmp_path, data=tiny_dataset)
    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))
    at.radio(key="run_on").set_value("Slurm")
    at = _run(at)
    partitions = at.selectbox(key="slurm_partition").options
    assert partitions[0].startswith("debug (default): 1 node(s), 2 CPUs") and partitions[
        1
    ].startswith("short")
    at.selectbox(key="base_model").set_value("none: train from scratch")
    at.selectbox(key="config").set_value("synthetic/tiny")
    at.number_input(key="steps").set_value(3)
    at.text_area(key="overrides").set_value("\n".join(TINY))
    at.text_input(key="job_name").set_value("two workers")
    at.number_input(key="slurm_tasks").set_value(2)
    next(b for b in at.button if b.label == "Start fine-tune").click()
    at = _run(at)
    if any(b.key == "start_anyway" for b in at.button):  # the tiny set is warned about first
        at.button(key="start_anyway").click()
        at = _run(at)
    assert not at.error, [e.value for e in at.error]

    store = JobStore(tmp_path / "work")
    (job,) = store.list()
    assert job.backend == jobs.SLURM and job.state in (jobs.QUEUED, jobs.RUNNING)
    slurm_id, options = slurm_info(store, job)
    assert options.tasks == 2 and options.partition == "debug"
    job = _wait(store, job.id, lambda j: j.state == jobs.RUNNING, 60, "never ran")

    # An evaluation from the command line waits, with Slurm's reason, for the fine-tune's two CPUs.
    demo = u.ROOT / "assets" / "models" / "synthetic_demo"
    pdl_jobs = [sys.executable, "-m", "panoptic_deeplab", "jobs", "--root", str(tmp_path / "work")]
    done = subprocess.run(
        [
            *pdl_jobs,
            "--backend",
            "slurm",
            "--name",
            "eval-demo",
            "submit",
            "evaluate",
            "--model",
            str(demo),
            "--dataset",
            str(tiny_dataset),
            "--split",
            "val",
            "--ap",
            "none",
            "--out",
            str(tmp_path / "eval.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    evaluation = store.list()[0]
    assert evaluation.kind == "evaluate"
    evaluation = _wait(
        store, evaluation.id, lambda j: "reason" in j.message, 60, "no reason"
    )  # once scheduled
    assert evaluation.state == jobs.QUEUED and evaluation.message.endswith("(reason: Resources)")

    restarted = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))  # an app restart mid-run
    labels = [e.label for e in restarted.expander]
    # Fine-tunes and evaluations are listed apart; a running job's label may carry its phase.
    assert f"#{evaluation.id} eval-demo · queued" in labels
    assert any(label.startswith(f"#{job.id} two-workers · running") for label in labels), labels

    # The log as it is written, until the end.
    follow = subprocess.run(
        [*pdl_jobs, "--follow", "log", str(job.id)], capture_output=True, text=True, timeout=600
    )
    assert (
        follow.stdout.rstrip().endswith(f"# job {job.id}: succeeded")
        and "step 3/3" in follow.stdout
    )
    job = store.refresh(job.id)
    assert job.state == jobs.SUCCEEDED
    assert slurm_cluster.scontrol_job(slurm_id)["JobState"] == "COMPLETED"
    log = store.read_log(job, max_bytes=10**6)
    assert "2 replica(s)" in log and "step 3/3" in log and f"Slurm job {slurm_id}" in log
    assert [m.path for m in store.models()] == [str(Path(job.workdir) / "model")]

    at = _run(AppTest.from_file(PAGE, default_timeout=u.TIMEOUT))  # and after the end
    labels = [e.label for e in at.expander]
    assert f"#{job.id} two-workers · succeeded · step 3/3" in labels, labels
    assert any(
        f"Slurm job {slurm_id} on partition debug: 1 node(s) x 2 task(s), CPU" in c.value
        for c in at.caption
    )
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["data"][0]["name"] == "total" and list(u.plotly_array(fig["data"][0]["x"])) == [
        1,
        2,
        3,
    ]
    assert list(at.dataframe[-1].value["name"]) == [
        f"two-workers (job {job.id})"
    ]  # Registered models, named after their job
    assert f"two-workers (job {job.id})" in at.selectbox(key="base_model").options

    evaluation = _wait(
        store, evaluation.id, lambda j: j.state == jobs.SUCCEEDED, 300, "evaluation did not succeed"
    )
    assert 0 <= json.loads((tmp_path / "eval.json").read_text())["panoptic"]["All"]["pq"] <= 1


@pytest.mark.slow
def test_preemption_cancel_and_resume(slurm_cluster, tiny_dataset, tmp_path):
    store = JobStore(tmp_path / "work")
    argv = [
        *jobs.train_command(
            "synthetic/tiny", tiny_dataset, tmp_path / "run", steps=20, overrides=TINY
        ),
        "--checkpoint-every",
        "5",
    ]
    job = submit(store, argv, SlurmOptions(), name="long")
    slurm_id, _ = slurm_info(store, job)
    checkpoint = Path(job.workdir) / "checkpoints" / "checkpoint"
    _wait(
        store,
        job.id,
        lambda j: checkpoint.exists() and store.progress(j).step >= 7,
        300,
        "no checkpoint",
    )

    # Preemption as a preempting job (or a failed node) does it: Slurm requeues the job and it
    # starts again by itself. Slurm holds a requeued job back for two minutes; the test lets it
    # go at once.
    subprocess.run(["scontrol", "requeue", slurm_id], check=True)
    _wait(store, job.id, lambda j: j.state == jobs.QUEUED, 60, "not requeued")
    while subprocess.run(["scontrol", "update", f"JobId={slurm_id}", "StartTime=now"]).returncode:
        time.sleep(0.5)
    _wait(
        store,
        job.id,
        lambda j: "resumed from step" in store.read_log(j),
        300,
        "did not resume after requeue",
    )
    log = store.read_log(job, max_bytes=10**6)
    stopped = re.search(
        r"stopped \(SIGTERM\) at step (\d+); the last checkpoint is step (\d+)", log
    )
    assert stopped, log[-3000:]
    at_step, kept = map(int, stopped.groups())
    assert (
        at_step - kept <= 5 and f"resumed from step {kept} " in log
    )  # lost at most one checkpoint interval
    assert f"(Slurm job {slurm_id}, restart 1," in log

    job = store.cancel(job.id, grace_s=15)
    assert job.state == jobs.CANCELLED
    assert slurm_cluster.scontrol_job(slurm_id)["JobState"] == "CANCELLED"
    assert (
        JobStore(tmp_path / "work").get(job.id).state == jobs.CANCELLED
    )  # as an app restart reads it

    job = store.resume(job.id)
    assert job.attempts == 2 and slurm_info(store, job)[0] != slurm_id
    job = _wait(store, job.id, lambda j: j.state == jobs.SUCCEEDED, 400, "resume did not finish")
    last = json.loads((Path(job.workdir) / "status.json").read_text())
    assert last["state"] == "finished" and last["step"] == 20
    resumed = [
        int(s)
        for s in re.findall(r"resumed from step (\d+) ", store.read_log(job, max_bytes=10**6))
    ]
    assert len(resumed) == 2 and resumed[1] >= resumed[0]
    steps = [
        int(line.split(",")[0])
        for line in (Path(job.workdir) / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert steps == list(
        range(1, 21)
    )  # each resume trained on from its checkpoint, each step kept once
