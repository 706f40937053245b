"""Faults of a training run (issue 24) and what a run tells its watchers (issue 28): a full disk,
two runs on one workdir, a killed run's leftovers and status, a stop that saves its step, history
snapshots spread over a short run, and status.json's phase, step time and ETA."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.bundle import load_bundle
from panoptic_deeplab.safe_files import DiskFullError, LockedError, RunLock
from panoptic_deeplab.training import CheckpointStore, train
from panoptic_deeplab.training.callbacks import ProgressLog
from panoptic_deeplab.training.history import load_step_bundle
from panoptic_deeplab.training.run_files import read_status
from tests.core.training import scenes
from tests.core.training.scenes import tiny_config

DEAD_PID = 2**22 + 12345  # above the default pid_max: no such process


def _train(config, workdir, **kwargs):
    return train(config, workdir, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, **kwargs)


def _status(workdir):
    return json.loads((workdir / "status.json").read_text())


def test_a_second_run_on_a_workdir_in_use_is_refused_naming_the_first(tmp_path):
    with RunLock(tmp_path, "pdl train"):
        with pytest.raises(LockedError, match=rf"in use by pdl train \(pid {os.getpid()} on "):
            _train(tiny_config(**{"train.steps": 2}), tmp_path, out=io.StringIO())
    assert not (tmp_path / "status.json").exists() and not (tmp_path / "config.yaml").exists()


def test_the_status_of_a_run_whose_process_is_gone_reads_stopped(tmp_path):
    running = {"state": "running", "step": 7, "total_steps": 30, "pid": DEAD_PID}
    (tmp_path / "status.json").write_text(json.dumps({**running, "last_checkpoint": 5}))
    status = read_status(tmp_path)  # no lock file: an older run, judged by its pid
    assert status["state"] == "stopped" and status["phase"] == "stopped"
    assert f"pid {DEAD_PID}" in status["message"] and "checkpoint is step 5" in status["message"]
    (tmp_path / "status.json").write_text(json.dumps({**running, "pid": os.getpid()}))
    RunLock(tmp_path, "pdl train").acquire().release()  # a lock file, nobody holding it
    assert read_status(tmp_path)["state"] == "stopped"  # the pid is alive, but not the run
    with RunLock(tmp_path, "pdl train"):
        assert read_status(tmp_path)["state"] == "running"


@pytest.mark.slow  # a 6-step tiny run, about 25 s on a loaded 2-core CPU
def test_a_short_run_spreads_its_history_and_its_last_snapshot_is_the_final_model(tmp_path):
    """keep_history 3 over 6 steps: snapshots at 2, 4, 6 though no checkpoint is due before the end;
    step 6's snapshot holds the final bundle's numbers. status.json times the steps; a killed
    bundle save's leftover folder is removed at the start."""
    leftover = tmp_path / f".model.tmp-{DEAD_PID}"
    leftover.mkdir()
    (leftover / "model.weights.h5").write_bytes(b"partial")
    config = tiny_config(
        **{"train.steps": 6, "train.checkpoint_every": 100, "train.keep_history": 3}
    )
    result = _train(config, tmp_path, out=io.StringIO())
    assert not leftover.exists()
    assert sorted(p.name for p in (tmp_path / "history").glob("*.index")) == [
        "step-2.index",
        "step-4.index",
        "step-6.index",
    ]
    final = load_bundle(result.bundle).model.get_weights()
    last = load_step_bundle(tmp_path, 6).model.get_weights()
    assert len(final) == len(last) and all(np.array_equal(a, b) for a, b in zip(final, last))
    status = _status(tmp_path)
    assert status["state"] == "finished" and status["phase"] == "finished"
    assert status["step_seconds"] > 0 and status["eta_s"] == 0 and status["eta"] == "0m00s"


@pytest.mark.slow  # a tiny run stopped at step 3, about 20 s
def test_a_stop_saves_the_step_it_stops_at(tmp_path, monkeypatch):
    on_step = ProgressLog.on_step

    def stop_at_3(self, step, logs):
        on_step(self, step, logs)
        if step == 3:
            raise KeyboardInterrupt  # Ctrl-C; SIGTERM raises SystemExit the same way

    monkeypatch.setattr(ProgressLog, "on_step", stop_at_3)
    config = tiny_config(**{"train.steps": 10, "train.checkpoint_every": 100})
    with pytest.raises(KeyboardInterrupt):
        _train(config, tmp_path, out=io.StringIO())
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")
    status = _status(tmp_path)
    assert status["state"] == "stopped" and status["last_checkpoint"] == 3
    assert "the last checkpoint is step 3" in status["message"]


@pytest.mark.slow  # a tiny run on a tmpfs, about 20 s
def test_a_full_disk_stops_training_with_a_clear_error_and_keeps_the_last_checkpoint(
    small_disk, fill_disk, monkeypatch
):
    workdir = small_disk("64m") / "run"
    save = CheckpointStore.save

    def fill_after_first_save(self, step):
        path = save(self, step)
        if step == 2:
            fill_disk(workdir.parent)
        return path

    monkeypatch.setattr(CheckpointStore, "save", fill_after_first_save)
    config = tiny_config(**{"train.steps": 6, "train.checkpoint_every": 2})
    with pytest.raises(DiskFullError) as caught:
        _train(config, workdir, out=io.StringIO())
    message = str(caught.value)
    assert str(workdir) in message and "no space left" in message and "Free some space" in message
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")).endswith("ckpt-2")
    CheckpointStore(workdir / "checkpoints", *_network_and_optimizer(config)).restore_latest()
    left = [p.name for p in workdir.rglob("*") if "_temp" in p.name or ".tmp-" in p.name]
    assert left == []
    (workdir.parent / "filler").unlink()
    status = _status(workdir)
    assert status["state"] == "failed" and "no space left" in status["message"]
    assert status["last_checkpoint"] == 2


def _network_and_optimizer(config):
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.trainer import _make_optimizer

    network = build_model(config, num_classes=scenes.SPEC.num_classes)
    optimizer = _make_optimizer(config, accumulation=1)
    optimizer.build(network.trainable_variables)
    return network, optimizer


def test_pdl_train_is_an_adapter_over_the_library_train(monkeypatch, tmp_path):
    """The CLI turns its flags into one panoptic_deeplab.train call (what scripts call)."""
    import argparse
    from types import SimpleNamespace

    import panoptic_deeplab
    from panoptic_deeplab.commands import train as command
    from panoptic_deeplab.training import api

    assert panoptic_deeplab.train is api.train
    calls = []

    def record(config, dataset, workdir, **kwargs):
        calls.append((config, dataset, workdir, kwargs))
        return SimpleNamespace(step=3, wall_time_s=1.0)

    monkeypatch.setattr(api, "train", record)
    parser = argparse.ArgumentParser()
    command.configure_parser(parser)
    argv = ["--config", "synthetic/tiny", "--dataset", "D", "--workdir", str(tmp_path)]
    argv += ["--steps", "3", "--eval-split", "val", "--init-from", "B", "--skip-dataset-check"]
    assert command.run(parser.parse_args(argv)) == 0
    ((config, dataset, workdir, kwargs),) = calls
    assert config.train.steps == 3 and (dataset, workdir) == ("D", str(tmp_path))
    assert kwargs["eval_split"] == "val" and kwargs["init_from"] == "B"
    assert kwargs["check_dataset"] is False and kwargs["low_memory"] is None
