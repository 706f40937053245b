"""`pdl evaluate --oracle` on the shipped demo model and a held-out synthetic set: the full oracle
reaches PQ >= 95, no single oracle lowers PQ beyond noise, the JSON carries every oracle and the
error breakdown adds up, and the printed table shows the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.evaluation.report import oracle_class_table
from panoptic_deeplab.evaluation.results import EvaluationResult

DEMO = Path(__file__).resolve().parents[3] / "assets" / "models" / "synthetic_demo"
NOISE = 1.0  # PQ points: one segment of a class in 6 images moves its PQ by more than this


@pytest.mark.slow
def test_oracles_on_the_demo_model(tmp_path, capsys):
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    root = make_synthetic_dataset(
        tmp_path / "heldout", num_train=0, num_val=6, height=256, width=512, seed=4242, workers=1
    )
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(DEMO),
                "--dataset",
                str(root),
                "--split",
                "val",
                "--ap",
                "none",
                "--oracle",
                "semantic,center,offset,all",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    oracles = result["oracles"]
    assert list(oracles) == ["semantic", "center", "offset", "all"]
    for entry in oracles.values():
        assert set(entry) >= {"All", "Things", "Stuff", "per_class"}
    model_pq = 100 * result["panoptic"]["All"]["pq"]
    assert 100 * oracles["all"]["All"]["pq"] >= 95.0, oracles["all"]["why_below_100"]
    assert oracles["all"]["why_below_100"]
    for name in ("semantic", "center", "offset"):
        assert 100 * oracles[name]["All"]["pq"] >= model_pq - NOISE, name
    # The error breakdown of the model and of each oracle: PQ + parts + IoU shortfall = 100.
    for errors in [result["errors"], *(o["errors"] for o in oracles.values())]:
        for row in [errors["All"], *errors["per_class"].values()]:
            assert row["pq"] + sum(row["points"].values()) == pytest.approx(100.0)
    assert all("oracle_pq" in image for image in result["per_image"])
    # The printed per-class table is the library's table of the same JSON.
    assert "Oracle PQ per class" in printed and "PQ points lost per error type" in printed
    table = oracle_class_table(EvaluationResult.from_json(result))
    for _, row in table.iterrows():
        assert f"{row['class']}" in printed
    bus = table.loc[table["class"] == "bus"].iloc[0]
    assert f"{bus['all']:.2f}".rstrip("0").rstrip(".") in printed
