"""Panoptic error breakdown: where the PQ points of each class go (definitions and a hand-worked
example in docs/error-analysis.md).

PQ of a class is ``S / D`` with ``S`` the IoU sum of its matches and ``D = TP + FP/2 + FN/2``, so

    100 = PQ + 100 (TP - S) / D + sum over FN and FP of 100 * 0.5 / D

exactly: every false negative and every false positive costs ``50 / D`` points, and the matched
segments' IoU shortfall costs the rest. Each FN and FP gets one error type (first that applies, in
the order of ``FN_TYPES`` / ``FP_TYPES``), so the points per type plus the IoU shortfall
(``matched_iou``) add up to ``100 - PQ`` per class, and (classes averaged) overall.

No TensorFlow here.
"""

from __future__ import annotations

import numpy as np

from .panoptic_quality import ImageMatch, SegmentTable

# Checked in this order: the first that applies names the error.
FN_TYPES = ("stuff_area_limit", "wrong_class", "merge", "split", "low_iou", "missed")
FP_TYPES = ("wrong_class", "merge", "split", "low_iou", "spurious")
ERROR_TYPES = ("missed", "spurious", "wrong_class", "merge", "split", "low_iou", "stuff_area_limit")
REMAINDER = "matched_iou"  # IoU shortfall of the true positives (1 - IoU each)
LOW_IOU = (
    0.1  # a best same-class IoU in [LOW_IOU, 0.5] is a localisation error, below it a plain miss
)

LABELS = {
    "missed": "missed (FN)",
    "spurious": "spurious (FP)",
    "wrong_class": "wrong class",
    "merge": "merge",
    "split": "split",
    "low_iou": "low IoU (0.1-0.5)",
    "stuff_area_limit": "stuff voided by the area limit",
    REMAINDER: "IoU of matches < 1",
}


def _geometry(m: ImageMatch, gt: SegmentTable):
    n_g = len(gt.ids)
    inter = m.intersections
    pair = inter[1 : n_g + 1, 1:].astype(np.float64)
    gt_area = (gt.areas if gt.areas is not None else inter.sum(axis=1)[1 : n_g + 1]).astype(
        np.float64
    )
    pred_area = m.pred_areas.astype(np.float64)
    union = pred_area[None, :] + gt_area[:, None] - pair - inter[0, 1:][None, :]
    iou = np.where(pair > 0, pair / np.maximum(union, 1), 0.0)
    return pair, gt_area, pred_area, iou


def classify_errors(
    m: ImageMatch, gt: SegmentTable, pred: SegmentTable, area_limited: np.ndarray | None = None
) -> tuple[list, list]:
    """Error type of every GT segment and every prediction of one image (None: not an error, i.e.
    matched, crowd, or a prediction ignored on void/crowd). ``area_limited[g]``: GT stuff segment
    ``g`` was voided by the stuff area limit (see ``mark_stuff_dropped_by_area_limit``)."""
    n_g, n_p = len(gt.ids), len(pred.ids)
    pair, gt_area, pred_area, iou = _geometry(m, gt)
    same = gt.category_ids[:, None] == pred.category_ids[None, :]  # [n_g, n_p]
    # "covers": more than half of the GT segment lies in the prediction; "inside": more than half
    # of the prediction lies in the GT segment.
    covers = same & (pair > 0.5 * gt_area[:, None])
    inside = same & (pair > 0.5 * pred_area[None, :])
    merging = covers.sum(axis=0) >= 2  # per prediction: over two or more same-class GT segments
    splitting = inside.sum(axis=1) >= 2  # per GT: over several same-class predictions
    real_gt = ~gt.iscrowd
    limited = np.zeros(n_g, bool) if area_limited is None else np.asarray(area_limited, bool)

    gt_errors = []
    for g in range(n_g):
        if gt.iscrowd[g] or m.gt_match[g] >= 0:
            gt_errors.append(None)
        elif limited[g]:
            gt_errors.append("stuff_area_limit")
        elif n_p and (iou[g] * ~same[g] > 0.5).any():
            gt_errors.append("wrong_class")
        elif (covers[g] & merging).any():
            gt_errors.append("merge")
        elif splitting[g]:
            gt_errors.append("split")
        elif n_p and (iou[g] * same[g]).max() >= LOW_IOU:
            gt_errors.append("low_iou")
        else:
            gt_errors.append("missed")
    pred_errors = []
    for p in range(n_p):
        if m.pred_status[p] != "false_positive":
            pred_errors.append(None)
        elif n_g and (iou[:, p] * ~same[:, p] > 0.5).any():
            pred_errors.append("wrong_class")
        elif merging[p]:
            pred_errors.append("merge")
        elif (inside[:, p] & splitting).any():
            pred_errors.append("split")
        elif n_g and (iou[:, p] * (same[:, p] & real_gt)).max() >= LOW_IOU:
            pred_errors.append("low_iou")
        else:
            pred_errors.append("spurious")
    return gt_errors, pred_errors


