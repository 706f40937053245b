"""`pdl review score --model` with the shipped demo model on a generated synthetic split with
planted errors (benchmarks/planted_errors.py: relabel, delete, merge, shift in turn, one per image):
all eight rank in the top 10. Measured on this set (seed 2027, 8 images): ranks 1-9, the ninth (a
shift) scoring 0.77 against 0.41 for the first item below it that is no planted error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset
from panoptic_deeplab.review import ReviewStore

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "assets" / "models" / "synthetic_demo"


@pytest.mark.slow
def test_planted_errors_rank_near_the_top(tmp_path, capsys):
    from benchmarks.planted_errors import found, plant_errors, recall_at

    data = make_synthetic_dataset(tmp_path / "data", 0, 8, height=256, width=512, seed=2027)
    planted = plant_errors(data)
    assert [e["kind"] for e in planted] == ["relabel", "delete", "merge", "shift"] * 2
    out = tmp_path / "ranking.json"
    argv = ["review", "score", "--model", str(DEMO), "--dataset", str(data)]
    assert main([*argv, "--store", str(tmp_path / "store"), "--out", str(out)]) == 0
    assert "8 images scored with synthetic_demo" in capsys.readouterr().out
    ranking = json.loads(out.read_text())
    ranks = [(e["kind"], [i for i, r in enumerate(ranking) if found(e, r)][:1]) for e in planted]
    assert recall_at(planted, ranking, 10) == 1.0, ranks  # merges and shifts included
    relabelled = next(r for r in ranking if found(planted[0], r))
    assert relabelled["model_category_id"] == planted[0]["category_id"]  # the true class
    store = ReviewStore(data, "val", tmp_path / "store")
    assert store.sources()[0].kind == "model" and store.sources()[0].scored == 8
