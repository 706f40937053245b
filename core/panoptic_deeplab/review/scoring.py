"""Annotation review, scoring: rank ground-truth segments the model confidently disagrees with.

Ranking. For a GT segment S of category c, with the model's per-pixel class k(p) and its probability
q(p) (1 when no probabilities are given):

    disagreement(S) = sum over p in S with k(p) != c of q(p), divided by |S|

i.e. the share of the segment the model labels as another class, weighted by how sure it is. It is 0
when the model agrees everywhere and approaches 1 when it confidently says "this is something else"
(the typical wrong-class label). The suggested class is the confidence-weighted majority among the
disagreeing pixels. ``best_iou`` is the best IoU of S with a predicted segment of the same category
(low for merged or split instances and sloppy outlines); it breaks ties. Segments are shown highest
disagreement first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ReviewError


@dataclass
class Prediction:
    """A model's output for one image, in the data set's category ids.

    ``semantic``: HxW category id per pixel (-1 where the model gives none).
    ``confidence``: HxW probability of that class, or None (counted as 1).
    ``panoptic``: HxW predicted segment id (0 = void), with ``segments`` {segment id: category id};
    both optional (without them ``best_iou`` is not computed).
    """

    semantic: np.ndarray
    confidence: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    segments: dict[int, int] | None = None


@dataclass
class SegmentScore:
    image_id: str
    segment_id: int
    category_id: int
    iscrowd: int
    area: int
    disagreement: float
    suggested_category_id: int | None
    best_iou: float | None


def score_segments(
    image_id, gt_ids: np.ndarray, segments_info: list[dict], pred: Prediction
) -> list[SegmentScore]:
    """Score every GT segment of one image (see the module docstring)."""
    gt_ids = np.asarray(gt_ids, dtype=np.int64)
    semantic = np.asarray(pred.semantic, dtype=np.int64)
    if semantic.shape != gt_ids.shape:
        raise ReviewError(
            f"image {image_id}: prediction is {semantic.shape[1]}x{semantic.shape[0]} but the annotation is "
            f"{gt_ids.shape[1]}x{gt_ids.shape[0]}; predict at the annotation's size"
        )
    conf = (
        np.ones(gt_ids.shape, np.float64)
        if pred.confidence is None
        else np.asarray(pred.confidence, np.float64)
    )
    ious = _best_ious(gt_ids, segments_info, pred) if pred.panoptic is not None else {}
    out = []
    for seg in segments_info:
        mask = gt_ids == seg["id"]
        area = int(mask.sum())
        cat = int(seg["category_id"])
        classes, weights = semantic[mask], conf[mask]
        other = (classes != cat) & (classes >= 0)
        disagreement = float(weights[other].sum() / area) if area else 0.0
        suggested = None
        if other.any():
            values, inverse = np.unique(classes[other], return_inverse=True)
            suggested = int(values[np.argmax(np.bincount(inverse, weights=weights[other]))])
        out.append(
            SegmentScore(
                image_id=str(image_id),
                segment_id=int(seg["id"]),
                category_id=cat,
                iscrowd=int(seg.get("iscrowd", 0)),
                area=area,
                disagreement=disagreement,
                suggested_category_id=suggested,
                best_iou=ious.get(int(seg["id"])) if ious else None,
            )
        )
    return out


def _best_ious(gt_ids: np.ndarray, segments_info: list[dict], pred: Prediction) -> dict[int, float]:
    pan = np.asarray(pred.panoptic, dtype=np.int64)
    pred_cat = pred.segments or {}
    pairs, inter = np.unique(gt_ids * (int(pan.max()) + 1) + pan, return_counts=True)
    gt_of, pred_of = pairs // (int(pan.max()) + 1), pairs % (int(pan.max()) + 1)
    gt_area = dict(zip(*np.unique(gt_ids, return_counts=True)))
    pred_area = dict(zip(*np.unique(pan, return_counts=True)))
    cat_of = {int(s["id"]): int(s["category_id"]) for s in segments_info}
    best: dict[int, float] = {int(s["id"]): 0.0 for s in segments_info}
    for g, p, n in zip(gt_of.tolist(), pred_of.tolist(), inter.tolist()):
        if g in best and p != 0 and pred_cat.get(p) == cat_of[g]:
            iou = n / (gt_area[g] + pred_area[p] - n)
            best[g] = max(best[g], iou)
    return best


def category_mapping(spec, categories: list[dict]) -> np.ndarray:
    """Model train id -> this data set's category id (-1 where the data set has no such class).

    Matched by class name (case-insensitive), so a model trained on one export reviews another with
    the same classes. Only when no name matches at all (e.g. unnamed categories) are the spec's
    category ids used as they are; mixing the two could map a class onto another one's id."""
    by_name = {str(c["name"]).lower(): int(c["id"]) for c in categories}
    out = np.array([by_name.get(name.lower(), -1) for name in spec.class_names], np.int64)
    if (out < 0).all():
        ids = {int(c["id"]) for c in categories}
        out = np.array(
            [
                spec.category_id(t) if spec.category_id(t) in ids else -1
                for t in range(spec.num_classes)
            ],
            np.int64,
        )
    return out


def category_mapping_inverse(spec) -> dict[int, int]:
    """Category id -> train id of a spec."""
    return {spec.category_id(t): t for t in range(spec.num_classes)}


def prediction_from_model(pred, spec, mapping: np.ndarray) -> Prediction:
    """Turn an ``inference.Prediction`` (train ids, panoptic values) into a review :class:`Prediction`
    in data set category ids. Uses its semantic probabilities for the confidence when present."""
    semantic = np.asarray(pred.semantic, np.int64)
    valid = (semantic >= 0) & (semantic < len(mapping))
    categories = np.where(valid, mapping[np.clip(semantic, 0, len(mapping) - 1)], -1)
    confidence = None
    if getattr(pred, "semantic_probs", None) is not None:
        confidence = np.asarray(pred.semantic_probs, np.float64).max(axis=-1)
    panoptic = np.asarray(pred.panoptic, np.int64)
    void = panoptic // spec.label_divisor == spec.ignore_label
    # Panoptic value 0 is a real segment (class 0, instance 0), so shift by one to free 0 for void.
    seg_ids = np.where(void, 0, panoptic + 1)
    segments = {}
    for value in np.unique(panoptic[~void]).tolist():
        t = value // spec.label_divisor
        segments[value + 1] = int(mapping[t]) if 0 <= t < len(mapping) else -1
    return Prediction(categories, confidence, seg_ids, segments)