class ErrorStat:
    """Per-class FN and FP counts by error type, summed over images (``categories`` as PQStat)."""

    def __init__(self, categories: list[dict]):
        self.categories = categories
        self.index = {int(c["id"]): i for i, c in enumerate(categories)}
        self.counts = np.zeros((len(categories), len(ERROR_TYPES)), np.int64)

    def add(self, gt: SegmentTable, pred: SegmentTable, gt_errors: list, pred_errors: list) -> None:
        for cats, errors in ((gt.category_ids, gt_errors), (pred.category_ids, pred_errors)):
            for cat, error in zip(cats.tolist(), errors):
                if error is not None:
                    self.counts[self.index[int(cat)], ERROR_TYPES.index(error)] += 1

    def breakdown(self, pq: dict) -> dict:
        """``pq``: a PQStat summary. Per class and for All / Things / Stuff: ``pq``, ``points``
        (PQ points lost per error type and ``matched_iou``; with ``pq`` they sum to 100),
        ``pq_if_fixed`` (PQ with the errors of one type removed from the counts, TIDE-style; for
        ``matched_iou``: every match at IoU 1, i.e. RQ) and ``counts``. Points are in 0..100."""
        per_class = {}
        for i, cat in enumerate(self.categories):
            row = pq["per_class"].get(int(cat["id"]), pq["per_class"].get(str(cat["id"])))
            if not row or not row["evaluated"]:
                continue
            tp, s = row["tp"], row["iou_sum"]
            d = tp + 0.5 * row["fp"] + 0.5 * row["fn"]
            counts = {t: int(self.counts[i, k]) for k, t in enumerate(ERROR_TYPES)}
            if sum(counts.values()) != row["fp"] + row["fn"]:
                raise ValueError(
                    f"class {cat['id']}: {sum(counts.values())} typed errors for "
                    f"FP + FN = {row['fp'] + row['fn']}"
                )
            points = {t: 100.0 * 0.5 * n / d for t, n in counts.items()}
            points[REMAINDER] = 100.0 * (tp - s) / d
            fixed = {
                t: 100.0 * s / (d - 0.5 * n) if d - 0.5 * n > 0 else 100.0
                for t, n in counts.items()
            }
            fixed[REMAINDER] = 100.0 * tp / d
            per_class[int(cat["id"])] = {
                "name": row["name"],
                "isthing": row["isthing"],
                "pq": 100.0 * s / d,
                "points": points,
                "pq_if_fixed": fixed,
                "counts": counts,
            }
        out = {"per_class": per_class}
        for group, isthing in (("All", None), ("Things", True), ("Stuff", False)):
            rows = [r for r in per_class.values() if isthing is None or r["isthing"] == isthing]
            if not rows:
                out[group] = None
                continue

            def mean(key, t, rows=rows):
                return sum(r[key][t] for r in rows) / len(rows)

            out[group] = {
                "pq": sum(r["pq"] for r in rows) / len(rows),
                "n": len(rows),
                "points": {t: mean("points", t) for t in (*ERROR_TYPES, REMAINDER)},
                "pq_if_fixed": {t: mean("pq_if_fixed", t) for t in (*ERROR_TYPES, REMAINDER)},
                "counts": {t: sum(r["counts"][t] for r in rows) for t in ERROR_TYPES},
            }
        return out
