"""deeplab2's own instance-AP test cases (``evaluation/coco_instance_ap_test.py``: inputs and
expected numbers) through ``coco_instance_ap``; the team images are deeplab2's test PNGs (Apache
2.0, see deeplab2_testdata/README.md)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.evaluation.instance_ap import cityscapes_instance_ap, coco_instance_ap

DATA = Path(__file__).parent / "deeplab2_testdata"
DIV = 256
# Their 4x4 case: class 0 is the ignore label *and* in the thing list.
GT_CLASSES = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]])
PRED_CLASSES = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 2, 2], [0, 0, 2, 2]])
INSTANCES = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 3, 3], [0, 0, 3, 3]])
KW = dict(thing_class_ids=[0, 1, 2], label_divisor=DIV, ignore_label=0)


def deeplab2_scores(panoptic, semantic_probability, instance_score_map):
    """deeplab2's ``combined_instance_scores``: per segment (not of the ignore label 0), the mean
    probability of its class times the mean instance score, over its mask."""
    scores = {}
    for seg in np.unique(panoptic):
        if seg // DIV == 0:
            continue
        mask = panoptic == seg
        scores[int(seg)] = float(
            semantic_probability[mask][:, seg // DIV].mean() * instance_score_map[mask].mean()
        )
    return scores


def four_by_four_probability():
    prob = np.zeros((4, 4, 3), np.float32)
    prob[2:, :2, 0] = 1  # their per-class planes: class 0 bottom left, 1 top, 2 bottom right
    prob[:2, :, 1] = 1
    prob[2:, 2:, 2] = 1
    return prob


@pytest.mark.parametrize(
    "scores, expected",
    [
        (
            [
                [0.4, 0.4, 0.9, 0.9],
                [0.4, 0.4, 0.9, 0.9],
                [0.0, 0.0, 0.8, 0.8],
                [0.0, 0.0, 0.8, 0.8],
            ],
            [0.5025, 0.5025, 0.5025, 0.5025, -1, -1, 0.25, 0.75, 0.75, 0.75, -1, -1],
        ),  # bad: wrong instance first
        (
            [
                [0.9, 0.9, 0.4, 0.4],
                [0.9, 0.9, 0.4, 0.4],
                [0.0, 0.0, 0.8, 0.8],
                [0.0, 0.0, 0.8, 0.8],
            ],
            [0.75248, 0.75248, 0.75248, 0.75248, -1, -1, 0.75, 0.75, 0.75, 0.75, -1, -1],
        ),  # good
    ],
    ids=["bad", "good"],
)
def test_evaluates_with_scores(scores, expected):
    gt = GT_CLASSES * DIV + INSTANCES
    pred = PRED_CLASSES * DIV + INSTANCES
    s = deeplab2_scores(pred, four_by_four_probability(), np.asarray(scores, np.float32))
    assert 0 not in s  # the ignore-label segment has no score, and needs none
    result = coco_instance_ap([gt], [pred], [s], **KW)
    np.testing.assert_almost_equal(result["stats"], expected, decimal=4)
    cityscapes_instance_ap([gt], [pred], [s], **KW)  # the same filter: no "no score" error


def test_ignores_crowds():
    """deeplab2 marks GT instance 2 (class 2, top right) as crowd; here a crowd is instance 0."""
    gt = GT_CLASSES * DIV + np.where(INSTANCES == 2, 0, INSTANCES)
    pred = PRED_CLASSES * DIV + INSTANCES
    s = deeplab2_scores(pred, np.ones((4, 4, 3), np.float32), np.ones((4, 4), np.float32))
    # All scores tie (1.0): the class-1 false positive on the crowd ranks after the true positive
    # (raster order of first appearance), so precision is 1 up to full recall.
    result = coco_instance_ap([gt], [pred], [s], **KW)
    np.testing.assert_almost_equal(
        result["stats"], [1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1], decimal=4
    )


def _gray(name):
    return np.array(Image.open(DATA / name).convert("L")).astype(np.int64)


def test_team_case_ties_break_by_raster_order():
    colors = {
        (0, 0, 0): 0,
        (0, 0, 255): 1,
        (255, 0, 0): 2,
        (0, 255, 0): 3,
        (255, 0, 255): 4,
        (0, 255, 255): 5,
        (255, 255, 0): 6,
    }
    gt_instances = _gray("team_gt_instance.png")
    instance_class = {0: 0, 47: 1, 97: 1, 133: 1, 150: 1, 174: 1, 198: 2, 215: 1, 244: 1, 255: 1}
    assert set(np.unique(gt_instances)) == set(instance_class)
    gt_classes = np.vectorize(instance_class.get)(gt_instances)
    rgb = np.array(Image.open(DATA / "team_pred_class.png").convert("RGB")).astype(np.int64)
    pred_classes = np.full(rgb.shape[:2], -1)
    for color, label in colors.items():
        pred_classes[np.all(rgb == color, axis=-1)] = label
    assert (pred_classes >= 0).all()
    gt = gt_classes * DIV + gt_instances
    pred = pred_classes * DIV + _gray("team_pred_instance.png")
    s = deeplab2_scores(
        pred, np.ones(pred.shape + (7,), np.float32), np.ones(pred.shape, np.float32)
    )
    result = coco_instance_ap(
        [gt], [pred], [s], thing_class_ids=[1, 2], label_divisor=DIV, ignore_label=0
    )
    expected = [
        0.2549,
        0.9356,
        0.1215,
        -1.0,
        0.2399,
        0.501,
        0.0812,
        0.2688,
        0.2688,
        -1.0,
        0.2583,
        0.5,
    ]
    np.testing.assert_almost_equal(result["stats"], expected, decimal=4)
