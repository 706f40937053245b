"""Evaluation: panoptic quality (panopticapi semantics), mIoU, instance AP, reports. No TensorFlow.

Public API:
    pq_from_files(gt_json, pred_json, gt_folder=None, pred_folder=None, workers=1, per_image=False)
    pq_from_label_maps(gt_maps, pred_maps, spec, per_image=False)
    mean_iou(gt_semantics, pred_semantics, num_classes, ignore_label=255), ConfusionMatrix
    coco_instance_ap(...), cityscapes_instance_ap(...)
    evaluate(model or prediction set, dataset, split) -> EvaluationResult (results.py)

Names are imported on first use (``pdl pq`` loads only what it needs).
"""

from importlib import import_module

_WHERE = {
    "evaluate": "evaluate_split",
    "evaluate_predictions": "evaluate_split",
    "evaluate_split": "evaluate_split",
    "EvaluationResult": "results",
    "pq_from_files": "coco_io",
    "pq_from_label_maps": "coco_io",
    "read_panoptic_png": "coco_io",
    "write_panoptic_png": "coco_io",
    "cityscapes_instance_ap": "instance_ap",
    "coco_instance_ap": "instance_ap",
    "PQStat": "panoptic_quality",
    "SegmentTable": "panoptic_quality",
    "match_image": "panoptic_quality",
    "segment_details": "panoptic_quality",
    "ConfusionMatrix": "semantic",
    "mean_iou": "semantic",
}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
