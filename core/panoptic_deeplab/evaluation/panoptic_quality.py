"""Panoptic quality with panopticapi's exact semantics (docs/method.md §6), vectorised.

Per image: segment-id maps (0 = VOID) plus segment tables. GT areas come from the GT table (the
JSON ``area``), predicted areas from the pixels. A GT/pred pair of the same category, GT not crowd,
matches iff ``IoU > 0.5`` with ``union = pred + gt - inter - |pred ∩ GT VOID|``. Unmatched non-crowd
GT are FN; an unmatched prediction is a FP unless more than half of it lies on GT VOID plus the
(last listed) crowd segment of its own category. Counts are summed per class over the data set and
averaged over the classes with TP + FP + FN > 0.

No TensorFlow here: ``pdl pq`` imports this module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from ..datasets.png_ids import SegmentRuns

_LUT_SIZE = 1 << 24  # COCO-panoptic PNG ids are 24-bit RGB
_local = threading.local()  # one lookup table per thread
_NOT_LISTED = np.iinfo(np.int32).max


@dataclass(frozen=True)
class SegmentTable:
    """Segments of one image: ids (non-zero), category ids, crowd flags and (GT only) areas."""

    ids: np.ndarray
    category_ids: np.ndarray
    iscrowd: np.ndarray
    areas: np.ndarray | None = None  # GT: from the JSON; None for predictions (counted from pixels)

    @classmethod
    def from_segments_info(cls, segments_info: list[dict], with_area: bool) -> SegmentTable:
        n = len(segments_info)
        ids = np.fromiter((s["id"] for s in segments_info), np.int64, n)
        cats = np.fromiter((s["category_id"] for s in segments_info), np.int64, n)
        crowd = np.fromiter((s.get("iscrowd", 0) for s in segments_info), np.int64, n).astype(bool)
        areas = np.fromiter((s["area"] for s in segments_info), np.int64, n) if with_area else None
        return cls(ids, cats, crowd, areas)


# Odd 64-bit multipliers for Fibonacci hashing (the top bits of id * multiplier pick a slot).
_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)


def _hashed_index(flat: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """:func:`dense_index` through a small collision-free hash table of 0 and the listed ids:
    a few passes over ``flat``, no sort. None if no multiplier hashes the ids apart (or if ids
    repeat)."""
    keys = np.concatenate([[0], ids.astype(np.int64)])  # (bit for bit, as the values below)
    bits = max(8, (64 * len(keys) - 1).bit_length())  # >= 64 slots per key: collisions are rare
    shift = np.uint64(64 - bits)
    for multiplier in map(np.uint64, _MULTIPLIERS):
        slots = (keys.view(np.uint64) * multiplier) >> shift
        ordered = np.sort(slots)  # (np.unique would import numpy.ma: 20 ms of `pdl pq`)
        if (ordered[1:] != ordered[:-1]).all():
            break
    else:
        return None
    unknown = len(ids) + 1
    slot_key = np.zeros(1 << bits, np.int64)  # 0 hashes to slot 0: no other slot can match a 0
    slot_key[slots] = keys
    slot_index = np.full(1 << bits, unknown, np.int64)
    slot_index[slots] = np.arange(len(keys))
    values = flat.astype(np.int64, copy=False)
    at = (values.view(np.uint64) * multiplier) >> shift
    return np.where(slot_key[at] == values, slot_index[at], unknown)


def dense_index(id_map: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each pixel's id -> 1 + its position in ``ids``; id 0 -> 0; unlisted ids -> len(ids) + 1."""
    ids = np.asarray(ids)
    unknown = len(ids) + 1
    flat = id_map.reshape(-1)
    few = flat.size < _LUT_SIZE // 64  # e.g. run values: hashing beats filling a table
    if (
        few
        and len(ids) < 1024
        and np.issubdtype(flat.dtype, np.integer)
        and np.issubdtype(ids.dtype, np.integer)
    ):
        out = _hashed_index(flat, ids)
        if out is not None:
            return out.reshape(id_map.shape)
    small = (
        flat.dtype == np.uint32 and len(ids) and ids.max() < _LUT_SIZE
    )  # 24-bit PNG ids: no check needed
    if flat.size and (
        few
        or not small
        and (flat.min() < 0 or flat.max() >= _LUT_SIZE or (len(ids) and ids.max() >= _LUT_SIZE))
    ):
        order = np.argsort(ids)
        pos = np.clip(np.searchsorted(ids[order], flat), 0, max(len(ids) - 1, 0))
        found = ids[order][pos] == flat if len(ids) else np.zeros(flat.shape, bool)
        out = np.where(found, order[pos] + 1, unknown) if len(ids) else np.full(flat.shape, unknown)
        out[flat == 0] = 0
        return out.reshape(id_map.shape)
    # A reusable lookup table, "not listed" everywhere except the listed ids (set, gather, reset):
    # O(pixels), no sort, and only the listed entries are written per call.
    lut = getattr(_local, "lut", None)
    if lut is None:
        lut = _local.lut = np.full(_LUT_SIZE, _NOT_LISTED, np.int32)
    try:
        lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
        lut[0] = 0
        out = np.take(lut, flat)  # faster than lut[flat] for uint32 indices
    finally:
        lut[ids] = _NOT_LISTED
        lut[0] = _NOT_LISTED
    np.minimum(out, unknown, out=out)
    return out.reshape(id_map.shape)


