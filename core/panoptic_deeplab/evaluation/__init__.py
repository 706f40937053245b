"""Evaluation: panoptic quality (panopticapi semantics), mIoU, instance AP, reports. No TensorFlow.

Public API:
    pq_from_files(gt_json, pred_json, gt_folder=None, pred_folder=None, workers=1, per_image=False)
    pq_from_label_maps(gt_maps, pred_maps, spec, per_image=False)
    mean_iou(gt_semantics, pred_semantics, num_classes, ignore_label=255), ConfusionMatrix
    coco_instance_ap(...), cityscapes_instance_ap(...)
"""
from .coco_io import pq_from_files, pq_from_label_maps, read_panoptic_png, write_panoptic_png
from .instance_ap import cityscapes_instance_ap, coco_instance_ap
from .panoptic_quality import PQStat, SegmentTable, match_image, segment_details
from .semantic import ConfusionMatrix, mean_iou

__all__ = ["pq_from_files", "pq_from_label_maps", "read_panoptic_png", "write_panoptic_png",
           "cityscapes_instance_ap", "coco_instance_ap", "PQStat", "SegmentTable", "match_image",
           "segment_details", "ConfusionMatrix", "mean_iou"]
