"""Outputs over training: model snapshots kept across the run (thinned evenly), listed with the
resume checkpoints, and loadable as a bundle for the Predictor."""

import io

import numpy as np
import pytest

from panoptic_deeplab.errors import CheckpointError
from panoptic_deeplab.training import train
from panoptic_deeplab.training.history import list_snapshots, load_step_bundle, thin_steps
from tests.core.training import scenes
from tests.core.training.scenes import tiny_config


def test_thinning_keeps_the_first_and_newest_and_spreads_the_rest():
    assert thin_steps([1, 2, 3], 3) == []
    assert thin_steps([1, 2, 3, 4], 3) == [2]
    kept = []
    for step in range(100, 2100, 100):  # one save every 100 steps, 10 kept
        kept.append(step)
        for gone in thin_steps(kept, 10):
            kept.remove(gone)
    assert len(kept) == 10 and kept[0] == 100 and kept[-1] == 2000
    gaps = np.diff(kept)
    assert gaps.max() <= 3 * gaps.min()  # spread over the run, not bunched at its end
    assert thin_steps([5, 7], 1) == [5] and thin_steps([5, 7], 0) == [5, 7]


@pytest.mark.slow  # a 6-step run
def test_train_keeps_history_and_any_step_loads_for_prediction(tmp_path):
    from panoptic_deeplab.inference import Predictor

    config = tiny_config(
        **{
            "train.steps": 6,
            "train.checkpoint_every": 1,
            "train.keep_checkpoints": 2,
            "train.keep_history": 3,
            "train.base_learning_rate": 3e-3,
        }
    )
    train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=io.StringIO())
    assert sorted(p.name for p in (tmp_path / "history").glob("*.index")) == [
        "step-1.index",
        "step-3.index",
        "step-6.index",
    ]
    snapshots = list_snapshots(tmp_path)
    assert [(s.step, s.source) for s in snapshots] == [
        (1, "history"),
        (3, "history"),
        (5, "checkpoints"),
        (6, "history"),
    ]
    early, final = load_step_bundle(tmp_path, 1), load_step_bundle(tmp_path, 6)
    assert early.info["step"] == 1 and early.spec == scenes.SPEC
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(early.model.get_weights(), final.model.get_weights())
    )
    image = scenes.arrays(1, 65, 97)[0][0]
    assert Predictor(early)(image).panoptic.shape == (65, 97)
    with pytest.raises(CheckpointError, match=r"no saved step 2 \(saved steps: 1, 3, 5, 6\)"):
        load_step_bundle(tmp_path, 2)


@pytest.mark.slow  # a 6-step run
def test_a_run_shorter_than_its_checkpoint_interval_keeps_its_history_spread(tmp_path):
    """Issue 28 item 6: a 30-step fine-tune with checkpoints every 100 steps kept only its last
    step. Snapshots are also taken every steps / keep_history steps."""
    config = tiny_config(
        **{"train.steps": 6, "train.checkpoint_every": 100, "train.keep_history": 3}
    )
    train(config, tmp_path, dataset_fn=scenes.dataset_fn(), spec=scenes.SPEC, out=io.StringIO())
    assert [(s.step, s.source) for s in list_snapshots(tmp_path)] == [
        (2, "history"),
        (4, "history"),
        (6, "history"),
    ]
