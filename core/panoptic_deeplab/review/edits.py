"""Annotation review, edits: what each edit tool does to an image's label map, as pure functions.

Each takes the current segment-id map (HxW, 0 = VOID) and returns the new one; the store turns the
difference into a :class:`~.masks.PixelDiff`, updates areas and boxes, removes segments edited down
to nothing and says which segments lost how many pixels. Panoptic labels do not overlap, so giving
pixels to a segment takes them from whichever segment had them.
"""

from __future__ import annotations

import numpy as np

from .errors import ReviewError

PAINT_MODES = ("add", "remove")


def _mask(mask, shape, what: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ReviewError(
            f"{what}: the mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} but "
            f"the image is {shape[1]}x{shape[0]}; draw it on the image at its own size"
        )
    return mask.astype(bool)


def paint(ids: np.ndarray, segment_id: int, mask, mode: str = "add") -> np.ndarray:
    """``add``: the pixels of ``mask`` become the segment's (taken from any other segment);
    ``remove``: the segment's pixels inside ``mask`` become VOID."""
    mask = _mask(mask, ids.shape, "paint")
    if mode == "add":
        return np.where(mask, segment_id, ids)
    if mode == "remove":
        return np.where(mask & (ids == segment_id), 0, ids)
    raise ReviewError(f"unknown paint mode '{mode}'; use one of {', '.join(PAINT_MODES)}")


def take_model(
    ids: np.ndarray, segment_id: int, model_mask, fill: np.ndarray | None = None
) -> np.ndarray:
    """The segment becomes exactly ``model_mask`` (the predicted segment's pixels). Its pixels
    outside that mask go to ``fill`` (an HxW id map: the segment the model sees there; 0 VOID)."""
    model_mask = _mask(model_mask, ids.shape, "take the model's segment")
    if not model_mask.any():
        raise ReviewError("the model's segment is empty; nothing to take")
    new = ids.copy()
    left = (ids == segment_id) & ~model_mask
    new[left] = 0 if fill is None else fill[left]
    new[model_mask] = segment_id
    return new


def add_segment(ids: np.ndarray, new_id: int, mask) -> np.ndarray:
    """A new segment ``new_id`` on the pixels of ``mask`` (taken from the segments there)."""
    mask = _mask(mask, ids.shape, "add a segment")
    if not mask.any():
        raise ReviewError("the new segment has no pixels; draw or choose a region first")
    if (ids == new_id).any():
        raise ReviewError(f"segment id {new_id} is in use in this image")
    return np.where(mask, new_id, ids)


def merge(ids: np.ndarray, segment_id: int, other_id: int) -> np.ndarray:
    """``other_id``'s pixels join ``segment_id`` (``other_id`` is then empty)."""
    if segment_id == other_id:
        raise ReviewError("choose two different segments to merge")
    return np.where(ids == other_id, segment_id, ids)


def split(
    ids: np.ndarray, segment_id: int, parts: np.ndarray, new_ids: list[int]
) -> tuple[np.ndarray, list[int]]:
    """Split a segment by ``parts`` (an HxW map numbering the parts; read only on the segment's
    pixels). The largest part keeps ``segment_id``; the others, largest first, take ids from
    ``new_ids``. Returns the new map and the ids given out."""
    inside = ids == segment_id
    labels, counts = np.unique(parts[inside], return_counts=True)
    if len(labels) < 2:
        raise ReviewError(
            f"segment {segment_id} lies on one side only; draw the line across it (or choose "
            "another way to split)"
        )
    order = np.argsort(-counts, kind="stable")
    if len(order) - 1 > len(new_ids):
        raise ReviewError("not enough new segment ids for the split")  # a bug in the caller
    new = ids.copy()
    given = []
    for label, new_id in zip(labels[order[1:]], new_ids):
        new[inside & (parts == label)] = new_id
        given.append(int(new_id))
    return new, given


def model_parts(
    ids: np.ndarray,
    segment_id: int,
    pred_ids: np.ndarray,
    pred_categories: dict[int, int],
    category_id: int,
    min_pixels: int = 1,
) -> np.ndarray:
    """The parts of a segment along the model's instances: the predicted segments of the same class
    that cover at least ``min_pixels`` of it; its other pixels join the nearest part."""
    import cv2

    inside = ids == segment_id
    found, counts = np.unique(pred_ids[inside], return_counts=True)
    keep = [
        int(p)
        for p, n in zip(found, counts)
        if p != 0 and pred_categories.get(int(p)) == category_id and n >= min_pixels
    ]
    if len(keep) < 2:
        raise ReviewError(
            f"the model sees {len(keep)} instance{'s' if len(keep) != 1 else ''} of this class "
            f"in segment {segment_id}; split along a drawn line instead"
        )
    parts = np.zeros(ids.shape, np.int32)
    for k, p in enumerate(keep, start=1):
        parts[inside & (pred_ids == p)] = k
    rest = inside & (parts == 0)
    if rest.any():  # pixels the model gives to no instance of this class: the nearest part's
        seeds = parts > 0
        _, nearest = cv2.distanceTransformWithLabels(
            (~seeds).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
        )
        label_of = np.zeros(int(nearest.max()) + 1, np.int32)
        label_of[nearest[seeds]] = parts[seeds]
        parts[rest] = label_of[nearest[rest]]
    return parts


def model_fill(
    ids: np.ndarray,
    pred_ids: np.ndarray,
    pred_categories: dict[int, int],
    categories: dict[int, int],
    exclude: int,
) -> np.ndarray:
    """For each pixel, the segment of ``ids`` (other than ``exclude``) that the model's segment
    there corresponds to: the segment of the same class overlapping that predicted segment most;
    0 where none does. ``categories``: {segment id: category id} of the segments of ``ids``."""
    valid = (ids != exclude) & (ids != 0) & (pred_ids != 0)
    fill_of: dict[int, int] = {}
    if valid.any():
        pairs, n = np.unique(
            np.stack([pred_ids[valid].astype(np.int64), ids[valid].astype(np.int64)]),
            axis=1,
            return_counts=True,
        )
        best: dict[int, tuple[int, int]] = {}
        for (p, g), k in zip(pairs.T.tolist(), n.tolist()):
            if pred_categories.get(p) == categories.get(g) and k > best.get(p, (0, 0))[0]:
                best[p] = (k, g)
        fill_of = {p: g for p, (_, g) in best.items()}
    if not fill_of:
        return np.zeros(ids.shape, np.int64)
    keys = np.array(sorted(fill_of), np.int64)
    values = np.array([fill_of[k] for k in keys], np.int64)
    pos = np.clip(np.searchsorted(keys, pred_ids), 0, len(keys) - 1)
    return np.where(keys[pos] == pred_ids, values[pos], 0)
