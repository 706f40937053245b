"""`pdl train` as a process: SIGKILL after the first checkpoint, then resume; two CPU workers."""

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.core.training.scenes import ENV, PDL

TINY = [
    "--config",
    "synthetic/tiny",
    "--set",
    "dataset.crop_size=[65,97]",
    "--set",
    "train.log_every=1",
    "--set",
    "train.warmup_steps=0",
    "--batch-size",
    "2",
]


def _wait_for(predicate, proc, timeout, log):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"pdl train exited early ({proc.returncode}):\n{Path(log).read_text()[-3000:]}"
            )
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out:\n{Path(log).read_text()[-3000:]}")


@pytest.mark.slow
def test_sigkill_after_first_checkpoint_then_resume(tiny_dataset, tmp_path):
    workdir, log = tmp_path / "run", tmp_path / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                *PDL,
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
            stdout=out,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
        state = workdir / "checkpoints" / "checkpoint"
        _wait_for(state.exists, proc, 240, log)
        _wait_for(lambda: "step 3/1000" in log.read_text(), proc, 120, log)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    import tensorflow as tf

    last = int(tf.train.latest_checkpoint(str(workdir / "checkpoints")).rsplit("-", 1)[1])
    assert last >= 2 and last % 2 == 0
    assert (
        json.loads((workdir / "status.json").read_text())["state"] == "running"
    )  # killed, never finished

    done = subprocess.run(
        [
            *PDL,
            "train",
            *TINY,
            "--dataset",
            str(tiny_dataset),
            "--workdir",
            str(workdir),
            "--steps",
            str(last + 2),
            "--checkpoint-every",
            "2",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"resumed from step {last}" in done.stdout
    status = json.loads((workdir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == last + 2
    steps = [
        int(line.split(",")[0]) for line in (workdir / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert steps == list(range(1, last + 3))  # rows past the checkpoint were trained again, once
    assert (workdir / "model" / "bundle.json").is_file()


def test_bad_config_key_is_reported_without_traceback(tiny_dataset, tmp_path):
    done = subprocess.run(
        [
            *PDL,
            "train",
            *TINY,
            "--dataset",
            str(tiny_dataset),
            "--workdir",
            str(tmp_path),
            "--set",
            "train.stpes=3",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert (
        done.returncode == 2
        and "unknown key 'train.stpes'" in done.stderr
        and "Traceback" not in done.stderr
    )


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost(tiny_dataset, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {
            **ENV,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        log = open(tmp_path / f"worker{index}.log", "w")
        procs.append(
            (
                subprocess.Popen(
                    [
                        *PDL,
                        "train",
                        *TINY,
                        "--dataset",
                        str(tiny_dataset),
                        "--workdir",
                        str(tmp_path / "run"),
                        "--steps",
                        "3",
                        "--checkpoint-every",
                        "2",
                        "--strategy",
                        "multi_worker",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                ),
                log,
            )
        )
    try:
        for proc, _ in procs:
            proc.wait(timeout=300)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert [p.returncode for p, _ in procs] == [0, 0], "\n----\n".join(t[-3000:] for t in logs)
    assert "2 replica(s)" in logs[0] and "step 3/3" in logs[0]
    assert "step 3/3" not in logs[1]  # only the chief prints and writes
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 3
    assert (tmp_path / "run" / "model" / "bundle.json").is_file()
    assert not list((tmp_path / "run" / "worker_scratch").glob("*/ckpt-*"))
