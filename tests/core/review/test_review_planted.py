"""`pdl review score --model` with the shipped demo model on a generated synthetic split with
planted errors: a relabelled thing and a deleted one (a missing annotation) rank in the top 10."""

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
def test_planted_relabel_and_delete_rank_in_the_top_ten(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from planted_errors import found, plant_errors, recall_at

    data = make_synthetic_dataset(tmp_path / "data", 0, 4, height=256, width=512, seed=2027)
    planted = plant_errors(data, kinds=("relabel", "delete"))
    assert [e["kind"] for e in planted] == ["relabel", "delete"] * 2
    out = tmp_path / "ranking.json"
    argv = ["review", "score", "--model", str(DEMO), "--dataset", str(data)]
    assert main([*argv, "--store", str(tmp_path / "store"), "--out", str(out)]) == 0
    assert "4 images scored with synthetic_demo" in capsys.readouterr().out
    ranking = json.loads(out.read_text())
    assert recall_at(planted, ranking, 10) == 1.0, [
        (e, [i for i, r in enumerate(ranking) if found(e, r)][:1]) for e in planted
    ]
    relabelled = next(r for r in ranking if found(planted[0], r))
    assert relabelled["model_category_id"] == planted[0]["category_id"]  # the true class
    store = ReviewStore(data, "val", tmp_path / "store")
    assert store.sources()[0].kind == "model" and store.sources()[0].scored == 4