@dataclass
class ImageMatch:
    """Result of one image: per-class counts (indexed like ``categories``) and the pairing."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    iou: np.ndarray
    gt_match: np.ndarray  # per GT segment: index of its matched prediction or -1
    pred_match: np.ndarray  # per prediction: index of its matched GT or -1
    match_iou: np.ndarray  # per GT segment: IoU with its match (0 if none)
    pred_status: np.ndarray  # per prediction: 'matched' | 'false_positive' | 'ignored'
    intersections: np.ndarray  # [n_gt + 2, n_pred + 1] pixel counts (row 0 GT void, last unknown)
    pred_areas: np.ndarray
    details: list = field(default_factory=list)


def _pred_index(values: np.ndarray, pred: SegmentTable) -> np.ndarray:
    """:func:`dense_index` of predicted ids; an id missing from ``segments_info`` is an error."""
    pi = dense_index(values, pred.ids)
    if pi.size and pi.max() > len(pred.ids):
        bad = np.unique(values.reshape(-1)[pi.reshape(-1) > len(pred.ids)])
        raise ValueError(
            f"segment ids {bad[:10].tolist()} "
            "are in the prediction PNG but not in its segments_info"
        )
    return pi


def _overlaps(gt_map, gt: SegmentTable, pred_map, pred: SegmentTable) -> np.ndarray:
    """Pixel counts ``[n_gt + 2, n_pred + 1]`` of each (GT segment, prediction) pair, from two id
    maps or two :class:`SegmentRuns`. With runs, only the run boundaries are visited: the union of
    both maps' boundaries cuts the image into pieces of one (GT, prediction) pair each."""
    n_g, n_p = len(gt.ids), len(pred.ids)
    if isinstance(gt_map, SegmentRuns) and isinstance(pred_map, SegmentRuns):
        if gt_map.shape != pred_map.shape:
            raise ValueError(f"GT shape {gt_map.shape} != prediction shape {pred_map.shape}")
        starts = np.concatenate([gt_map.starts, pred_map.starts])
        order = np.argsort(
            starts, kind="stable"
        )  # two sorted lists: a linear merge, GT first on ties
        from_gt = order < len(gt_map.starts)
        # The GT and the predicted run in force from each start on (a start both maps share makes a
        # piece of length 0; the first prediction run is taken as in force before it, also with
        # weight 0).
        gt_run = np.cumsum(from_gt) - 1
        pred_run = np.maximum(np.cumsum(~from_gt) - 1, 0)
        weights = np.diff(starts[order], append=gt_map.shape[0] * gt_map.shape[1])
        gi = dense_index(gt_map.values, gt.ids)[gt_run]
        pi = _pred_index(pred_map.values, pred)[pred_run]
    else:
        gt_map = gt_map.to_map() if isinstance(gt_map, SegmentRuns) else gt_map
        pred_map = pred_map.to_map() if isinstance(pred_map, SegmentRuns) else pred_map
        gi, pi, weights = (
            dense_index(gt_map, gt.ids).reshape(-1),
            _pred_index(pred_map, pred).reshape(-1),
            None,
        )
    counts = np.bincount(
        gi.astype(np.int64) * (n_p + 1) + pi, weights=weights, minlength=(n_g + 2) * (n_p + 1)
    )
    return counts.astype(np.int64).reshape(n_g + 2, n_p + 1)  # float weights are exact below 2**53


