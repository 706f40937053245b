"""Semantic mIoU from a confusion matrix (Cityscapes / mmseg / Keras MeanIoU semantics).

Pixels whose GT is the ignore label are skipped. A predicted label outside ``[0, C)`` (e.g. void)
counts as a miss of the GT class (FN) and as no class's FP. ``IoU_c = TP / (TP + FP + FN)``; classes
with ``TP + FP + FN = 0`` are left out of the mean. Crowd pixels count as their class. No TF.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ConfusionMatrix:
    """Accumulates ``matrix[gt, pred]`` pixel counts; column ``C`` counts out-of-range classes."""

    num_classes: int
    ignore_label: int = 255
    matrix: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.matrix is None:
            self.matrix = np.zeros((self.num_classes, self.num_classes + 1), np.int64)

    def update(self, gt_semantic, pred_semantic) -> None:
        gt = np.asarray(gt_semantic).reshape(-1).astype(np.int64)
        pred = np.asarray(pred_semantic).reshape(-1).astype(np.int64)
        if gt.shape != pred.shape:
            raise ValueError(
                f"GT and prediction sizes differ: {np.shape(gt_semantic)} vs "
                f"{np.shape(pred_semantic)}"
            )
        keep = gt != self.ignore_label
        gt, pred = gt[keep], pred[keep]
        if gt.size and (gt.min() < 0 or gt.max() >= self.num_classes):
            raise ValueError(
                f"GT labels must be in [0, {self.num_classes}) or the ignore label "
                f"{self.ignore_label}; found "
                f"{sorted(set(np.unique(gt).tolist()) - set(range(self.num_classes)))[:10]}"
            )
        pred = np.where((pred < 0) | (pred >= self.num_classes), self.num_classes, pred)
        c1 = self.num_classes + 1
        self.matrix += np.bincount(gt * c1 + pred, minlength=self.num_classes * c1).reshape(
            self.num_classes, c1
        )

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def result(self) -> dict:
        tp = np.diag(self.matrix[:, : self.num_classes]).astype(np.float64)
        fn = self.matrix.sum(axis=1) - tp
        fp = self.matrix[:, : self.num_classes].sum(axis=0) - tp
        denom = tp + fp + fn
        present = denom > 0
        iou = np.where(present, tp / np.maximum(denom, 1), np.nan)
        total = self.matrix.sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else None,
            "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
            "pixel_accuracy": float(tp.sum() / total) if total else None,
            "n": int(present.sum()),
            "confusion": self.matrix[:, : self.num_classes].tolist(),
            "pred_void": self.matrix[:, self.num_classes].tolist(),
        }


def mean_iou(gt_semantics, pred_semantics, num_classes: int, ignore_label: int = 255) -> dict:
    """mIoU over pairs of semantic maps (see module docstring)."""
    cm = ConfusionMatrix(num_classes, ignore_label)
    for g, p in zip(gt_semantics, pred_semantics, strict=True):
        cm.update(g, p)
    return cm.result()
