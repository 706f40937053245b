"""Annotation review, the edit tools of a store (a mixin of ``ReviewStore``): take the model's
segment, add a missed object or a drawn one, paint, smart region, merge, split, dismiss a missing
object. Each builds a plan inside the store's write transaction (``_change``); the store writes it
as one change record."""

from __future__ import annotations

import numpy as np

from .edits import add_segment as add_segment_pixels
from .edits import merge as merge_pixels
from .edits import model_fill, model_parts
from .edits import paint as paint_pixels
from .edits import split as split_pixels
from .edits import take_model as take_model_pixels
from .errors import ReviewError
from .masks import line_sides
from .records import EditResult, Segment, _MissingView, _Plan, _source_key


class EditTools:
    def paint(
        self,
        image_id,
        segment_id: int,
        mask,
        mode: str = "add",
        *,
        tool: str = "brush",
        version: int | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """Add the pixels of ``mask`` (HxW bool) to the segment, taking them from whichever segment
        had them (``mode="add"``), or make the segment's pixels in ``mask`` VOID (``"remove"``).
        ``tool`` is recorded (brush, eraser, polygon, region); "region" is reported as a smart
        region (see :meth:`smart_region`). Masks: :func:`.masks.brush_mask`,
        :func:`.masks.polygon_mask`."""
        segment_id = int(segment_id)
        kind = "region" if tool == "region" else "paint"

        def plan(db, ids, states):
            self._existing(states, str(image_id), segment_id)
            return _Plan(
                main=segment_id,
                new_ids=paint_pixels(ids, segment_id, mask, mode),
                detail={"tool": tool, "mode": mode},
            )

        return self._change(image_id, kind, {segment_id: version}, reviewer, plan)

    def take_model(
        self,
        image_id,
        segment_id: int,
        *,
        source,
        pred_segment_id: int | None = None,
        take_class: bool = False,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """Replace the segment's mask by the predicted segment overlapping it most (or
        ``pred_segment_id``), and its class too with ``take_class``. Its pixels outside the new
        mask go to the segment the model sees there (the same-class segment overlapping that
        predicted segment most), else VOID."""
        segment_id = int(segment_id)
        pred = self._stored_prediction(source, image_id)

        def plan(db, ids, states):
            seg = self._existing(states, str(image_id), segment_id)
            pid = pred_segment_id
            if pid is None:
                pid = _best_overlap(ids == segment_id, pred.panoptic)
                if pid is None:
                    raise ReviewError(
                        f"no predicted segment overlaps segment {segment_id}; paint it instead"
                    )
            pid = int(pid)
            if pid not in (pred.segments or {}):
                raise ReviewError(f"the prediction of image {image_id} has no segment {pid}")
            live = {k: s.category_id for k, s in states.items() if not s.removed}
            fill = model_fill(ids, pred.panoptic, pred.segments, live, exclude=segment_id)
            new_ids = take_model_pixels(ids, segment_id, pred.panoptic == pid, fill)
            updates, detail = {}, {"pred_segment_id": pid, "category_id": seg.category_id}
            if take_class:
                cat = int(pred.segments[pid])
                if cat not in self.categories:
                    raise ReviewError(
                        f"the model's class {cat} is not a category of this data set; take the "
                        "mask only"
                    )
                if cat != seg.category_id:
                    updates["category_id"] = cat
                    detail["new_category_id"] = cat
                    if not self.is_thing(cat):
                        updates["iscrowd"] = 0
            return _Plan(
                main=segment_id, new_ids=new_ids, updates={segment_id: updates}, detail=detail
            )

        return self._change(image_id, "take_model", {segment_id: version}, reviewer, plan)

    def missing_proposal(self, image_id, pred_segment_id: int, *, source) -> tuple[np.ndarray, int]:
        """The mask (HxW bool) and class of a possible missing object, to show before adding it."""
        pred = self._stored_prediction(source, image_id)
        pid = int(pred_segment_id)
        if pid not in (pred.segments or {}):
            raise ReviewError(f"the prediction of image {image_id} has no segment {pid}")
        return np.asarray(pred.panoptic) == pid, int(pred.segments[pid])

    def add_missed(
        self,
        image_id,
        pred_segment_id: int,
        *,
        source,
        category_id: int | None = None,
        mask=None,
        iscrowd: int = 0,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """Add a possible missing object as a new GT segment: the model's mask and class, or the
        ``mask`` / ``category_id`` the reviewer edited before saving. ``version``: the missing
        item's version as shown. A stuff class joins the image's segment of that class."""
        image_id = str(image_id)
        key = _source_key(source)
        model_mask, model_cat = self.missing_proposal(image_id, pred_segment_id, source=source)
        cat = self.data.check_category(model_cat if category_id is None else category_id, "add")
        region = model_mask if mask is None else np.asarray(mask, bool)
        pid = int(pred_segment_id)

        def plan(db, ids, states):
            row = self._missing_row(db, key, image_id, pid) or {"version": 0}
            if version is not None and int(version) != int(row["version"]):
                raise self._stale(
                    image_id, None, int(version), _MissingView(row), "The possible missing object"
                )
            if row.get("status") == "added":
                raise ReviewError(
                    f"this object was already added as segment {row['segment_id']} by "
                    f"{row.get('changed_by') or 'another reviewer'}"
                )
            todo = self._new_segment_plan(db, image_id, ids, states, region, cat, iscrowd, "model")
            todo.detail.update(pred_segment_id=pid, source=key)
            todo.missing = (key, pid, {"status": "added", "segment_id": todo.main})
            return todo

        return self._change(image_id, "add_missed", None, reviewer, plan)

    def add_segment(
        self,
        image_id,
        mask,
        category_id: int,
        *,
        iscrowd: int = 0,
        reviewer: str | None = None,
    ) -> EditResult:
        """A new GT segment of ``category_id`` on the pixels of ``mask`` (drawn by the reviewer).
        A stuff class joins the image's segment of that class."""
        cat = self.data.check_category(category_id, "add")
        region = np.asarray(mask, bool)

        def plan(db, ids, states):
            return self._new_segment_plan(
                db, str(image_id), ids, states, region, cat, iscrowd, "drawn"
            )

        return self._change(image_id, "add", None, reviewer, plan)

    def _new_segment_plan(self, db, image_id, ids, states, mask, cat, iscrowd, origin) -> _Plan:
        if mask.shape != ids.shape:
            raise ReviewError(
                f"the mask is {mask.shape[1]}x{mask.shape[0]} but image {image_id} is "
                f"{ids.shape[1]}x{ids.shape[0]}"
            )
        thing = self.is_thing(cat)
        if not thing:  # one segment per stuff class and image: grow the existing one
            for sid, seg in states.items():
                if not seg.removed and seg.category_id == cat:
                    return _Plan(
                        main=sid,
                        new_ids=paint_pixels(ids, sid, mask, "add"),
                        detail={"category_id": cat, "joined": sid},
                    )
        new_id = self._fresh_ids(db, image_id, ids, states, 1)[0]
        created = Segment(id=new_id, category_id=cat, iscrowd=int(bool(iscrowd and thing)))
        created.origin = origin
        return _Plan(
            main=new_id,
            new_ids=add_segment_pixels(ids, new_id, mask),
            created={new_id: created},
            detail={"category_id": cat},
        )

    def dismiss_missing(
        self,
        image_id,
        pred_segment_id: int,
        *,
        source,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """The possible missing object is not one (the model is wrong): nothing is added."""
        image_id, key, pid = str(image_id), _source_key(source), int(pred_segment_id)

        def plan(db, ids, states):
            row = self._missing_row(db, key, image_id, pid) or {"version": 0}
            if version is not None and int(version) != int(row["version"]):
                raise self._stale(
                    image_id, None, int(version), _MissingView(row), "The possible missing object"
                )
            if row.get("status") == "added":
                raise ReviewError(
                    f"this object was already added as segment {row['segment_id']}; undo that "
                    "or reject the segment"
                )
            return _Plan(
                main=None,
                detail={"pred_segment_id": pid, "source": key},
                missing=(key, pid, {"status": "dismissed", "segment_id": None}),
            )

        return self._change(image_id, "dismiss", None, reviewer, plan, pixels=False)

    def merge(
        self,
        image_id,
        segment_id: int,
        other_id: int,
        *,
        versions: dict[int, int] | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """``other_id``'s pixels join ``segment_id``, which keeps its class; ``other_id`` is
        removed. ``versions``: {segment id: version shown} of both."""
        segment_id, other_id = int(segment_id), int(other_id)

        def plan(db, ids, states):
            self._existing(states, str(image_id), segment_id)
            other = self._existing(states, str(image_id), other_id)
            return _Plan(
                main=segment_id,
                new_ids=merge_pixels(ids, segment_id, other_id),
                detail={"other": other_id, "other_category_id": other.category_id},
            )

        return self._change(image_id, "merge", versions, reviewer, plan)

    def split_segment(
        self,
        image_id,
        segment_id: int,
        *,
        line=None,
        source=None,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> EditResult:
        """Split a thing segment along a drawn ``line`` ([[x, y], ...], extended to the image's
        border), or, without one, along the model's instances (``source`` needed): one part per
        predicted instance of its class, the rest of its pixels to the nearest part. The largest
        part keeps the id; the others become new segments of the same class."""
        segment_id = int(segment_id)
        pred = self._stored_prediction(source, image_id) if line is None else None
        if line is None and source is None:
            raise ReviewError("split needs a drawn line or a scored source (the model's instances)")

        def plan(db, ids, states):
            seg = self._existing(states, str(image_id), segment_id)
            if not self.is_thing(seg.category_id):
                raise ReviewError(
                    f"segment {segment_id} is '{self.category_name(seg.category_id)}', a stuff "
                    "class: an image has one segment per stuff class. Paint the part that is "
                    "something else with that segment instead."
                )
            if line is not None:
                parts = line_sides(ids.shape, line)
                how = "line"
            else:
                parts = model_parts(ids, segment_id, pred.panoptic, pred.segments, seg.category_id)
                how = "model"
            n = len(np.unique(parts[ids == segment_id]))
            fresh = self._fresh_ids(db, str(image_id), ids, states, max(n - 1, 1))
            new_ids, given = split_pixels(ids, segment_id, parts, fresh)
            created = {
                g: Segment(id=g, category_id=seg.category_id, iscrowd=seg.iscrowd, origin="split")
                for g in given
            }
            return _Plan(
                main=segment_id,
                new_ids=new_ids,
                created=created,
                detail={"along": how, "category_id": seg.category_id},
            )

        return self._change(image_id, "split", {segment_id: version}, reviewer, plan)

    def smart_region(
        self, image_id, *, click=None, box=None, radius: float | None = None
    ) -> np.ndarray:
        """A region of the image from a click ([x, y]) or a box ([x, y, w, h]), found from the
        image's colours (GrabCut): an HxW bool mask to pass to :meth:`paint` with
        ``tool="region"``. Nothing is written."""
        from .smart_region import smart_region

        return smart_region(self.image(image_id), click=click, box=box, radius=radius)


def _best_overlap(mask: np.ndarray, pred_ids: np.ndarray) -> int | None:
    """The predicted segment with the highest IoU with ``mask`` (None when none overlaps)."""
    found, inter = np.unique(pred_ids[mask], return_counts=True)
    keep = found != 0
    found, inter = found[keep], inter[keep]
    if not len(found):
        return None
    areas = np.array([(pred_ids == p).sum() for p in found.tolist()])
    iou = inter / (mask.sum() + areas - inter)
    return int(found[int(np.argmax(iou))])
