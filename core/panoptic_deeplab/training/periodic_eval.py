"""PQ / SQ / RQ / mIoU of the network being trained, on a validation split, with the library's one
post-processing (``postprocess.post_process``) and metrics (``evaluation``)."""
from __future__ import annotations

from typing import Callable

import numpy as np


def make_periodic_evaluator(reader, split: str, config, spec, limit: int | None = None) -> Callable:
    """``evaluate(network, step) -> {pq, sq, rq, miou, pq_things, pq_stuff}`` on the first ``limit``
    images of ``split`` (eval-mode pipeline: no augmentation, padded to ``dataset.crop_size``)."""
    from ..data.pipeline import make_dataset
    from ..evaluation.coco_io import pq_from_label_maps
    from ..evaluation.semantic import mean_iou
    from ..postprocess import PostProcessOptions, post_process

    options = PostProcessOptions.from_config(config, spec)

    def evaluate(network, step: int) -> dict:
        ds = make_dataset(reader, split, config, training=False, batch_size=1, spec=spec, shuffle=False)
        if limit:
            ds = ds.take(int(limit))
        gt_maps, pred_maps, gt_sem, pred_sem = [], [], [], []
        for features, targets in ds:
            out = network(features["image"], training=False)
            fused = post_process(out["semantic_logits"][0], out["center_heatmap"][0], out["offsets"][0], options)
            gt_maps.append(np.asarray(targets["panoptic"][0]))
            pred_maps.append(np.asarray(fused["panoptic"]))
            gt_sem.append(np.asarray(targets["semantic"][0]))
            pred_sem.append(np.asarray(fused["semantic"]))
        pq = pq_from_label_maps(gt_maps, pred_maps, spec)
        miou = mean_iou(gt_sem, pred_sem, spec.num_classes, spec.ignore_label)
        return {
            "pq": pq["All"]["pq"], "sq": pq["All"]["sq"], "rq": pq["All"]["rq"], "miou": miou["miou"],
            "pq_things": pq["Things"]["pq"], "pq_stuff": pq["Stuff"]["pq"], "images": len(gt_maps),
        }

    return evaluate
