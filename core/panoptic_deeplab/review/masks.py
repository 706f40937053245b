"""Annotation review, pixels: boxes and areas, drawn shapes as masks, and the compact pixel diff an
edit is stored as.

A pixel diff lists the pixels an edit changed (flat indices into the image) with the segment id each
had before and has after; applying it forwards or backwards is exact, so undo never needs a copy of
the whole label map.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .errors import ReviewError


def bbox_of(mask: np.ndarray) -> list[int]:
    """``[x, y, width, height]`` of the pixels of ``mask`` (``[0, 0, 0, 0]`` when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return [0, 0, 0, 0]
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def areas_and_boxes(ids: np.ndarray, segment_ids) -> dict[int, tuple[int, list[int]]]:
    """``{segment id: (area, bbox)}`` of the given ids in a label map, one pass over its pixels."""
    wanted = np.array(sorted({int(s) for s in segment_ids}), np.int64)
    out = {int(s): (0, [0, 0, 0, 0]) for s in wanted}
    if not len(wanted):
        return out
    flat = ids.ravel()
    hit = np.isin(flat, wanted)
    where = np.flatnonzero(hit)
    if not len(where):
        return out
    values = flat[where].astype(np.int64)
    ys, xs = np.divmod(where, ids.shape[1])
    order = np.argsort(values, kind="stable")
    values, ys, xs = values[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for a, b in zip(starts, ends):
        y, x = ys[a:b], xs[a:b]
        x0, y0 = int(x.min()), int(y.min())
        out[int(values[a])] = (int(b - a), [x0, y0, int(x.max()) - x0 + 1, int(y.max()) - y0 + 1])
    return out


# -- drawn shapes ------------------------------------------------------------------------------


def _points(points, what: str) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if not len(pts) or not np.isfinite(pts).all():
        raise ReviewError(f"{what}: give points as [[x, y], ...] in image pixels")
    return np.round(pts).astype(np.int32)


def brush_mask(shape: tuple[int, int], points, radius: float) -> np.ndarray:
    """The pixels a round brush of ``radius`` covers along the stroke ``points`` ([[x, y], ...])."""
    pts = _points(points, "brush stroke")
    import cv2

    out = np.zeros(shape[:2], np.uint8)
    r = max(0, int(round(radius)))
    if len(pts) == 1:
        cv2.circle(out, tuple(int(v) for v in pts[0]), r, 1, -1)
    else:
        cv2.polylines(out, [pts], False, 1, thickness=2 * r + 1, lineType=cv2.LINE_8)
        for p in (pts[0], pts[-1]):  # round ends, as the brush is round
            cv2.circle(out, tuple(int(v) for v in p), r, 1, -1)
    return out.astype(bool)


def polygon_mask(shape: tuple[int, int], points) -> np.ndarray:
    """The pixels inside a polygon ([[x, y], ...], at least 3 corners), its outline included."""
    pts = _points(points, "polygon")
    if len(pts) < 3:
        raise ReviewError(f"a polygon needs at least 3 corners; got {len(pts)}")
    import cv2

    out = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(out, [pts], 1)
    return out.astype(bool)


def line_sides(shape: tuple[int, int], points) -> np.ndarray:
    """Regions of the image on either side of a drawn line, as an int32 map numbering them from 1.

    Two points: the two half-planes of the straight line through them; a pixel (its centre at
    integer x, y) exactly on the line belongs to region 2. More points: the regions a polyline
    (extended at both ends to the image border) cuts the image into; the line's own pixels join
    the region of their nearest neighbour."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 2 or not np.isfinite(pts).all() or np.allclose(pts[0], pts[-1]):
        raise ReviewError("a split line needs two different points [[x, y], [x, y], ...]")
    h, w = shape[:2]
    if len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        ys, xs = np.mgrid[0:h, 0:w]
        side = (x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0)
        return np.where(side > 0, 1, 2).astype(np.int32)
    import cv2

    far = 2.0 * (h + w)  # beyond the border, so the line cuts the image through
    start_dir = pts[0] - pts[1]
    end_dir = pts[-1] - pts[-2]
    start = pts[0] + start_dir / max(np.linalg.norm(start_dir), 1e-9) * far
    end = pts[-1] + end_dir / max(np.linalg.norm(end_dir), 1e-9) * far
    line = np.zeros((h, w), np.uint8)
    poly = np.round(np.vstack([start, pts, end])).astype(np.int32)
    cv2.polylines(line, [poly], False, 1, thickness=1, lineType=cv2.LINE_8)
    # 4-connected regions: an 8-connected line of one pixel separates them.
    n, regions = cv2.connectedComponents((line == 0).astype(np.uint8), connectivity=4)
    if n <= 2:
        raise ReviewError("the split line does not divide the image; draw it across the segment")
    on_line = line.astype(bool)
    if on_line.any():
        # Labels of the nearest zero pixel of the input: the pixels off the line are its zeros.
        _, nearest = cv2.distanceTransformWithLabels(
            on_line.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
        )
        off = ~on_line
        label_of = np.zeros(int(nearest.max()) + 1, np.int32)
        label_of[nearest[off]] = regions[off]
        regions = np.where(on_line, label_of[nearest], regions)
    return regions.astype(np.int32)


# -- pixel diffs -------------------------------------------------------------------------------


@dataclass
class PixelDiff:
    """What an edit changed: flat pixel ``indices`` (sorted), the ids ``before`` and ``after``."""

    indices: np.ndarray
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def between(cls, old: np.ndarray, new: np.ndarray) -> PixelDiff:
        idx = np.flatnonzero(old.ravel() != new.ravel())
        return cls(idx, old.ravel()[idx].astype(np.int64), new.ravel()[idx].astype(np.int64))

    def __len__(self) -> int:
        return int(len(self.indices))

    def apply(self, ids: np.ndarray, backwards: bool = False) -> None:
        """Change ``ids`` in place (forwards: to ``after``; backwards: to ``before``)."""
        flat = ids.reshape(-1)
        flat[self.indices] = self.before if backwards else self.after

    def holds(self, ids: np.ndarray, backwards: bool = False) -> bool:
        """Whether ``ids`` shows this diff's result (or its start, ``backwards``)."""
        expect = self.before if backwards else self.after
        return bool(np.array_equal(ids.reshape(-1)[self.indices], expect))

    def counts(self) -> dict[tuple[int, int], int]:
        """``{(before id, after id): pixels}``."""
        if not len(self):
            return {}
        pairs, n = np.unique(np.stack([self.before, self.after]), axis=1, return_counts=True)
        return {(int(a), int(b)): int(k) for (a, b), k in zip(pairs.T, n)}

    def encode(self) -> bytes:
        """Compact bytes: index gaps and ids as little-endian integers, zlib-compressed."""
        gaps = np.diff(self.indices, prepend=0).astype("<u4")
        body = b"".join(
            [
                np.array([len(self)], "<u4").tobytes(),
                gaps.tobytes(),
                self.before.astype("<u4").tobytes(),
                self.after.astype("<u4").tobytes(),
            ]
        )
        return zlib.compress(body, 1)

    @classmethod
    def decode(cls, data: bytes) -> PixelDiff:
        body = zlib.decompress(data)
        n = int(np.frombuffer(body[:4], "<u4")[0])
        arr = np.frombuffer(body[4:], "<u4")
        if len(arr) != 3 * n:
            raise ReviewError("a stored pixel edit is damaged (its length does not match)")
        idx = np.cumsum(arr[:n].astype(np.int64))
        return cls(idx, arr[n : 2 * n].astype(np.int64), arr[2 * n :].astype(np.int64))
