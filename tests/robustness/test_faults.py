"""Faults during training, each with real `pdl train` processes on a tiny synthetic data set:

- SIGKILL three times in a row, each time while a checkpoint is being written, then a fourth run
  finishes; the half-written files such kills leave (and a torn newest checkpoint) are skipped and
  cleaned up, never crashed on;
- a job still running when the app restarts: a new JobStore and the Train page see it running with
  live progress and cancel it (SIGTERM); it stops cleanly with a loadable checkpoint;
- SIGTERM to a plain `pdl train` (what `docker stop` sends), then a learning rate so large the loss
  becomes NaN, then a sane resume from the last good checkpoint.

tests/core/training/test_cli_train.py covers a single SIGKILL after the first checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from panoptic_deeplab import jobs
from panoptic_deeplab.jobs import store as job_store
from tests.app import apptest_utils as u
from tests.core.training.scenes import ENV, PDL

SETTINGS = [
    "--set",
    "dataset.crop_size=[65,97]",
    "--set",
    "train.log_every=1",
    "--set",
    "train.warmup_steps=0",
]
TINY = ["--config", "synthetic/tiny", *SETTINGS, "--batch-size", "2"]
UNFINISHED = re.compile(
    r"ckpt-(\d+)_temp$|\.tempstate"
)  # what TensorFlow leaves of a save killed half-way


# -- helpers ------------------------------------------------------------------------------------


def _start(tiny_dataset, workdir, log: Path, *args) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            [
                *PDL,
                "train",
                *TINY,
                "--dataset",
                str(tiny_dataset),
                "--workdir",
                str(workdir),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
        )


def _run(tiny_dataset, workdir, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PDL, "train", *TINY, "--dataset", str(tiny_dataset), "--workdir", str(workdir), *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )


def _wait_for(predicate, proc, timeout, log: Path, poll: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"pdl train exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
            )
        time.sleep(poll)
    proc.kill()
    raise AssertionError(f"timed out:\n{log.read_text()[-3000:]}")


def _registered(checkpoints: Path) -> int:
    """The newest checkpoint step named by TensorFlow's ``checkpoint`` state file (0: none)."""
    state = checkpoints / "checkpoint"
    found = (
        re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text(), re.M)
        if state.is_file()
        else None
    )
    return int(found.group(1)) if found else 0


def _saving(checkpoints: Path, at_least: int) -> bool:
    """True while the save of a checkpoint numbered ``at_least`` or more is under way."""
    try:
        names = os.listdir(checkpoints)
    except FileNotFoundError:
        return False
    return any(
        (m := re.fullmatch(r"ckpt-(\d+)_temp", n)) and int(m.group(1)) >= at_least for n in names
    )


def _leftovers(checkpoints: Path) -> list[str]:
    return sorted(n for n in os.listdir(checkpoints) if UNFINISHED.search(n))


