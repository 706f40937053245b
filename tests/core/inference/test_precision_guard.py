"""The bfloat16 accuracy guard on the shipped demo model: raw outputs near float32, PQ on a held-out
synthetic set within 0.5 points. ``precision_guard`` takes any bundle (an imported one too)."""
from __future__ import annotations

import pytest
from precision_guard import precision_guard

from panoptic_deeplab.commands.app import default_model
from panoptic_deeplab.model import builder

# Bounds for bf16 against fp32 on the demo model (observed on 60 images: max 0.086 / 0.026 / 6.1 px,
# mean 3.1e-4 / 3.1e-4 / 0.31 px; see README "Precision").
MAX_ABS = {"semantic_probs": 0.15, "center_heatmap": 0.05, "offsets": 10.0}
MEAN_ABS = {"semantic_probs": 1e-3, "center_heatmap": 1e-3, "offsets": 0.5}
MAX_PQ_DELTA = 0.5


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Synthetic scenes from a seed the demo model never saw (it was trained on seed 1)."""
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("held-out"), num_train=0, num_val=24, height=256, width=512,
                                  seed=2027, workers=1)


def assert_guard_holds(report):
    for key in MAX_ABS:
        assert report.max_abs[key] <= MAX_ABS[key], (key, report)
        assert report.mean_abs[key] <= MEAN_ABS[key], (key, report)
    assert report.semantic_agreement >= 0.998, report
    assert report.pq_delta <= MAX_PQ_DELTA, report


@pytest.mark.slow
def test_bf16_keeps_the_demo_models_outputs_and_pq(held_out, monkeypatch):
    report = precision_guard(default_model(), held_out, precision="bf16")
    assert report.pq_fp32 > 70  # the demo model works on these scenes at all
    assert_guard_holds(report)
    # The guard has teeth: with the center head in bfloat16 too, PQ moves by more than 0.5.
    monkeypatch.setattr(builder, "FLOAT32_PARTS", ())
    everything_bf16 = precision_guard(default_model(), held_out, precision="bf16")
    assert everything_bf16.pq_delta > MAX_PQ_DELTA, everything_bf16
