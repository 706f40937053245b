"""`pdl review score --model` with the shipped demo model on a generated synthetic split with
planted errors (benchmarks/planted_errors.py: relabel, delete, merge, shift in turn, one per image):
they rank near the top. Measured on this set (seed 2027, 8 images): 7 of 8 in the top 10 (ranks 1-8
and 11), all 8 in the top 20; the asserts keep a margin of one error at 10."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
from panoptic_deeplab.review import ReviewStore

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "assets" / "models" / "synthetic_demo"


@pytest.mark.slow
def test_planted_errors_rank_near_the_top(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from planted_errors import found, plant_errors, recall_at

    data = make_synthetic_dataset(tmp_path / "data", 0, 8, height=256, width=512, seed=2027)
    planted = plant_errors(data)
    assert [e["kind"] for e in planted] == ["relabel", "delete", "merge", "shift"] * 2
    out = tmp_path / "ranking.json"
    argv = ["review", "score", "--model", str(DEMO), "--dataset", str(data)]
    assert main([*argv, "--store", str(tmp_path / "store"), "--out", str(out)]) == 0
    assert "8 images scored with synthetic_demo" in capsys.readouterr().out
    ranking = json.loads(out.read_text())
    ranks = [(e["kind"], [i for i, r in enumerate(ranking) if found(e, r)][:1]) for e in planted]
    assert recall_at(planted, ranking, 10) >= 0.75, ranks
    assert recall_at(planted, ranking, 20) == 1.0, ranks
    for kind in ("relabel", "delete", "merge"):  # each kind, both errors, in the top 10
        mine = [e for e in planted if e["kind"] == kind]
        assert recall_at(mine, ranking, 10) == 1.0, ranks
    shifts = [e for e in planted if e["kind"] == "shift"]
    assert recall_at(shifts, ranking, 10) >= 0.5, ranks
    relabelled = next(r for r in ranking if found(planted[0], r))
    assert relabelled["model_category_id"] == planted[0]["category_id"]  # the true class
    store = ReviewStore(data, "val", tmp_path / "store")
    assert store.sources()[0].kind == "model" and store.sources()[0].scored == 8
