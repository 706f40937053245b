"""PQ / SQ / RQ / mIoU of the network being trained, on a validation split, predicted exactly as
``pdl evaluate`` predicts with that model (the Predictor's resize / pad / post-processing / undo
rules, :mod:`..inference`), so any image size works and the numbers match a later ``pdl evaluate``."""
from __future__ import annotations

from typing import Callable

import numpy as np


def make_periodic_evaluator(reader, split: str, config, spec, limit: int | None = None) -> Callable:
    """``evaluate(network, step) -> {pq, sq, rq, miou, pq_things, pq_stuff, images}`` on the first
    ``limit`` images of ``split`` (all when None)."""
    from ..bundle import Bundle
    from ..evaluation.coco_io import pq_from_label_maps
    from ..evaluation.semantic import mean_iou
    from ..inference import Predictor

    indices = range(len(reader))[: int(limit) if limit else None]
    predictors: dict[int, Predictor] = {}  # one per network: its traced graphs read the current weights

    def evaluate(network, step: int) -> dict:
        predictor = predictors.get(id(network))
        if predictor is None:
            predictor = predictors[id(network)] = Predictor(Bundle(None, config, spec, network))
        gt_maps, pred_maps, gt_sem, pred_sem = [], [], [], []
        for index in indices:
            prediction = predictor(reader.load_image(index), return_raw=False)
            gt = np.asarray(reader.load_panoptic(index))
            gt_maps.append(gt)
            pred_maps.append(prediction.panoptic)
            gt_sem.append(gt // spec.label_divisor)
            pred_sem.append(prediction.semantic)
        pq = pq_from_label_maps(gt_maps, pred_maps, spec)
        miou = mean_iou(gt_sem, pred_sem, spec.num_classes, spec.ignore_label)
        return {
            "pq": pq["All"]["pq"], "sq": pq["All"]["sq"], "rq": pq["All"]["rq"], "miou": miou["miou"],
            "pq_things": pq["Things"]["pq"], "pq_stuff": pq["Stuff"]["pq"], "images": len(gt_maps),
        }

    return evaluate
