"""The Slurm backend without a cluster: TF_CONFIG from Slurm's environment, GPU per task, time
limits, the options' checks, the batch script, the task's checks of the workdir and data set, and no
Slurm on PATH. The real cluster runs are in tests/slurm/."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from panoptic_deeplab.jobs import JobError, JobStore, slurm_task
from panoptic_deeplab.jobs.backends import slurm
from panoptic_deeplab.jobs.backends.slurm import SlurmError, SlurmOptions

TRAIN = ["train", "--config", "synthetic/tiny", "--dataset", "/data/x", "--workdir", "/shared/run"]


def test_tasks_per_node_expands_slurms_compressed_counts():
    assert slurm_task.tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert slurm_task.tasks_per_node("4") == [4]
    with pytest.raises(JobError):
        slurm_task.tasks_per_node("2(x)")


def test_tf_config_lists_every_task_as_a_worker_with_ports_by_node():
    env = {
        "SLURM_JOB_ID": "1251",
        "SLURM_PROCID": "3",
        "SLURM_STEP_NUM_TASKS": "5",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2),1",
    }
    config = slurm_task.tf_config(env, ["gpu01", "gpu02", "cpu9"])
    base = slurm.PORT_FIRST + 1 * slurm.MAX_TASKS_PER_NODE  # job 1251 % 1250 slots = slot 1
    assert config == {
        "cluster": {
            "worker": [
                f"gpu01:{base}",
                f"gpu01:{base + 1}",
                f"gpu02:{base}",
                f"gpu02:{base + 1}",
                f"cpu9:{base}",
            ]
        },
        "task": {"type": "worker", "index": 3},
    }
    with pytest.raises(JobError, match="5 tasks"):
        slurm_task.tf_config({**env, "SLURM_STEP_TASKS_PER_NODE": "2(x3)"}, ["a", "b", "c"])


def test_each_task_sees_one_gpu_and_cpu_jobs_none():
    assert (
        slurm_task.task_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}, 0) == "-1"
    )  # asked for none: not ours
    assert slurm_task.task_gpus({"CUDA_VISIBLE_DEVICES": "4,5,6,7", "SLURM_LOCALID": "2"}, 4) == "6"
    assert (
        slurm_task.task_gpus({"CUDA_VISIBLE_DEVICES": "3", "SLURM_LOCALID": "1"}, 2) == "3"
    )  # bound by Slurm


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30", 1800),
        ("30:15", 1815),
        ("02:00:00", 7200),
        ("1-12", 129600),
        ("1-00:30", 88200),
        ("2-01:00:05", 176405),
        ("UNLIMITED", None),
        ("1h", None),
    ],
)
def test_parse_time_reads_slurms_formats(text, seconds):
    assert slurm.parse_time(text) == seconds


@pytest.mark.parametrize(
    "options, argv, message",
    [
        (SlurmOptions(partition="a;b"), TRAIN, "letters, digits"),
        (SlurmOptions(nodes=0), TRAIN, "--nodes"),
        (SlurmOptions(time="soon"), TRAIN, "not a Slurm time limit"),
        (SlurmOptions(gpus_per_node=4, tasks_per_node=2), TRAIN, "one GPU"),
        (SlurmOptions(tasks_per_node=17), TRAIN, "at most 16"),
        (SlurmOptions(cpus_per_task=0), TRAIN, "--cpus-per-task"),
        (SlurmOptions(nodes=2), ["evaluate", "--model", "/m", "--dataset", "/d"], "one task"),
        (SlurmOptions(nodes=2), [*TRAIN, "--strategy", "mirrored"], "multi_worker"),
        (SlurmOptions(), ["make-dataset", "synthetic", "--out", "/x"], "cannot run on Slurm"),
    ],
)
def test_options_that_cannot_work_are_refused(options, argv, message):
    with pytest.raises(JobError, match=message):
        options.check(argv[0], argv)


def test_gpus_per_node_become_gres_and_as_many_tasks(tmp_path):
    store = JobStore(tmp_path)
    job = store.get(_record(store, tmp_path))
    script = slurm.batch_script(
        job,
        SlurmOptions(partition="gpu", nodes=2, gpus_per_node=4, time="04:00:00", cpus_per_task=8),
        "t0",
    )
    for line in (
        "#SBATCH --gres=gpu:4",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --nodes=2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --requeue",
        f"#SBATCH --output={job.log_path}",
        "#SBATCH --open-mode=append",
    ):
        assert line in script.splitlines()
    assert (
        "srun --kill-on-bad-exit=1 --distribution=block --cpus-per-task=8 " in script
        and "--gpus-per-node 4" in script
        and "--token t0" in script
    )
    bash = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert bash.returncode == 0, bash.stderr


def _record(store: JobStore, tmp_path, name: str = "r", workdir: str = "run") -> int:
    with store._connect() as db:
        return db.execute(
            "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, created_at, backend)"
            " VALUES ('train', ?, ?, ?, ?, 'queued', 0, 'slurm')",
            (name, json.dumps(TRAIN), str(tmp_path / workdir), str(tmp_path / workdir / "job.log")),
        ).lastrowid


def test_the_job_name_and_a_percent_in_the_log_path_reach_sbatch_intact(tmp_path):
    store = JobStore(tmp_path)
    job = store.get(_record(store, tmp_path, name="my tune; rm -rf ~", workdir="run-100%"))
    lines = slurm.batch_script(job, SlurmOptions(), "t0").splitlines()
    assert "#SBATCH --job-name=pdl-1-my-tune-rm--rf-" in lines
    assert (
        f"#SBATCH --output={tmp_path}/run-100%%/job.log" in lines
    )  # %% is a plain % in Slurm's patterns


def test_no_slurm_on_path_is_one_clear_line_and_no_record(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    store = JobStore(tmp_path / "work")
    with pytest.raises(SlurmError) as err:
        slurm.submit(store, [*TRAIN[:6], str(tmp_path / "run")], SlurmOptions())
    assert str(err.value).startswith("Slurm is not available here: `sbatch` is not on PATH")
    assert "\n" not in str(err.value) and store.list() == [] and not (tmp_path / "run").exists()
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
            "submit",
            *TRAIN,
        ],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path / "empty"), "PYTHONPATH": ":".join(sys.path)},
    )
    assert (
        done.returncode == 2
        and done.stderr.count("\n") == 1
        and "`sbatch` is not on PATH" in done.stderr
    )


def test_slurm_options_without_the_slurm_backend_are_refused(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "jobs",
            "--root",
            str(tmp_path),
            "--nodes",
            "2",
            "submit",
            *TRAIN,
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert (
        done.returncode == 2
        and "--nodes only apply to `pdl jobs --backend slurm submit" in done.stderr
    )


def _task(tmp_path, token_written: str, argv, **env):
    workdir = tmp_path / "run"
    workdir.mkdir(exist_ok=True)
    (workdir / slurm.TOKEN_FILE).write_text(token_written)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab.jobs.slurm_task",
            "--workdir",
            str(workdir),
            "--token",
            "abc",
            "--",
            *argv,
        ],
        capture_output=True,
        text=True,
        env={
            "PYTHONPATH": ":".join(sys.path),
            "SLURM_PROCID": "1",
            "SLURMD_NODENAME": "node7",
            **env,
        },
    )


def test_a_task_on_other_storage_says_the_workdir_must_be_shared(tmp_path):
    done = _task(tmp_path, "another-job", [*TRAIN[:6], str(tmp_path / "run")])
    assert done.returncode == 2
    assert (
        "task 1 on node7 cannot see the job's workdir" in done.stderr
        and "storage every node" in done.stderr
    )


def test_a_task_that_cannot_find_the_data_set_says_so(tmp_path):
    done = _task(
        tmp_path,
        "abc",
        [
            "train",
            "--config",
            "synthetic/tiny",
            "--dataset",
            str(tmp_path / "nowhere"),
            "--workdir",
            str(tmp_path / "run"),
        ],
    )
    assert done.returncode == 2
    assert f"task 1 on node7 cannot find the data set {tmp_path / 'nowhere'}" in done.stderr


def test_a_store_from_before_the_slurm_backend_opens_with_its_jobs_local(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "jobs.sqlite")
    db.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
        " name TEXT NOT NULL, argv TEXT NOT NULL, workdir TEXT NOT NULL, log_path TEXT NOT NULL,"
        " state TEXT NOT NULL,"
        " gpus TEXT NOT NULL DEFAULT '[]', pid INTEGER, pid_start TEXT, exit_code INTEGER,"
        " message TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, started_at REAL,"
        " ended_at REAL,"
        " attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "INSERT INTO jobs (kind, name, argv, workdir, log_path, state, created_at) VALUES"
        " ('train', 'old', '[\"train\"]', '/w', '/w/job.log', 'succeeded', 0)"
    )
    db.commit()
    db.close()
    (job,) = JobStore(tmp_path).list()
    assert job.name == "old" and job.backend == "local" and job.state == "succeeded"


def test_slurm_exit_codes_read_as_a_shell_reports_them():
    assert [slurm._exit_code(t) for t in ("0:0", "2:0", "0:15", "137:0")] == [0, 2, 143, 137]


def _fake_slurm(tmp_path, monkeypatch, sacct: str) -> None:
    """scontrol that no longer knows the job (slurmctld's MinJobAge passed) and the given sacct."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(
        "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\nexit 1\n"
    )
    (bin_dir / "sacct").write_text(f"#!/bin/sh\n{sacct}\n")
    for tool in ("scontrol", "sacct"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def _forgotten_job(tmp_path) -> tuple[JobStore, int]:
    store = JobStore(tmp_path / "work")
    job_id = _record(store, tmp_path)
    store.update(job_id, backend_data={"slurm_id": "77", "options": {}, "token": "t"})
    (tmp_path / "run").mkdir(parents=True)
    return store, job_id


def test_a_job_slurmctld_forgot_gets_its_state_from_sacct(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, "echo 'TIMEOUT|0:15|TimeLimit|node3'")
    store, job_id = _forgotten_job(tmp_path)
    job = store.refresh(job_id)
    assert job.state == "failed" and job.exit_code == 143
    assert (
        job.message
        == "Slurm job 77 reached its time limit (exit code 0:15, reason TimeLimit); see the log"
    )


def test_without_accounting_the_exit_file_tells_how_a_forgotten_job_ended(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, "echo 'Slurm accounting storage is disabled' >&2; exit 1")
    store, job_id = _forgotten_job(tmp_path)
    (tmp_path / "run" / ".job_exit").write_text("0")
    assert store.refresh(job_id).state == "succeeded"
    store, job_id = _forgotten_job(tmp_path / "b")
    assert store.refresh(job_id).state == "failed"  # no exit file: killed before the end
    assert "no longer knows job 77" in store.get(job_id).message


def test_a_failed_job_without_its_log_says_the_workdir_is_not_shared(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, "exit 1")
    (tmp_path / "bin" / "scontrol").write_text(
        # What slurmctld reports when slurmd cannot open the job's --output (seen on Slurm 22.05).
        "#!/bin/sh\necho 'JobId=77 JobState=FAILED Reason=JobLaunchFailure ExitCode=0:53"
        " NodeList=node3'\n"
    )
    store, job_id = _forgotten_job(tmp_path)
    job = store.refresh(job_id)
    assert job.state == "failed" and job.exit_code == 128 + 53
    assert job.message.startswith(
        f"Slurm could not write the log {tmp_path / 'run' / 'job.log'} on the job's node"
    )


def test_slurm_records_of_a_store_from_before_backend_data_are_adopted(tmp_path):
    """Stores written before jobs.backend_data kept Slurm's fields in a table slurm_jobs."""
    store = JobStore(tmp_path)
    job_id = _record(store, tmp_path)
    options = json.dumps({"partition": "gpu", "nodes": 2, "no_longer_an_option": 1})
    with store._connect() as db:
        db.execute("UPDATE jobs SET backend_data='{}' WHERE id=?", (job_id,))
        db.execute(
            "CREATE TABLE slurm_jobs (job_id INTEGER PRIMARY KEY, slurm_id TEXT NOT NULL,"
            " options TEXT NOT NULL, token TEXT NOT NULL)"
        )
        db.execute("INSERT INTO slurm_jobs VALUES (?, '41', ?, 'tok')", (job_id, options))
    reopened = JobStore(tmp_path)
    slurm_id, adopted = slurm.slurm_info(reopened, reopened.get(job_id))
    assert slurm_id == "41" and adopted == SlurmOptions(partition="gpu", nodes=2)
    assert reopened.get(job_id).backend_data["token"] == "tok"
