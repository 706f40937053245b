"""The fit loop on a tiny hand-made data set: loss falls, NaN stops a run, resume, accumulation."""

import csv
import io
import json

import numpy as np
import pytest
import tensorflow as tf

from panoptic_deeplab.bundle import load_bundle
from panoptic_deeplab.training import CheckpointStore, TrainingDivergedError, train
from tests.core.training import scenes
from tests.core.training.scenes import tiny_config


def read_metrics(workdir):
    with open(workdir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # about 2 minutes on a quiet 2-core CPU
def test_tiny_model_loss_falls_and_run_files_are_written(tmp_path):
    config = tiny_config(
        **{"train.steps": 30, "train.checkpoint_every": 15, "train.base_learning_rate": 3e-3}
    )
    out = io.StringIO()
    result = train(
        config,
        tmp_path,
        dataset_fn=scenes.dataset_fn(),
        spec=scenes.SPEC,
        preview_images=scenes.arrays(1, 65, 97)[0],
        out=out,
    )
    rows = read_metrics(tmp_path)
    losses = [float(r["loss"]) for r in rows]
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.8 * first, (first, last)
    assert float(rows[-1]["images_per_sec"]) > 0 and float(rows[3]["learning_rate"]) > 0
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == status["total_steps"] == 30
    assert "step 30/30 loss" in out.getvalue() and "img/s" in out.getvalue()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.index")) == [
        "ckpt-15.index",
        "ckpt-30.index",
    ]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    bundle = load_bundle(result.bundle)
    assert bundle.info["steps"] == 30 and bundle.metrics["final_losses"]["loss"] == pytest.approx(
        losses[-1], rel=0.5
    )


@pytest.mark.slow  # 21 s in the quick tier on the 2-core CI machine
def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config(**{"train.steps": 10, "train.checkpoint_every": 2})
    with pytest.raises(
        TrainingDivergedError, match=r"not finite at step 4 .*last good checkpoint is step 2"
    ):
        train(
            config,
            tmp_path,
            dataset_fn=scenes.dataset_fn(nan_after=3),
            spec=scenes.SPEC,
            out=io.StringIO(),
        )
    status = json.loads((tmp_path / "status.json").read_text())
    assert (
        status["state"] == "failed"
        and "not finite" in status["message"]
        and status["last_checkpoint"] == 2
    )
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    assert not (tmp_path / "model").exists()
    # the kept checkpoint holds finite weights
    from panoptic_deeplab.model.builder import build_model

    network = build_model(config, num_classes=scenes.SPEC.num_classes)
    tf.train.Checkpoint(model=network).restore(
        str(tmp_path / "checkpoints" / "ckpt-2")
    ).expect_partial()
    assert all(np.isfinite(v.numpy()).all() for v in network.trainable_variables)


@pytest.mark.slow  # 24 s in the quick tier on the 2-core CI machine
def test_gradient_accumulation_and_a_damaged_newest_checkpoint(tmp_path):
    config = tiny_config(
        **{"train.steps": 4, "train.checkpoint_every": 2, "train.gradient_accumulation": 2}
    )
    out = io.StringIO()
    result = train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=out)
    assert result.step == 4 and "(2 x 2)" in out.getvalue()
    assert [int(r["step"]) for r in read_metrics(tmp_path)] == [1, 2, 3, 4]
    # Damage the newest checkpoint's data, as an interrupted write could: restore falls back to
    # step 2.
    data = next((tmp_path / "checkpoints").glob("ckpt-4.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.trainer import _make_optimizer

    network = build_model(config, num_classes=scenes.SPEC.num_classes)
    optimizer = _make_optimizer(config, accumulation=2)
    optimizer.build(network.trainable_variables)
    store = CheckpointStore(tmp_path / "checkpoints", network, optimizer)
    assert store.restore_latest().endswith("ckpt-2")
    assert int(optimizer.iterations) == 2  # optimizer updates, micro-batches / 2


def test_bad_batch_split_is_a_config_error(tmp_path):
    from panoptic_deeplab.errors import ConfigError

    config = tiny_config(**{"train.batch_size": 3, "train.gradient_accumulation": 2})
    with pytest.raises(ConfigError, match="not divisible"):
        train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=io.StringIO())


@pytest.mark.slow  # about a minute on a loaded 2-core CPU
def test_a_short_run_reports_its_phases_and_logs_every_step(tmp_path, monkeypatch):
    """status.json says what happens before the first step (the app shows it), and a run shorter
    than log_every still logs enough rows to draw a curve."""
    from panoptic_deeplab.training.callbacks import log_interval
    from panoptic_deeplab.training.run_files import RunFiles

    phases = []
    original = RunFiles.status

    def recording(self, state, step, message="", phase=None, **extra):
        original(self, state, step, message, phase, **extra)
        phases.append((state, json.loads(self.status_path.read_text())["phase"]))

    monkeypatch.setattr(RunFiles, "status", recording)
    config = tiny_config(**{"train.steps": 3, "train.log_every": 20, "train.checkpoint_every": 100})
    out = io.StringIO()
    train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=out)
    printed = [line for line in out.getvalue().splitlines() if line.startswith("phase: ")]
    assert printed == [
        "phase: building the model",
        "phase: preparing the input pipeline",
        "phase: tracing the training step",
    ]
    seen = list(dict.fromkeys(phases))  # status.json only once the run is sure to start
    assert seen[:3] == [
        ("starting", "preparing the input pipeline"),
        ("starting", "tracing the training step"),
        ("running", "training"),
    ]
    assert seen[-1] == ("finished", "finished")
    assert [int(r["step"]) for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert (log_interval(20, 60), log_interval(20, 700), log_interval(20, 5)) == (3, 20, 1)


def test_a_stop_right_after_a_save_reports_that_checkpoint(tmp_path, monkeypatch):
    """SIGTERM can land after TensorFlow registered a checkpoint but before the run noted it: the
    stop message and status.json must name the checkpoint a resume loads, not the one before."""
    config = tiny_config(**{"train.steps": 10, "train.checkpoint_every": 2})
    save = CheckpointStore.save

    def save_then_stop(self, step):
        path = save(self, step)
        if step == 4:
            raise SystemExit(143)  # what `pdl train`'s SIGTERM handler raises
        return path

    monkeypatch.setattr(CheckpointStore, "save", save_then_stop)
    with pytest.raises(SystemExit):
        train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=io.StringIO())
    status = json.loads((tmp_path / "status.json").read_text())
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")
    assert status["state"] == "stopped" and status["last_checkpoint"] == 4, status
    assert "the last checkpoint is step 4 in" in status["message"]


def test_training_turns_the_slow_first_run_graph_passes_off_and_gives_the_settings_back():
    from panoptic_deeplab.training import trainer

    tf.config.optimizer.set_experimental_options({"constant_folding": False})
    try:
        with trainer._quick_graph_passes():
            inside = tf.config.optimizer.get_experimental_options()
            assert all(inside[name] is False for name in trainer._SLOW_FIRST_RUN_PASSES)
        after = tf.config.optimizer.get_experimental_options()
        assert after["constant_folding"] is False  # as the process had it
        assert after["layout_optimizer"] is True and after["arithmetic_optimization"] is True
    finally:
        tf.config.optimizer.set_experimental_options(
            dict.fromkeys(trainer._SLOW_FIRST_RUN_PASSES, True)
        )
