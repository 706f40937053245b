"""Oracle ablations: ground truth in place of the heads, the same post-processing, and the counted
reasons why the full oracle can stay below 100 (shared centers, the stuff area limit, crowd)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from panoptic_deeplab.datasets.specs import get_dataset_spec
from panoptic_deeplab.errors import UserError
from panoptic_deeplab.evaluation.evaluate_split import OracleEvaluation
from panoptic_deeplab.evaluation.oracles import HEADS, instance_centers, parse_oracles
from panoptic_deeplab.postprocess import PostProcessOptions

SPEC = get_dataset_spec("synthetic")  # road 0 ... sky 4 stuff; person 5, car 6, bus 7
DIV = SPEC.label_divisor
ROAD, SKY, PERSON, CAR = 0, 4, 5, 6
OPTIONS = PostProcessOptions(
    thing_class_ids=tuple(SPEC.thing_class_ids),
    label_divisor=DIV,
    void_label=SPEC.ignore_label,
    center_threshold=0.1,
    nms_kernel=7,
    keep_k_centers=200,
    stuff_area_limit=64,
)


def test_parse_oracles():
    assert parse_oracles("semantic,center,offset,all") == {
        "semantic": ("semantic",),
        "center": ("center",),
        "offset": ("offset",),
        "all": HEADS,
    }
    assert parse_oracles(" offset+semantic , none") == {
        "offset+semantic": ("semantic", "offset"),
        "none": (),
    }
    with pytest.raises(UserError, match="unknown head 'centre'"):
        parse_oracles("semantic,centre")
    with pytest.raises(UserError, match="no oracle"):
        parse_oracles(" , ")


def blind_prediction(h, w):
    """A model that sees only road and no center: every improvement comes from the oracles."""
    probs = np.zeros((h, w, SPEC.num_classes), np.float32)
    probs[..., ROAD] = 1.0
    return SimpleNamespace(
        semantic_probs=probs,
        center_heatmap=np.zeros((h, w), np.float32),
        offsets=np.zeros((h, w, 2), np.float32),
    )


def evaluate(gt, names="semantic,center,offset,all"):
    oracles = OracleEvaluation(SPEC, parse_oracles(names), OPTIONS, sigma=2.0)
    from panoptic_deeplab.evaluation.evaluate_split import Evaluation

    prediction = blind_prediction(*gt.shape)
    model = Evaluation(SPEC, ap="none")
    fused = oracles.runner.run(prediction, oracles.runner.targets(gt), ())
    record = model.add(0, "a.png", gt, fused)
    oracles.add(record, gt, prediction)
    return model.result(), oracles.result(), record


def clean_scene():
    gt = np.full((48, 80), ROAD * DIV, np.int64)
    gt[:12] = SKY * DIV
    gt[20:30, 5:15] = CAR * DIV + 1
    gt[20:40, 30:38] = PERSON * DIV + 1
    gt[18:34, 50:54] = PERSON * DIV + 2  # close to person 1: both centers survive (equal peaks)
    gt[30:44, 60:75] = CAR * DIV + 2
    return gt


def test_full_oracle_is_perfect_on_a_clean_scene_and_single_oracles_fix_their_head():
    model, oracles, record = evaluate(clean_scene())
    assert model.panoptic.all.pq < 0.5
    assert oracles["all"].panoptic.all.pq == pytest.approx(1.0)
    assert oracles["all"].centers == {"instances": 4, "shared_center": 0, "center_not_found": 0}
    assert oracles["all"].why_below_100[0].startswith("PQ 100.00: nothing lost")
    # The semantic oracle alone: stuff perfect; things without centers become one blob per class.
    sem = oracles["semantic"].panoptic
    assert sem.stuff.pq == pytest.approx(1.0) and sem.things.pq < 0.5
    # Centers or offsets alone cannot help a model that predicts no thing pixel.
    assert oracles["center"].panoptic.all.pq == pytest.approx(model.panoptic.all.pq)
    assert set(record["oracle_pq"]) == {"semantic", "center", "offset", "all"}


def test_gt_centers_are_the_peaks_of_the_gt_heatmap():
    gt = clean_scene()
    from panoptic_deeplab.evaluation.oracles import OracleRunner

    targets = OracleRunner(SPEC, OPTIONS, sigma=2.0).targets(gt)
    for value, (y, x) in instance_centers(gt, SPEC).items():
        assert targets["center_heatmap"][y, x] == 1.0
        ys, xs = np.nonzero(gt == value)
        assert (y, x) == (round(ys.mean()), round(xs.mean()))
        offsets = targets["offsets"][ys, xs]
        assert np.array_equal(np.stack([ys, xs], 1) + offsets, np.tile([[y, x]], (len(ys), 1)))


def test_full_oracle_shortfall_is_counted_shared_center_area_limit_and_crowd():
    gt = np.full((48, 80), ROAD * DIV, np.int64)
    gt[:4, :10] = SKY * DIV  # 40 px of sky <= stuff_area_limit 64: voided
    gt[10:30, 10:30] = CAR * DIV + 1  # a ring ...
    gt[15:25, 15:25] = CAR * DIV + 2  # ... around a car with the same mass center
    gt[34:40, 50:56] = PERSON * DIV  # a small crowd region
    gt[34:42, 40:48] = PERSON * DIV + 1  # beside the crowd: its pixels join this person
    _, oracles, _ = evaluate(gt, "all")
    full = oracles["all"]
    assert 0 < full.panoptic.all.pq < 1.0
    assert full.centers == {"instances": 3, "shared_center": 1, "center_not_found": 0}
    counts = full.errors.all.counts
    assert counts["stuff_area_limit"] == 1 and counts["merge"] >= 1
    why = "\n".join(full.why_below_100)
    assert "no center of their own" in why and "stuff_area_limit" in why and "crowd" in why
    # The person next to the crowd absorbed crowd pixels: matched, with IoU < 1.
    person = full.panoptic.per_class[PERSON]
    assert person.tp == 1 and person.sq < 1.0
    json.dumps(full.to_json())


def test_a_misspelt_oracle_stops_pdl_evaluate_before_any_work(tmp_path, capsys):
    from panoptic_deeplab.cli import main

    out = tmp_path / "r.json"
    code = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "no-model"),
            "--dataset",
            str(tmp_path / "no-data"),
            "--oracle",
            "semantic,centre",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--oracle: unknown head 'centre'" in err and "semantic+center" in err
    assert (
        "no-data" not in err and not out.exists()
    )  # refused before the data set or model was looked at


def test_app_jobs_may_pass_an_oracle_list_and_nothing_else():
    from panoptic_deeplab.jobs import JobError, validate_command

    argv = ["evaluate", "--model", "m", "--dataset", "d", "--oracle", "semantic,center+offset,all"]
    assert validate_command(argv) == argv
    for bad in ("semantic;rm", "semantic,,all", "-x"):
        with pytest.raises(JobError):
            validate_command(["evaluate", "--model", "m", "--dataset", "d", "--oracle", bad])
