"""Annotation review, scoring: which ground-truth segments and which unlabelled objects a reviewer
should look at first, from one image's prediction (a model's output or a prediction file's).

For a GT segment S of category c, with the model's per-pixel class k(p) and its confidence q(p)
(1 where none is given):

    disagreement(S) = sum over p in S with k(p) != c of q(p), divided by |S|

the share of the segment the model labels as another class, weighted by how sure it is (a wrong
class). ``best_iou`` is S's best IoU with a predicted segment of its class; a low one with a
confident model means a wrong outline (a shifted mask, or two objects drawn as one). The score is

    score(S) = max(disagreement(S), (1 - best_iou(S)) * q_own(S), merge(S), shift(S))

(crowd regions and predictions without segments: the disagreement alone). Two outline errors get
their own evidence, for a thing segment S (when the categories are given) whose best same-class
match is the predicted segment P1:

- ``merge(S)``: two objects drawn as one. Another predicted segment P2 of S's class lies mostly
  (>= 50 %) inside S and fills the part of S that P1 leaves out:

      merge(S) = max over P2 of confidence(P2) * share of P2 inside S * min(1, |P2 & S| / |S - P1|)

  (a model fragment is small next to S - P1; a second whole object fills it).
- ``shift(S)``: a displaced mask. P1 translated to match S best (from the offset between the
  centroids, a climb to the best nearby offset) has IoU ``aligned`` with S; the share of the
  outline error a translation explains, counted in full once that error alone would unmatch S in
  PQ (best_iou <= 0.5):

      shift(S) = q_own(S) * (aligned - best_iou) / (1 - best_iou)
                 * min(1, (1 - best_iou) / (1 - MATCH_IOU))

The outline terms take the model's confidence only where its panoptic segment has the model's own
per-pixel class: ``q_own(S)`` = sum over p in S of q(p) * [class of p's predicted segment == k(p)],
divided by |S|, also in ``(1 - best_iou) * q_own(S)`` above (Panoptic-DeepLab's majority vote can
put a small thing into a neighbour's instance; that is no evidence of a wrong annotation).

A predicted segment P that matches no GT segment (IoU < 0.5 with every one, as in PQ) and lies
mostly (>= 50 %) outside the GT segments of its class (for a thing: outside every GT thing segment,
as a thing predicted inside an annotated thing of another class is that segment's wrong class,
ranked as that segment) is a possible missing annotation ("missing"), scored

    score(P) = confidence(P) * (share of P outside those GT segments)

where confidence(P) is the segment's score when the prediction gives one, else its mean q.
Both kinds share one ranking, highest score first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ReviewError

GT_SEGMENT, MISSING = "gt_segment", "missing"
MATCH_IOU = 0.5  # PQ's matching threshold: a predicted segment above it matches a GT segment
MIN_MISSING_PIXELS = 16  # smaller unmatched predictions are noise, not missing objects
SHIFT_STEPS = (8, 4, 2, 1)  # pixels: the shift test's search for the best alignment


@dataclass
class Prediction:
    """One image's prediction, in the data set's category ids.

    ``semantic``: HxW category id per pixel (-1 where none); None: from ``panoptic``.
    ``confidence``: HxW probability of that class, or None (from ``scores`` where given, else 1).
    ``panoptic``: HxW predicted segment id (0 = void), with ``segments`` {segment id: category id}
    and optionally ``scores`` {segment id: confidence}; without them only the disagreement is
    computed (no ``best_iou``, no missing objects).
    """

    semantic: np.ndarray | None
    confidence: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    segments: dict[int, int] | None = None
    scores: dict[int, float] | None = None

    def __post_init__(self):
        if self.semantic is None and self.panoptic is None:
            raise ReviewError("a prediction needs a semantic map, a panoptic map or both")
        if self.panoptic is not None and self.segments is None:
            raise ReviewError("a panoptic prediction needs its segments {id: category id}")

    @property
    def shape(self) -> tuple[int, int]:
        ref = self.panoptic if self.panoptic is not None else self.semantic
        return tuple(np.asarray(ref).shape[:2])

    def semantic_map(self) -> np.ndarray:
        """HxW category ids (-1 none), from the panoptic map when no semantic map is given."""
        if self.semantic is not None:
            return np.asarray(self.semantic, np.int64)
        return _lookup(np.asarray(self.panoptic, np.int64), self.segments or {}, -1)

    def confidence_map(self) -> np.ndarray | None:
        """HxW confidence, or None when the prediction gives none (counted as 1)."""
        if self.confidence is not None:
            return np.asarray(self.confidence, np.float64)
        if self.scores and self.panoptic is not None:
            return _lookup(np.asarray(self.panoptic, np.int64), self.scores, 1.0, np.float64)
        return None


@dataclass
class ReviewItem:
    """One line of the ranking: a GT segment to check, or a predicted segment no GT segment matches
    (``kind`` "missing"). ``segment_id`` is the GT id (None for "missing"); ``pred_segment_id`` the
    predicted segment: the one overlapping the GT segment most (by IoU), or the missing one."""

    image_id: str
    kind: str
    segment_id: int | None
    pred_segment_id: int | None
    category_id: int
    model_category_id: int | None
    bbox: list[int]
    area: int
    score: float
    disagreement: float | None = None
    best_iou: float | None = None
    confidence: float | None = None
    iscrowd: int = 0
    suggested_category_id: int | None = None
    extra: dict = field(default_factory=dict)


# Kept for the app's current Review page: a GT segment's numbers.
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


def _lookup(ids: np.ndarray, table: dict, default, dtype=np.int64) -> np.ndarray:
    if not table:
        return np.full(ids.shape, default, dtype)
    keys = np.array(sorted(table), np.int64)
    values = np.array([table[k] for k in keys.tolist()], dtype)
    pos = np.clip(np.searchsorted(keys, ids), 0, len(keys) - 1)
    return np.where(keys[pos] == ids, values[pos], np.asarray(default, dtype))


def _bboxes(ids: np.ndarray, values: np.ndarray) -> dict[int, list[int]]:
    from .masks import areas_and_boxes

    return {k: box for k, (_, box) in areas_and_boxes(ids, values.tolist()).items()}


def score_image(
    image_id, gt_ids: np.ndarray, segments_info: list[dict], pred: Prediction, categories=None
) -> list[ReviewItem]:
    """The ranking items of one image: every GT segment, and the possible missing annotations.
    ``categories``: {category id: category dict} of the data set (crowd handling uses "isthing")."""
    gt_ids = np.asarray(gt_ids, np.int64)
    if tuple(pred.shape) != gt_ids.shape:
        h, w = pred.shape
        raise ReviewError(
            f"image {image_id}: prediction is {w}x{h} but the annotation is "
            f"{gt_ids.shape[1]}x{gt_ids.shape[0]}; predict at the annotation's size"
        )
    semantic = pred.semantic_map()
    conf = pred.confidence_map()
    conf = np.ones(gt_ids.shape, np.float64) if conf is None else conf

    seg_ids = np.array([int(s["id"]) for s in segments_info], np.int64)
    cat_of = {int(s["id"]): int(s["category_id"]) for s in segments_info}
    crowd_of = {int(s["id"]): int(s.get("iscrowd", 0)) for s in segments_info}
    # Per-pixel index of the GT segment (len(seg_ids) for void and unknown ids).
    order = np.argsort(seg_ids)
    pos = np.clip(np.searchsorted(seg_ids[order], gt_ids), 0, max(len(seg_ids) - 1, 0))
    g_index = (
        np.where(seg_ids[order][pos] == gt_ids, order[pos], len(seg_ids))
        if len(seg_ids)
        else np.zeros(gt_ids.shape, np.int64)
    )
    n_gt = len(seg_ids) + 1
    gt_area = np.bincount(g_index.ravel(), minlength=n_gt)
    gt_cat = np.array([cat_of[int(s)] for s in seg_ids] + [-2], np.int64)
    pix_cat = gt_cat[g_index]
    other = (semantic >= 0) & (semantic != pix_cat)
    weights = conf * other
    dis_sum = np.bincount(g_index.ravel(), weights=weights.ravel(), minlength=n_gt)
    conf_sum = np.bincount(g_index.ravel(), weights=conf.ravel(), minlength=n_gt)

    # The model's class over each GT segment: confidence-weighted votes per (segment, class).
    classes, cls_inv = np.unique(semantic, return_inverse=True)
    cls_inv = cls_inv.reshape(semantic.shape)
    votes = np.bincount(
        (g_index * len(classes) + cls_inv).ravel(),
        weights=(conf * (semantic >= 0)).ravel(),
        minlength=n_gt * len(classes),
    ).reshape(n_gt, len(classes))
    other_votes = np.bincount(
        (g_index * len(classes) + cls_inv).ravel(),
        weights=weights.ravel(),
        minlength=n_gt * len(classes),
    ).reshape(n_gt, len(classes))

    things = {int(k) for k, c in (categories or {}).items() if c.get("isthing")}
    best_iou, best_pred, outline, ious = {}, {}, {}, None
    outline_conf = conf_sum
    if pred.panoptic is not None:
        pan = np.asarray(pred.panoptic, np.int64)
        ious = _overlaps(g_index, n_gt, pan)
        p_ids, inter, g_area_unused, p_area = ious
        pred_cat = pred.segments or {}
        p_conf = _segment_confidence(pred, pan, p_ids, p_area, conf)
        # The panoptic outline is the model's view only where its segment's class is the model's
        # own per-pixel class (its instance grouping can put a small thing into a neighbour).
        own = _lookup(pan, pred_cat, -1) == semantic
        outline_conf = np.bincount(g_index.ravel(), weights=(conf * own).ravel(), minlength=n_gt)
        for gi, sid in enumerate(seg_ids.tolist()):
            row = inter[gi]
            union = gt_area[gi] + p_area - row
            iou = np.where(union > 0, row / np.maximum(union, 1), 0.0)
            iou[p_ids == 0] = 0.0
            same = np.array([pred_cat.get(int(p)) == cat_of[sid] for p in p_ids.tolist()])
            best_iou[sid] = float(iou[same].max()) if same.any() else 0.0
            best_pred[sid] = int(p_ids[int(np.argmax(iou))]) if iou.max() > 0 else None
            if cat_of[sid] in things and not crowd_of[sid] and best_iou[sid] > 0:
                first = int(np.flatnonzero(same)[np.argmax(iou[same])])
                outline[sid] = (
                    _merge(gi, first, same & (p_ids != 0), inter, gt_area, p_area, p_conf),
                    _shift(g_index, pan, gi, p_ids[first], best_iou[sid], gt_area[gi]),
                )

    boxes = _bboxes(gt_ids, seg_ids)
    items = []
    for gi, sid in enumerate(seg_ids.tolist()):
        area = int(gt_area[gi])
        cat = cat_of[sid]
        d = float(dis_sum[gi] / area) if area else 0.0
        q = float(conf_sum[gi] / area) if area else 0.0
        q_outline = float(outline_conf[gi] / area) if area else 0.0
        model_cat = int(classes[int(np.argmax(votes[gi]))]) if votes[gi].max() > 0 else None
        suggested = (
            int(classes[int(np.argmax(other_votes[gi]))]) if other_votes[gi].max() > 0 else None
        )
        iou = best_iou.get(sid)
        score, extra = d, {}
        if iou is not None and not crowd_of[sid]:
            score = max(d, (1.0 - iou) * q_outline)
        if sid in outline:
            merge, shift = outline[sid]
            shift *= q_outline
            extra = {"merge": merge, "shift": shift}
            score = max(score, merge, shift)
        items.append(
            ReviewItem(
                image_id=str(image_id),
                kind=GT_SEGMENT,
                segment_id=sid,
                pred_segment_id=best_pred.get(sid),
                category_id=cat,
                model_category_id=model_cat,
                bbox=boxes[sid],
                area=area,
                score=float(score) if area else 0.0,
                disagreement=d,
                best_iou=iou,
                confidence=q,
                iscrowd=crowd_of[sid],
                suggested_category_id=suggested,
                extra=extra,
            )
        )
    if ious is not None:
        items += _missing(image_id, pred, ious, gt_cat, seg_ids, conf, things)
    return items


def _overlaps(g_index: np.ndarray, n_gt: int, pan: np.ndarray):
    """``(pred ids, intersections [n_gt, n_pred], gt areas, pred areas)``."""
    p_ids, p_inv = np.unique(pan, return_inverse=True)
    p_inv = p_inv.reshape(pan.shape)
    inter = np.bincount(
        (g_index * len(p_ids) + p_inv).ravel(), minlength=n_gt * len(p_ids)
    ).reshape(n_gt, len(p_ids))
    return p_ids, inter, inter.sum(axis=1), inter.sum(axis=0)


def _segment_confidence(pred, pan, p_ids, p_area, conf) -> np.ndarray:
    """Each predicted segment's confidence: its score where the prediction gives one, else its
    mean per-pixel confidence."""
    sums = np.bincount(
        np.searchsorted(p_ids, pan).ravel(), weights=conf.ravel(), minlength=len(p_ids)
    )
    out = sums / np.maximum(p_area, 1)
    for j, pid in enumerate(p_ids.tolist()):
        if pred.scores and int(pid) in pred.scores:
            out[j] = float(pred.scores[int(pid)])
    return out


def _merge(gi, first, same, inter, gt_area, p_area, p_conf) -> float:
    """``merge(S)`` of the module docstring: another same-class predicted segment inside S that
    fills the part of S its best match ``first`` leaves out."""
    left_out = max(float(gt_area[gi] - inter[gi, first]), 1.0)
    best = 0.0
    for j in np.flatnonzero(same).tolist():
        if j == first or p_area[j] < MIN_MISSING_PIXELS or inter[gi, j] == 0:
            continue
        inside = inter[gi, j] / p_area[j]
        if inside >= 0.5:
            best = max(best, p_conf[j] * inside * min(1.0, inter[gi, j] / left_out))
    return float(best)


def _shift(g_index, pan, gi, pred_id, iou, area) -> float:
    """``shift(S)`` of the module docstring, before the confidence factor."""
    if iou >= 1.0:
        return 0.0
    gy, gx = np.nonzero(g_index == gi)
    py, px = np.nonzero(pan == pred_id)
    h, w = pan.shape

    def aligned(dy: int, dx: int) -> float:
        ys, xs = py + dy, px + dx
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        hits = int((g_index[ys[inside], xs[inside]] == gi).sum())
        return hits / float(area + int(inside.sum()) - hits)

    # From the centroids' offset, climb to the best nearby offset (steps 8, 4, 2, 1 pixels): the
    # centroid of a mask cut short by its neighbours is a few pixels off.
    best = (int(round(gy.mean() - py.mean())), int(round(gx.mean() - px.mean())))
    top = aligned(*best)
    for step in SHIFT_STEPS:
        moved = True
        while moved:
            moved = False
            for ddy, ddx in ((-step, 0), (step, 0), (0, -step), (0, step)):
                cand = (best[0] + ddy, best[1] + ddx)
                value = aligned(*cand)
                if value > top:
                    best, top, moved = cand, value, True
    if top <= iou:
        return 0.0
    return (top - iou) / (1.0 - iou) * min(1.0, (1.0 - iou) / (1.0 - MATCH_IOU))


def _missing(image_id, pred, ious, gt_cat, seg_ids, conf, things) -> list[ReviewItem]:
    p_ids, inter, gt_area, p_area = ious
    pan = np.asarray(pred.panoptic, np.int64)
    pred_cat = pred.segments or {}
    n_seg = len(seg_ids)
    conf_sum = np.bincount(
        np.searchsorted(p_ids, pan).ravel(), weights=conf.ravel(), minlength=len(p_ids)
    )
    candidates = []
    for pi, pid in enumerate(p_ids.tolist()):
        cat = pred_cat.get(int(pid))
        if pid == 0 or cat is None or cat < 0 or p_area[pi] < MIN_MISSING_PIXELS:
            continue
        column = inter[:n_seg, pi]
        union = gt_area[:n_seg] + p_area[pi] - column
        iou = np.where(union > 0, column / np.maximum(union, 1), 0.0)
        if n_seg and iou.max() >= MATCH_IOU:
            continue  # matches a GT segment (of this class or, relabelled, of another)
        inside = gt_cat[:n_seg] == cat
        if cat in things:  # a thing inside another class's thing: that segment's wrong class
            inside |= np.isin(gt_cat[:n_seg], list(things))
        covered = float(column[inside].sum()) / float(p_area[pi])
        if covered >= 0.5:
            continue  # inside GT segments: their shape or class is the issue, not a missing one
        if pred.scores and int(pid) in pred.scores:
            confidence = float(pred.scores[int(pid)])
        else:
            confidence = float(conf_sum[pi] / p_area[pi])
        candidates.append((pid, cat, confidence, covered))
    if not candidates:
        return []
    boxes = _bboxes(pan, np.array([c[0] for c in candidates], np.int64))
    return [
        ReviewItem(
            image_id=str(image_id),
            kind=MISSING,
            segment_id=None,
            pred_segment_id=int(pid),
            category_id=int(cat),
            model_category_id=int(cat),
            bbox=boxes[int(pid)],
            area=int(p_area[int(np.searchsorted(p_ids, pid))]),
            score=confidence * (1.0 - covered),
            confidence=confidence,
        )
        for pid, cat, confidence, covered in candidates
    ]


def score_segments(
    image_id, gt_ids: np.ndarray, segments_info: list[dict], pred: Prediction
) -> list[SegmentScore]:
    """The GT segments' numbers of :func:`score_image` (no missing objects)."""
    return [
        SegmentScore(
            image_id=i.image_id,
            segment_id=i.segment_id,
            category_id=i.category_id,
            iscrowd=i.iscrowd,
            area=i.area,
            disagreement=i.disagreement,
            suggested_category_id=i.suggested_category_id,
            best_iou=i.best_iou,
        )
        for i in score_image(image_id, gt_ids, segments_info, pred)
        if i.kind == GT_SEGMENT
    ]


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
    """Turn an ``inference.Prediction`` (train ids, panoptic values) into a review
    :class:`Prediction` in data set category ids. The confidence is the semantic probability of the
    chosen class when the prediction carries probabilities."""
    semantic = np.asarray(pred.semantic, np.int64)
    valid = (semantic >= 0) & (semantic < len(mapping))
    categories = np.where(valid, mapping[np.clip(semantic, 0, len(mapping) - 1)], -1)
    confidence = None
    if getattr(pred, "semantic_probs", None) is not None:
        confidence = np.asarray(pred.semantic_probs, np.float32).max(axis=-1)
    panoptic = np.asarray(pred.panoptic, np.int64)
    void = panoptic // spec.label_divisor == spec.ignore_label
    # Panoptic value 0 is a real segment (class 0, instance 0), so shift by one to free 0 for void.
    seg_ids = np.where(void, 0, panoptic + 1)
    segments = {}
    for value in np.unique(panoptic[~void]).tolist():
        t = value // spec.label_divisor
        segments[value + 1] = int(mapping[t]) if 0 <= t < len(mapping) else -1
    return Prediction(categories, confidence, seg_ids, segments)


def prediction_from_panoptic(ids: np.ndarray, segments_info: list[dict]) -> Prediction:
    """A COCO-panoptic prediction (an id map and its ``segments_info``, with an optional per-segment
    ``score``) as a review :class:`Prediction`: the class of each pixel is its segment's, and the
    confidence the segment's score where given."""
    ids = np.asarray(ids, np.int64)
    segments = {int(s["id"]): int(s["category_id"]) for s in segments_info}
    scores = {int(s["id"]): float(s["score"]) for s in segments_info if s.get("score") is not None}
    return Prediction(None, None, ids, segments, scores or None)