def _metric_steps(workdir: Path) -> list[int]:
    lines = (workdir / "metrics.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines if line.split(",")[1]]  # loss rows only


def _status(workdir: Path) -> dict:
    return json.loads((workdir / "status.json").read_text())


def _load_checkpoint_weights(workdir: Path) -> str:
    """Restore the workdir's newest checkpoint into a fresh tiny model the way `--init-from` does,
    and check every weight is finite; returns the checkpoint path."""
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.checkpoints import restore_model_weights

    config = load_config("synthetic/tiny", ["dataset.crop_size=[65,97]"])
    network = build_model(config, num_classes=get_dataset_spec("synthetic").num_classes)
    path = restore_model_weights(network, workdir)
    assert all(np.isfinite(v.numpy()).all() for v in network.trainable_variables), path
    return path


# -- 1 + 2: SIGKILL three times, each during a checkpoint write -----------------------------------


@pytest.mark.slow
def test_three_sigkills_during_checkpoint_writes_then_a_fourth_run_finishes(tiny_dataset, tmp_path):
    workdir = tmp_path / "run"
    checkpoints = workdir / "checkpoints"
    resumed_from, left = 0, []
    for attempt in range(3):
        log = tmp_path / f"attempt{attempt}.log"
        proc = _start(tiny_dataset, workdir, log, "--steps", "1000", "--checkpoint-every", "1")
        # This run saves resumed_from + 1 first; a save of resumed_from + 2 under way means it has
        # written a checkpoint of its own and is writing the next one: kill it right there.
        _wait_for(lambda n=resumed_from + 2: _saving(checkpoints, n), proc, 300, log, poll=0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = log.read_text()
        if attempt:
            assert f"resumed from step {resumed_from} " in text, text[-3000:]
            if left[-1]:
                # What the last kill left half-written was removed when this run opened the store.
                assert (
                    "removed the files of an unfinished checkpoint save" in text
                    and "Traceback" not in text
                )
        left.append(_leftovers(checkpoints))
        newest = _registered(checkpoints)
        assert newest > resumed_from, (attempt, newest, resumed_from)  # each run got further
        assert (
            _status(workdir)["state"] == "running"
        )  # a SIGKILL leaves no chance to write anything else
        resumed_from = newest
    # SIGKILL lands within milliseconds of the write starting: at least one kill caught TensorFlow's
    # temporary files on disk (a checkpoint being written, never registered).
    assert any(left), left

    # On top of that, the exact states a kill mid-write can leave for the next save (step n + 1),
    # and a torn newest checkpoint (a power cut or a full disk, not a SIGKILL): resume must skip
    # all of it.
    n = resumed_from
    for path in checkpoints.glob(
        f"ckpt-{n + 1}.*"
    ):  # the last kill may have caught step n + 1 written but
        path.unlink()  # not registered; plant from a clean slate
    data = next(checkpoints.glob(f"ckpt-{n}.data-*"))
    good = data.read_bytes()
    temp = checkpoints / f"ckpt-{n + 1}_temp"
    temp.mkdir(exist_ok=True)
    (temp / "part-00000-of-00001.data-00000-of-00001.tempstate1234").write_bytes(
        good[: len(good) // 2]
    )
    (checkpoints / f"ckpt-{n + 1}.data-00000-of-00001").write_bytes(
        good[: len(good) // 3]
    )  # shard, index never came
    (checkpoints / f"ckpt-{n + 1}.tempstate5678.index").write_bytes(b"\x00" * 100)
    data.write_bytes(good[:1000])  # the registered newest checkpoint is torn: fall back to n - 1

    final = n + 2
    done = _run(tiny_dataset, workdir, "--steps", str(final), "--checkpoint-every", "1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"resumed from step {n - 1} " in done.stdout
    assert f"the newest checkpoint(s) cannot be read, resuming from ckpt-{n - 1}" in done.stderr
    assert f"ckpt-{n}:" in done.stderr  # the warning names the torn checkpoint
    removed = re.search(
        r"removed the files of an unfinished checkpoint save in .*: (.*)", done.stderr
    )
    assert removed and {
        f"ckpt-{n + 1}_temp",
        f"ckpt-{n + 1}.data-00000-of-00001",
        f"ckpt-{n + 1}.tempstate5678.index",
    } <= set(removed.group(1).split(", ")), done.stderr
    assert _leftovers(checkpoints) == []
    status = _status(workdir)
    assert status["state"] == "finished" and status["step"] == final
    assert _metric_steps(workdir) == list(range(1, final + 1))  # every step exactly once
    assert (workdir / "model" / "bundle.json").is_file()
    assert _registered(checkpoints) == final and _load_checkpoint_weights(workdir).endswith(
        f"ckpt-{final}"
    )


# -- 4 + 3 + SIGTERM: a job across an app restart, cancelled; a NaN run; a resume, docker-stopped


@pytest.mark.slow
def test_running_job_across_an_app_restart_then_nan_loss_then_sigterm(
    tiny_dataset, tmp_path, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "work"  # the app's work directory (PDL_APP_WORKDIR), holding jobs.sqlite
    workdir = root / "runs" / "tune"
    checkpoints = workdir / "checkpoints"
    store = jobs.JobStore(root)
    job = store.submit(
        [
            "train",
            *TINY,
            "--dataset",
            str(tiny_dataset),
            "--workdir",
            str(workdir),
            "--steps",
            "1000",
            "--checkpoint-every",
            "2",
        ],
        name="tune",
    )
    proc = job_store._CHILDREN.pop(
        (str(store.db_path), job.id)
    )  # the app restarts: it has no handle on the process
    log = Path(job.log_path)
    try:
        _wait_for(
            lambda: (
                (workdir / "status.json").is_file()
                and _status(workdir)["step"] >= 3
                and _registered(checkpoints) >= 2
            ),
            proc,
            300,
            log,
        )

        # A new JobStore on the same SQLite file: still running, with progress that moves.
        fresh = jobs.JobStore(root)
        (listed,) = fresh.list()
        assert listed.id == job.id and listed.state == jobs.RUNNING and listed.pid == job.pid
        first = fresh.progress(listed)
        assert first.state == "running" and first.step >= 3 and first.total_steps == 1000
        _wait_for(lambda: fresh.progress(listed).step > first.step, proc, 120, log)
        assert list(fresh.metrics(listed)["step"])[:3] == [1, 2, 3]

        # The Train page, started fresh against that store, shows it running, cancels it (SIGTERM).
        u.set_app_env(monkeypatch, tmp_path, data=tiny_dataset)
        at = AppTest.from_file(str(u.APP_DIR / "pages" / "train.py"), default_timeout=u.TIMEOUT)
        at.run()
        assert not at.exception, at.exception
        label = next(e.label for e in at.expander if e.label.startswith(f"#{job.id} tune"))
        assert re.fullmatch(rf"#{job.id} tune · running · training: step \d+/1000.*", label), label
        assert at.get("progress") and at.button(key=f"cancel-{job.id}")
        at.button(key=f"cancel-{job.id}").click()
        at.run()
        assert not at.exception, at.exception
        cancelled = jobs.JobStore(root).get(job.id)
        assert cancelled.state == jobs.CANCELLED
        assert cancelled.exit_code == 128 + signal.SIGTERM, store.read_log(cancelled)[
            -3000:
        ]  # not the SIGKILL fallback
        assert any(e.label.startswith(f"#{job.id} tune · cancelled") for e in at.expander)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    status = _status(workdir)
    good = _registered(checkpoints)
    assert status["state"] == "stopped" and status["last_checkpoint"] == good >= 2, status
    assert (
        f"stopped (SIGTERM) at step {status['step']}; the last checkpoint is step {good}"
        in status["message"]
    )
    assert (
        "Run the same command again to resume from it." in log.read_text()
        and "Traceback" not in log.read_text()
    )

    # A learning rate so large that the loss becomes NaN: a clear error, the checkpoint is kept.
    nan = _run(
        tiny_dataset,
        workdir,
        "--steps",
        str(good + 6),
        "--checkpoint-every",
        "100",
        "--set",
        "train.base_learning_rate=1e30",
    )
    assert nan.returncode == 2, nan.stdout[-2000:] + nan.stderr[-3000:]
    assert f"resumed from step {good} " in nan.stdout  # the checkpoint SIGTERM left loads
    stopped = re.search(
        r"error: training stopped: the loss is not finite at step (\d+) ", nan.stderr
    )
    assert stopped and int(stopped.group(1)) > good, nan.stderr[-3000:]
    assert (
        f"The last good checkpoint is step {good} in {checkpoints}; it is kept. "
        "Lower train.base_learning_rate" in nan.stderr
    ) and "Traceback" not in nan.stderr
    status = _status(workdir)
    assert (
        status["state"] == "failed"
        and status["last_checkpoint"] == good
        and "not finite" in status["message"]
    )
    assert _registered(checkpoints) == good and not (workdir / "model").exists()

    # A sane learning rate continues from that checkpoint; then SIGTERM, as `docker stop` sends it.
    log = tmp_path / "resume.log"
    proc = _start(tiny_dataset, workdir, log, "--steps", "1000", "--checkpoint-every", "2")
    _wait_for(lambda: f"step {good + 2}: checkpoint" in log.read_text(), proc, 300, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    text = log.read_text()
    status = _status(workdir)
    last = _registered(checkpoints)
    assert f"resumed from step {good} " in text and "Traceback" not in text
    assert status["state"] == "stopped" and status["last_checkpoint"] == last >= good + 2, status
    assert (
        f"stopped (SIGTERM) at step {status['step']}; the last checkpoint is step {last} in "
        f"{checkpoints}. Run the same command again to resume from it."
    ) in text
    # The NaN run's rows are gone: every step exactly once, up to where SIGTERM stopped it.
    assert _metric_steps(workdir) == list(range(1, status["step"] + 1))
    assert _load_checkpoint_weights(workdir).endswith(f"ckpt-{last}")