def match_image(
    gt_map, gt: SegmentTable, pred_map, pred: SegmentTable, category_index: dict[int, int]
) -> ImageMatch:
    """Match one image. ``category_index`` maps category id -> position in the per-class arrays.
    The maps are segment-id arrays or :class:`SegmentRuns` (both GT and prediction)."""
    n_g, n_p = len(gt.ids), len(pred.ids)
    inter = _overlaps(gt_map, gt, pred_map, pred)
    pred_area = inter.sum(axis=0)[1:]
    if n_p and (pred_area == 0).any():
        missing = pred.ids[pred_area == 0]
        raise ValueError(
            f"segment ids {missing[:10].tolist()} "
            "are in segments_info but not in the prediction PNG"
        )
    gt_area = gt.areas if gt.areas is not None else inter.sum(axis=1)[1 : n_g + 1]
    gc = np.array([category_index[c] for c in gt.category_ids.tolist()], np.int64)
    pc = np.array([category_index[c] for c in pred.category_ids.tolist()], np.int64)
    n_c = len(category_index)

    pair = inter[1 : n_g + 1, 1:]  # [n_g, n_p]
    void_p = inter[0, 1:]
    union = pred_area[None, :] + gt_area[:, None] - pair - void_p[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(pair > 0, pair / np.maximum(union, 1), 0.0)
    valid = (pair > 0) & (~gt.iscrowd[:, None]) & (gc[:, None] == pc[None, :])
    matched = valid & (iou > 0.5)  # > 0.5 makes the match unique per row and column
    gt_match = np.where(matched.any(axis=1), matched.argmax(axis=1), -1)
    pred_match = np.where(matched.any(axis=0), matched.argmax(axis=0), -1)
    match_iou = (
        np.where(gt_match >= 0, iou[np.arange(n_g), np.maximum(gt_match, 0)], 0.0)
        if n_g
        else np.zeros(0)
    )

    tp = np.bincount(gc[gt_match >= 0], minlength=n_c)
    iou_sum = np.bincount(gc[gt_match >= 0], weights=match_iou[gt_match >= 0], minlength=n_c)
    fn = np.bincount(gc[(gt_match < 0) & ~gt.iscrowd], minlength=n_c)

    # FP rule: void + the last crowd segment of the prediction's category.
    crowd_of_cat = np.full(n_c, -1)
    for g in np.flatnonzero(gt.iscrowd):
        crowd_of_cat[gc[g]] = g
    crowd_row = crowd_of_cat[pc] if n_p else np.zeros(0, np.int64)
    crowd_overlap = (
        np.where(crowd_row >= 0, inter[crowd_row + 1, np.arange(1, n_p + 1)], 0)
        if n_p
        else np.zeros(0)
    )
    ignored = (void_p + crowd_overlap) / np.maximum(pred_area, 1) > 0.5
    unmatched = pred_match < 0
    fp = np.bincount(pc[unmatched & ~ignored], minlength=n_c)
    status = np.where(~unmatched, "matched", np.where(ignored, "ignored", "false_positive"))
    return ImageMatch(
        tp, fp, fn, iou_sum, gt_match, pred_match, match_iou, status, inter, pred_area
    )


def segment_details(m: ImageMatch, gt: SegmentTable, pred: SegmentTable) -> dict:
    """Per-segment error analysis of one matched image (for the app).

    GT status: matched | missed | crowd; a missed GT gets a reason: ``wrong_class`` (a prediction
    of another class covers it with IoU > 0.5), ``merged`` (its best prediction matched another GT
    or covers more than one GT), ``not_predicted`` (mostly under predicted void), ``low_iou``.
    Prediction status: matched | false_positive | ignored (on void/crowd); a FP gets a reason:
    ``wrong_class``, ``split`` (its best GT is matched by another prediction), ``background``
    (mostly on GT of other segments / unlisted ids with no same-class overlap) or ``low_iou``.
    """
    n_g, n_p = len(gt.ids), len(pred.ids)
    inter = m.intersections
    pair = inter[1 : n_g + 1, 1:]
    gt_area = gt.areas if gt.areas is not None else inter.sum(axis=1)[1 : n_g + 1]
    void_p = inter[0, 1:]
    union = m.pred_areas[None, :] + gt_area[:, None] - pair - void_p[None, :]
    iou_any = np.where(pair > 0, pair / np.maximum(union, 1), 0.0)
    gts = []
    for g in range(n_g):
        best = int(iou_any[g].argmax()) if n_p and pair[g].max() > 0 else -1  # highest IoU
        rec = {
            "id": int(gt.ids[g]),
            "category_id": int(gt.category_ids[g]),
            "iscrowd": bool(gt.iscrowd[g]),
            "area": int(gt_area[g]),
            "matched_pred": int(pred.ids[m.gt_match[g]]) if m.gt_match[g] >= 0 else None,
            "iou": float(m.match_iou[g]),
            "best_pred": int(pred.ids[best]) if best >= 0 else None,
            "best_pred_category": int(pred.category_ids[best]) if best >= 0 else None,
            "best_pred_iou": float(iou_any[g, best]) if best >= 0 else 0.0,
        }
        if gt.iscrowd[g]:
            rec["status"], rec["reason"] = "crowd", None
        elif m.gt_match[g] >= 0:
            rec["status"], rec["reason"] = "matched", None
        else:
            rec["status"] = "missed"
            covered_by_pred = pair[g].sum()
            if (
                best >= 0
                and pred.category_ids[best] != gt.category_ids[g]
                and iou_any[g, best] > 0.5
            ):
                rec["reason"] = "wrong_class"
            elif best >= 0 and (
                m.pred_match[best] >= 0 or (pair[:, best] >= 0.25 * gt_area.clip(1)).sum() > 1
            ):
                rec["reason"] = "merged"
            elif covered_by_pred < 0.5 * gt_area[g]:
                rec["reason"] = "not_predicted"
            else:
                rec["reason"] = "low_iou"
        gts.append(rec)
    preds = []
    for p in range(n_p):
        best = int(iou_any[:, p].argmax()) if n_g and pair[:, p].max() > 0 else -1
        rec = {
            "id": int(pred.ids[p]),
            "category_id": int(pred.category_ids[p]),
            "area": int(m.pred_areas[p]),
            "status": str(m.pred_status[p]),
            "matched_gt": int(gt.ids[m.pred_match[p]]) if m.pred_match[p] >= 0 else None,
            "iou": float(iou_any[m.pred_match[p], p]) if m.pred_match[p] >= 0 else 0.0,
            "best_gt": int(gt.ids[best]) if best >= 0 else None,
            "reason": None,
        }
        if rec["status"] == "false_positive":
            if (
                best >= 0
                and gt.category_ids[best] != pred.category_ids[p]
                and iou_any[best, p] > 0.5
            ):
                rec["reason"] = "wrong_class"
            elif (
                best >= 0
                and gt.category_ids[best] == pred.category_ids[p]
                and m.gt_match[best] >= 0
            ):
                rec["reason"] = "split"
            elif best < 0 or gt.category_ids[best] != pred.category_ids[p]:
                rec["reason"] = "background"
            else:
                rec["reason"] = "low_iou"
        preds.append(rec)
    return {"gt_segments": gts, "pred_segments": preds}


@dataclass
class PQStat:
    """Per-class sums over a data set; ``categories`` is the GT JSON's list (id, isthing, name)."""

    categories: list[dict]
    tp: np.ndarray = None
    fp: np.ndarray = None
    fn: np.ndarray = None
    iou: np.ndarray = None

    def __post_init__(self):
        n = len(self.categories)
        self.index = {int(c["id"]): i for i, c in enumerate(self.categories)}
        for name in ("tp", "fp", "fn"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(n, np.int64))
        if self.iou is None:
            self.iou = np.zeros(n, np.float64)

    def add(self, m: ImageMatch) -> None:
        self.tp += m.tp
        self.fp += m.fp
        self.fn += m.fn
        self.iou += m.iou

    def per_class(self) -> dict[int, dict]:
        out = {}
        for i, cat in enumerate(self.categories):
            tp, fp, fn, iou = int(self.tp[i]), int(self.fp[i]), int(self.fn[i]), float(self.iou[i])
            evaluated = tp + fp + fn > 0
            denom = tp + 0.5 * fp + 0.5 * fn
            out[int(cat["id"])] = {
                "pq": iou / denom if evaluated else None,
                "sq": iou / tp if tp else (0.0 if evaluated else None),
                "rq": tp / denom if evaluated else None,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "iou_sum": iou,
                "evaluated": evaluated,
                "isthing": bool(cat.get("isthing", 0)),
                "name": cat.get("name", str(cat["id"])),
            }
        return out

    def average(self, isthing: bool | None = None) -> dict:
        """Unweighted mean over evaluated classes; ``n`` = how many. Empty: values None (panopticapi
        raises ZeroDivisionError, hotcoco returns -1)."""
        rows = [
            r
            for r in self.per_class().values()
            if r["evaluated"] and (isthing is None or r["isthing"] == isthing)
        ]
        n = len(rows)
        if n == 0:
            return {"pq": None, "sq": None, "rq": None, "n": 0}
        return {k: sum(r[k] for r in rows) / n for k in ("pq", "sq", "rq")} | {"n": n}

    def summary(self) -> dict:
        per_class = self.per_class()
        return {
            "All": self.average(None),
            "Things": self.average(True),
            "Stuff": self.average(False),
            "per_class": per_class,
        }


def image_pq(m: ImageMatch, categories: list[dict]) -> dict:
    """PQ of one image alone (the app's per-image table)."""
    stat = PQStat(categories)
    stat.add(m)
    return stat.average(None) | {
        "tp": int(m.tp.sum()),
        "fp": int(m.fp.sum()),
        "fn": int(m.fn.sum()),
    }
