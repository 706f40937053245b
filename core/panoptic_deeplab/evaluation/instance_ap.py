"""Instance AP of thing segments, COCO style (pycocotools ``COCOeval`` segm) and Cityscapes style.

Inputs per image: the GT label map (``class * divisor + instance``; thing instance 0 = crowd/group,
``ignore_label`` = void), the predicted panoptic map and ``{panoptic id: score}`` for its thing
segments (``post_process`` gives ``instance_ids`` / ``instance_scores``). No TensorFlow.

As in deeplab2 (``PanopticInstanceAveragePrecision``), predicted segments of ``ignore_label`` are
dropped even when that label is among the thing classes (they need no score), and so are GT ones.
Segments are listed in raster order of their first pixel (deeplab2's ``tf.unique`` order), not by
id: COCOeval sorts detections by score with a stable sort, so equal scores are ranked in that
order, and that changes AP.

Cityscapes style follows ``cityscapesscripts`` ``evaluateMatches`` (no distance thresholds):
IoU thresholds 0.5:0.05:0.95 with IoU ``>`` t; GT instances smaller than ``min_region_size`` (100)
and groups are not targets; a GT matched by several predictions keeps the best score, the others
are FPs; an unmatched prediction is a FP unless its share of void + group + small-GT pixels (of its
class) is ``> t``; step-wise PR integration; a class with GT but no prediction scores 0, a class
without GT is skipped (NaN). Labels are whatever the maps use (the official script uses label ids).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

CITYSCAPES_OVERLAPS = np.arange(0.5, 1.0, 0.05)


def _segments(label_map: np.ndarray):
    """``(ids, inverse, areas)`` of a label map, ids in raster order of their first pixel."""
    ids, first, inverse, areas = np.unique(
        label_map.reshape(-1), return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return ids[order], rank[inverse.reshape(-1)], areas[order]


def _pairs(gt_map, pred_map, label_divisor, ignore_label, thing_class_ids, scores):
    """Thing segments of both maps and their pixel intersections (plus pred ∩ GT void)."""
    gt_map = np.asarray(gt_map, np.int64)
    pred_map = np.asarray(pred_map, np.int64)
    if gt_map.shape != pred_map.shape:
        raise ValueError(f"GT shape {gt_map.shape} != prediction shape {pred_map.shape}")
    things = np.asarray(sorted(thing_class_ids))
    g_ids, g_inv, g_area = _segments(gt_map)
    p_ids, p_inv, p_area = _segments(pred_map)
    inter = np.zeros((len(g_ids), len(p_ids)), np.int64)
    np.add.at(inter, (g_inv, p_inv), 1)
    g_cls, p_cls = g_ids // label_divisor, p_ids // label_divisor
    g_void = (g_ids < 0) | (g_cls == ignore_label)
    g_thing = np.isin(g_cls, things) & ~g_void
    p_thing = np.isin(p_cls, things) & (p_ids >= 0) & (p_cls != ignore_label)
    missing = [int(i) for i in p_ids[p_thing] if int(i) not in scores]
    if missing:
        raise ValueError(f"no score for predicted thing segments {missing[:10]}")
    return {
        "gt_ids": g_ids[g_thing],
        "gt_cls": g_cls[g_thing],
        "gt_area": g_area[g_thing],
        "gt_group": (g_ids[g_thing] % label_divisor) == 0,
        "pred_ids": p_ids[p_thing],
        "pred_cls": p_cls[p_thing],
        "pred_area": p_area[p_thing],
        "pred_score": np.array([float(scores[int(i)]) for i in p_ids[p_thing]]),
        "pred_void": inter[g_void][:, p_thing].sum(axis=0),
        "inter": inter[g_thing][:, p_thing],
    }


def _step_ap(y_true: np.ndarray, y_score: np.ndarray, hard_fns: int) -> float:
    """cityscapesscripts' PR curve with an artificial (r=0, p=1) point and step-wise integration."""
    if len(y_score) == 0:
        return 0.0
    order = np.argsort(y_score)
    scores, truth = y_score[order], y_true[order]
    cum = np.append(np.cumsum(truth), 0)
    _, first = np.unique(scores, return_index=True)
    n, n_true = len(scores), cum[-2]
    tp = n_true - cum[first - 1]
    fp = n - first - tp
    fn = cum[first - 1] + hard_fns
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    padded = np.concatenate([[recall[0]], recall, [0.0]])
    widths = np.convolve(padded, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


def cityscapes_instance_ap(
    gt_maps,
    pred_maps,
    pred_scores,
    *,
    thing_class_ids,
    label_divisor: int,
    ignore_label: int,
    min_region_size: int = 100,
) -> dict:
    """Cityscapes-style AP and AP50 (see module docstring); per class too (NaN = no GT)."""
    images = [
        _pairs(g, p, label_divisor, ignore_label, thing_class_ids, s)
        for g, p, s in zip(gt_maps, pred_maps, pred_scores, strict=True)
    ]
    classes = sorted(thing_class_ids)
    ap = np.zeros((len(classes), len(CITYSCAPES_OVERLAPS)))
    for ci, c in enumerate(classes):
        for oi, t in enumerate(CITYSCAPES_OVERLAPS):
            y_true, y_score, hard_fns, have_gt, have_pred = [], [], 0, False, False
            for im in images:
                gsel = im["gt_cls"] == c
                psel = im["pred_cls"] == c
                inter = im["inter"][gsel][:, psel]
                g_area, g_group = im["gt_area"][gsel], im["gt_group"][gsel]
                p_area, p_score, p_void = (
                    im["pred_area"][psel],
                    im["pred_score"][psel],
                    im["pred_void"][psel],
                )
                target = ~g_group & (g_area >= min_region_size)
                have_gt |= bool(target.any())
                have_pred |= bool(psel.any())
                iou = inter / np.maximum(g_area[:, None] + p_area[None, :] - inter, 1)
                above = (iou > t) & (inter > 0)
                for g in np.flatnonzero(target):
                    hits = p_score[above[g]]
                    if len(hits) == 0:
                        hard_fns += 1
                        continue
                    y_true.append(1.0)
                    y_score.append(hits.max())
                    rest = np.sort(hits)[:-1]  # duplicates: every score but the best is a FP
                    y_true.extend([0.0] * len(rest))
                    y_score.extend(rest.tolist())
                unmatched = ~above.any(axis=0)
                # Ignore share: void + groups of this class + small GT of this class (a small group
                # counts twice, as in the official script).
                ignore = p_void + (
                    inter * (g_group[:, None].astype(int) + (g_area < min_region_size)[:, None])
                ).sum(0)
                is_fp = unmatched & (ignore / np.maximum(p_area, 1) <= t)
                y_true.extend([0.0] * int(is_fp.sum()))
                y_score.extend(p_score[is_fp].tolist())
            if have_gt and have_pred:
                ap[ci, oi] = _step_ap(np.array(y_true), np.array(y_score, np.float64), hard_fns)
            elif have_gt:
                ap[ci, oi] = 0.0
            else:
                ap[ci, oi] = np.nan
    o50 = np.isclose(CITYSCAPES_OVERLAPS, 0.5)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        return {
            "ap": float(np.nanmean(ap)) if np.isfinite(ap).any() else None,
            "ap50": float(np.nanmean(ap[:, o50])) if np.isfinite(ap[:, o50]).any() else None,
            "per_class": {
                c: {"ap": float(np.mean(ap[i])), "ap50": float(ap[i, o50][0])}
                for i, c in enumerate(classes)
            },
            "ap_table": ap,
        }


@contextlib.contextmanager
def _quiet_nan_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def coco_instance_ap(
    gt_maps, pred_maps, pred_scores, *, thing_class_ids, label_divisor: int, ignore_label: int
) -> dict:
    """COCO segm AP with pycocotools: GT thing instances (instance 0 = crowd, ``iscrowd=1``), one
    detection per predicted thing segment with its score. Returns the 12 COCO stats, AP, AP50 and
    per-class AP (area all, 100 detections; None for classes without GT)."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    things = sorted(thing_class_ids)
    gt_anns, dets, images = [], [], []
    for k, (g, p, s) in enumerate(zip(gt_maps, pred_maps, pred_scores, strict=True)):
        g, p = np.asarray(g, np.int64), np.asarray(p, np.int64)
        images.append({"id": k + 1, "height": int(g.shape[0]), "width": int(g.shape[1])})
        for seg_id in _segments(g)[0]:
            cls = seg_id // label_divisor
            if seg_id < 0 or cls == ignore_label or cls not in things:
                continue
            rle = mask_utils.encode(np.asfortranarray(g == seg_id, dtype=np.uint8))
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": k + 1,
                    "category_id": int(cls),
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": mask_utils.toBbox(rle).tolist(),
                    "iscrowd": int(seg_id % label_divisor == 0),
                }
            )
        for seg_id in _segments(p)[0]:  # raster order: the rank of equal scores
            cls = seg_id // label_divisor
            if seg_id < 0 or cls == ignore_label or cls not in things:
                continue
            if int(seg_id) not in s:
                raise ValueError(f"image {k}: no score for predicted thing segment {int(seg_id)}")
            rle = mask_utils.encode(np.asfortranarray(p == seg_id, dtype=np.uint8))
            dets.append(
                {
                    "image_id": k + 1,
                    "category_id": int(cls),
                    "segmentation": rle,
                    "score": float(s[int(seg_id)]),
                    "area": float(mask_utils.area(rle)),
                    "bbox": mask_utils.toBbox(rle).tolist(),
                    "id": len(dets) + 1,
                    "iscrowd": 0,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": images,
            "annotations": gt_anns,
            "categories": [{"id": int(c), "name": str(c)} for c in things],
        }
        coco_gt.createIndex()
        if not dets:
            return {
                "stats": [0.0] * 12,
                "ap": 0.0,
                "ap50": 0.0,
                "per_class": {c: None for c in things},
            }
        coco_dt = COCO()
        coco_dt.dataset = {
            "images": images,
            "annotations": dets,
            "categories": coco_gt.dataset["categories"],
        }
        coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # [T, R, K], area all, maxDets 100
    per_class = {}
    for ki, c in enumerate(ev.params.catIds):
        vals = precision[:, :, ki]
        per_class[int(c)] = float(vals[vals > -1].mean()) if (vals > -1).any() else None
    return {
        "stats": [float(x) for x in ev.stats],
        "ap": float(ev.stats[0]),
        "ap50": float(ev.stats[1]),
        "per_class": per_class,
    }
