import numpy as np
import pytest

from panoptic_deeplab.evaluation.semantic import ConfusionMatrix, mean_iou


def test_hand_case():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 255, 0, 2]])  # 255 predicted = void -> FN of class 2
    r = mean_iou([gt], [pred], num_classes=4)
    # class 0: TP1 FN1 -> 1/2; class 1: TP2 FP1 -> 2/3; class 2: TP1 FN1 -> 1/2; class 3 absent.
    assert (
        r["per_class_iou"][:3] == pytest.approx([0.5, 2 / 3, 0.5]) and r["per_class_iou"][3] is None
    )
    assert r["miou"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3) and r["n"] == 3


@pytest.mark.parametrize("seed", range(3))
def test_random_matches_hotcoco(seed):
    from hotcoco.semantic import SemanticEval

    rng = np.random.default_rng(seed)
    gts = [rng.integers(0, 6, (20, 30)) for _ in range(3)]
    for g in gts:
        g[rng.random(g.shape) < 0.1] = 255
    preds = [
        np.where(rng.random(g.shape) < 0.6, np.where(g == 255, 0, g), rng.integers(0, 6, g.shape))
        for g in gts
    ]
    ours = mean_iou(gts, preds, 6)
    ev = SemanticEval(6)
    for g, p in zip(gts, preds):
        ev.update(g.astype(np.int64), p.astype(np.int64))
    assert ours["miou"] == pytest.approx(ev.report()["metrics"]["mIoU"], abs=1e-9)
    # and a slow per-class count
    for c in range(6):
        tp = sum(((g == c) & (p == c)).sum() for g, p in zip(gts, preds))
        fp = sum(((g != c) & (g != 255) & (p == c)).sum() for g, p in zip(gts, preds))
        fn = sum(((g == c) & (p != c)).sum() for g, p in zip(gts, preds))
        assert ours["per_class_iou"][c] == pytest.approx(tp / (tp + fp + fn))


def test_bad_labels_are_reported():
    with pytest.raises(ValueError, match="GT labels"):
        ConfusionMatrix(3).update(np.array([5]), np.array([0]))
