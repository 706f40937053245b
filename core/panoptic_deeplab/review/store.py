"""Annotation review, the store: the state of one split under review, kept in SQLite beside the
predictions it was scored with (``<store folder>/review.sqlite`` and ``predictions/``).

What it keeps (see :mod:`.db` for the tables):
  - every decision and edit as a change record (reviewer, ISO 8601 time, what changed, the pixels as
    a compressed diff), so each is undone exactly, across restarts, and listed in the export report;
  - the current state of each touched segment with a version; a change made on a segment at another
    version than the caller saw is refused with :class:`StaleSegment`, naming who changed it;
  - the ranking of each scored source, and per image its prediction (``predictions/<source>/``).

Decisions on a ground-truth segment: ``accept``; ``reject`` (exported as VOID, listed for
re-annotation); ``relabel`` (a new class; a stuff class is merged with the image's segment of that
class in the export); ``crowd`` (iscrowd = 1, things only); ``ignore`` (exported as VOID).
Edits: ``take_model``, ``add_missed``, ``add``, ``paint``, ``region``, ``merge``, ``split``.
Panoptic labels do not overlap: pixels given to one segment are taken from another, and the result
says which lost how many; a segment edited down to nothing is removed.

The source data set is only ever read. A store object is cheap to create (the app makes one per
page run): parsed annotations, label maps, predictions and rankings are cached per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..safe_files import disk_full_error, is_disk_full
from ..sqlite_store import DamagedStoreError, SqliteStore, set_aside
from .cache import LABELS, RANKINGS
from .dataset import ReviewDataset
from .db import iso_from_epoch, now_iso, prepare
from .errors import DecisionConflict, ReviewError, StaleSegment
from .masks import PixelDiff, areas_and_boxes
from .records import (
    Decision,
    EditResult,
    ImageState,
    Segment,
    UndoResult,
    _Plan,
    _source_key,
    default_reviewer,
    describe_change,
)
from .scorer import Scoring
from .tools import EditTools

ACTIONS = ("accept", "reject", "relabel", "crowd", "ignore")
EDIT_KINDS = ("take_model", "add_missed", "add", "paint", "region", "merge", "split")
# (the split method is ``split_segment``: ``store.split`` is the name of the split under review)
EXCLUDING = ("reject", "ignore")  # decisions whose segment is exported as VOID
MAX_SEGMENT_ID = 256**3 - 1  # ids are stored as RGB in the PNGs


def default_review_dir(
    dataset_root: str | os.PathLike, split: str, workdir_root: str | os.PathLike | None = None
) -> Path:
    """``<workdir>/review/<data set name>-<hash of its path>/<split>``: one store per data set and
    split (``workdir``: the app's work directory by default)."""
    if workdir_root is None:
        from ..settings import workdir

        workdir_root = workdir()
    root = Path(dataset_root).expanduser().resolve()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return Path(workdir_root).expanduser() / "review" / f"{root.name}-{digest}" / split


class ReviewStore(EditTools, Scoring, SqliteStore):
    """The review of one split of a COCO-panoptic data set; see the module docstring.

    ``workdir``: the store's folder (:func:`default_review_dir` gives the app's); ``reviewer``: the
    name stored with every change (default :func:`default_reviewer`); ``say``: where notes go (a
    migration's backup), default stderr. A damaged ``review.sqlite`` raises ``DamagedStoreError``;
    with ``repair=True`` it is renamed aside (``set_aside_as``) and the review starts empty.
    """

    repair_hint = (
        "To keep it aside (renamed with the time) and start an empty review, use the Review page's "
        "button or `pdl review ... --repair` (`ReviewStore(..., repair=True)` from Python). The "
        "data set is not touched."
    )

    def __init__(
        self,
        dataset_root: str | os.PathLike,
        split: str,
        workdir: str | os.PathLike,
        reviewer: str | None = None,
        say: Callable[[str], None] | None = None,
        *,
        repair: bool = False,
    ):
        self.data = ReviewDataset(dataset_root, split)
        self.root, self.split, self.json_path = self.data.root, split, self.data.json_path
        self.workdir = Path(workdir).expanduser()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "review.sqlite"
        self.reviewer = (reviewer or "").strip() or default_reviewer()
        import sys

        say = say or (lambda t: print(t, file=sys.stderr))
        self.set_aside_as: Path | None = None  # where repair=True moved a damaged store
        try:
            self.notes = prepare(self.db_path, self._open, say)
        except DamagedStoreError:
            if not repair:
                raise
            self.set_aside_as = set_aside(self.db_path)
            self._checked = None
            self.notes = prepare(self.db_path, self._open, say)
        with self._read() as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            needs_import = bool(
                db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='v1_decisions'"
                ).fetchone()
            )
        if "store_id" not in meta or needs_import:
            with self._write(count=False) as db:
                for key, value in (
                    ("store_id", uuid.uuid4().hex),
                    ("revision", "0"),
                    ("dataset", str(self.root)),
                    ("split", split),
                ):
                    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
                if needs_import:
                    self._import_v1(db)
            with self._read() as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._store_id = meta["store_id"]

    @classmethod
    def open(
        cls,
        dataset_root: str | os.PathLike,
        split: str,
        workdir_root: str | os.PathLike | None = None,
        reviewer: str | None = None,
        *,
        repair: bool = False,
    ) -> ReviewStore:
        """The store the app uses for this data set and split (under ``workdir_root``, by default
        the app's work directory)."""
        folder = default_review_dir(dataset_root, split, workdir_root)
        return cls(dataset_root, split, folder, reviewer, repair=repair)

    # -- SQLite --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self):
        db = self._open()
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _write(self, count: bool = True):
        """One write transaction, taken at once (BEGIN IMMEDIATE): two reviewers' changes are
        serialised, and the versions checked inside it cannot change before the write."""
        db = self._open()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            if count:
                db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"
                )
            db.commit()
        except BaseException as err:
            db.rollback()
            if isinstance(err, sqlite3.OperationalError) and (
                "disk is full" in str(err) or is_disk_full(err)
            ):
                raise disk_full_error(self.workdir, self.db_path.name) from err
            raise
        finally:
            db.close()

    def revision(self) -> int:
        """A number that grows with every write (to tell whether anything changed)."""
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        return int(row[0]) if row else 0

    # -- the data set (read only) ---------------------------------------------------------------

    @property
    def coco(self) -> dict:
        return self.data.coco

    @property
    def categories(self) -> dict[int, dict]:
        return self.data.categories

    @property
    def spec(self):
        return self.data.spec

    def image_ids(self) -> list[str]:
        return self.data.image_ids()

    def annotation(self, image_id) -> dict:
        return self.data.annotation(image_id)

    def png_path(self, image_id) -> Path:
        return self.data.png_path(image_id)

    def image_path(self, image_id) -> Path:
        return self.data.image_path(image_id)

    def image(self, image_id) -> np.ndarray:
        return self.data.image(image_id)

    def category_name(self, category_id) -> str:
        return self.data.category_name(category_id)

    def is_thing(self, category_id) -> bool:
        return self.data.is_thing(category_id)

    # -- current labels -------------------------------------------------------------------------

    def _original_states(self, image_id: str) -> dict[int, Segment]:
        out = {}
        for s in self.data.original_segments(image_id):
            bbox = s.get("bbox") or [0, 0, 0, 0]
            out[int(s["id"])] = Segment(
                id=int(s["id"]),
                category_id=int(s["category_id"]),
                iscrowd=int(s.get("iscrowd", 0)),
                area=int(s.get("area", 0)),
                bbox=[int(v) for v in bbox],
            )
        return out

    def _states(self, db, image_id: str) -> dict[int, Segment]:
        out = self._original_states(image_id)
        for row in db.execute("SELECT * FROM segments WHERE image_id = ?", (image_id,)):
            out[int(row["segment_id"])] = Segment.from_row(row)
        return out

    def _labels(self, db, image_id: str) -> tuple[np.ndarray, int]:
        row = db.execute(
            "SELECT pixel_version FROM images WHERE image_id = ?", (image_id,)
        ).fetchone()
        version = int(row[0]) if row else 0
        key = (self._store_id, image_id)
        hit = LABELS.get(key, version)
        if hit is not None:
            return hit, version
        ids = self.data.original_ids(image_id)
        if version:
            for (blob,) in db.execute(
                "SELECT pixels FROM changes WHERE image_id = ? AND pixels IS NOT NULL"
                " AND undone_at IS NULL ORDER BY seq",
                (image_id,),
            ):
                PixelDiff.decode(blob).apply(ids)
        ids.flags.writeable = False
        LABELS.put(key, ids, version)
        return ids, version

    def image_state(self, image_id) -> ImageState:
        """The image's current label map and segments (after every effective edit)."""
        image_id = str(image_id)
        self.data.annotation(image_id)
        with self._read() as db:
            ids, version = self._labels(db, image_id)
            states = self._states(db, image_id)
        return ImageState(image_id, ids, states, version)

    def segment(self, image_id, segment_id: int) -> Segment:
        """One segment's current state (its ``version`` is what a change passes back)."""
        state = self.image_state(image_id).segments.get(int(segment_id))
        if state is None:
            raise ReviewError(f"image {image_id} has no segment {segment_id}")
        return state

    def gt_ids(self, image_id) -> np.ndarray:
        """The image's current label map (HxW; the annotation PNG with the edits applied)."""
        return self.image_state(image_id).ids

    def segments(self, image_id) -> list[dict]:
        """The image's current segments as ``segments_info`` entries (removed ones left out)."""
        return [
            {"id": s.id, "category_id": s.category_id, "iscrowd": s.iscrowd, "area": s.area}
            for s in self.image_state(image_id).active().values()
        ]

    def gt_panoptic(self, image_id, spec=None) -> np.ndarray:
        """The current labels as a ``train_id * label_divisor + k`` map of ``spec`` (this data
        set's by default), ``k`` numbering segments from 1, for drawing; void and unknown classes
        are void."""
        from .scoring import category_mapping_inverse

        spec = spec or self.spec
        state = self.image_state(image_id)
        train_of = category_mapping_inverse(spec)
        out = np.full(state.ids.shape, spec.ignore_label * spec.label_divisor, np.int64)
        for k, seg in enumerate(state.active().values(), start=1):
            t = train_of.get(int(seg.category_id))
            if t is not None:
                out[state.ids == seg.id] = t * spec.label_divisor + (k if spec.is_thing(t) else 0)
        return out

    # -- changes --------------------------------------------------------------------------------

    def _stale(self, image_id: str, segment_id: int | None, shown: int, seg, what: str):
        who = seg.changed_by or "another reviewer"
        when = f" at {seg.changed_at}" if seg.changed_at else ""
        doing = f" ({seg.action})" if getattr(seg, "action", "") else ""
        return StaleSegment(
            f"{what} of image {image_id} was changed by {who}{when}{doing} since it was shown "
            f"(version {shown}, now {seg.version}). Nothing was saved; look at it again and redo "
            "the change.",
            self._decision_of(image_id, seg) if isinstance(seg, Segment) else None,
            image_id=image_id,
            segment_id=segment_id,
            changed_by=seg.changed_by,
            changed_at=seg.changed_at,
            version=seg.version,
        )

    def _check_versions(self, image_id: str, states: dict, expected) -> None:
        for sid, shown in (expected or {}).items():
            if shown is None:
                continue
            seg = states.get(int(sid))
            if seg is None:
                raise ReviewError(f"image {image_id} has no segment {sid}")
            if int(shown) != seg.version:
                raise self._stale(image_id, int(sid), int(shown), seg, f"Segment {sid}")

    def _existing(self, states: dict, image_id: str, segment_id) -> Segment:
        seg = states.get(int(segment_id))
        if seg is None or seg.removed:
            gone = " (it was removed by an edit)" if seg is not None else ""
            raise ReviewError(f"image {image_id} has no segment {segment_id}{gone}")
        return seg

    def _fresh_ids(self, db, image_id: str, ids: np.ndarray, states: dict, n: int) -> list[int]:
        """``n`` segment ids never used in this image (not even by removed segments)."""
        row = db.execute("SELECT next_id FROM images WHERE image_id = ?", (image_id,)).fetchone()
        used = set(states) | {int(v) for v in np.unique(ids).tolist()}
        start = int(row[0]) if row else max(used | {0}) + 1
        out, candidate = [], start
        while len(out) < n:
            if candidate > MAX_SEGMENT_ID:  # ran past the RGB range: fill the gaps from 1
                candidate = next(k for k in range(1, MAX_SEGMENT_ID) if k not in used)
            if candidate not in used:
                out.append(candidate)
                used.add(candidate)
            candidate += 1
        db.execute(
            "INSERT INTO images (image_id, pixel_version, next_id) VALUES (?, 0, ?)"
            " ON CONFLICT(image_id) DO UPDATE SET next_id = excluded.next_id",
            (image_id, max(out) + 1),
        )
        return out

    def _change(
        self,
        image_id,
        kind: str,
        expected: dict | None,
        reviewer: str | None,
        plan: Callable,
        pixels: bool = True,
    ) -> EditResult:
        """Check versions, build the change with ``plan(db, ids, states)`` and write it, all in one
        write transaction."""
        image_id = str(image_id)
        self.data.annotation(image_id)
        reviewer = (reviewer or "").strip() or self.reviewer
        with self._write() as db:
            states = self._states(db, image_id)
            self._check_versions(image_id, states, expected)
            ids, _ = self._labels(db, image_id) if pixels else (None, 0)
            todo = plan(db, ids, states)
            result, new_version = self._commit(db, image_id, kind, reviewer, states, ids, todo)
        if new_version is not None:
            new_ids = np.asarray(todo.new_ids, np.int32)
            new_ids.flags.writeable = False
            LABELS.put((self._store_id, image_id), new_ids, new_version)
        return result

    def _commit(self, db, image_id, kind, reviewer, states, ids, todo: _Plan):
        now = now_iso()
        diff = None
        if todo.new_ids is not None:
            diff = PixelDiff.between(ids, np.asarray(todo.new_ids))
            if not len(diff):
                diff = None
        pairs = diff.counts() if diff is not None else {}
        touched = set(todo.updates) | set(todo.created)
        touched |= {a for a, _ in pairs} | {b for _, b in pairs}
        if todo.main is not None:
            touched.add(todo.main)
        touched.discard(0)
        geometry = areas_and_boxes(np.asarray(todo.new_ids), touched) if pairs else {}
        before, after, versions = {}, {}, {}
        for sid in sorted(touched):
            old = states.get(sid)
            seg = Segment(**old.snapshot()) if old is not None else todo.created[sid]
            for name, value in todo.updates.get(sid, {}).items():
                setattr(seg, name, value)
            if sid in geometry:
                seg.area, seg.bbox = geometry[sid]
                seg.removed = seg.area == 0
            if sid == todo.main and todo.sets_action:
                seg.action = kind
                seg.decided_by, seg.decided_at = reviewer, now
                if kind not in EXCLUDING:
                    seg.excluded = ""
            seg.version = (old.version if old is not None else 0) + 1
            seg.changed_by, seg.changed_at = reviewer, now
            before[str(sid)] = old.snapshot() if old is not None else None
            after[str(sid)] = seg.snapshot()
            versions[sid] = seg.version
            self._put_segment(db, image_id, seg)
        main = todo.main
        detail = dict(todo.detail)
        if pairs and main is not None:
            detail["pixels_added"] = sum(n for (a, b), n in pairs.items() if b == main)
            detail["pixels_removed"] = sum(n for (a, b), n in pairs.items() if a == main)
            detail["taken_from"] = {
                str(a): n for (a, b), n in pairs.items() if b == main and a != 0
            }
            detail["given_to"] = {str(b): n for (a, b), n in pairs.items() if a == main}
        detail["new_segments"] = sorted(todo.created) + detail.get("new_segments", [])
        detail["removed_segments"] = sorted(
            sid
            for sid in touched
            if after[str(sid)]["removed"] and not (before[str(sid)] or {}).get("removed")
        )
        missing_before = missing_after = None
        if todo.missing is not None:
            source, pred_id, row_after = todo.missing
            missing_before = self._missing_row(db, source, image_id, pred_id)
            row_after = dict(row_after)
            row_after["version"] = (missing_before or {}).get("version", 0) + 1
            row_after.update(changed_by=reviewer, changed_at=now)
            self._put_missing(db, source, image_id, pred_id, row_after)
            missing_after = row_after
        cur = db.execute(
            "INSERT INTO changes (image_id, segment_id, kind, reviewer, at, detail, before, after,"
            " pixels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image_id,
                main,
                kind,
                reviewer,
                now,
                json.dumps(detail),
                json.dumps({"segments": before, "missing": missing_before}),
                json.dumps({"segments": after, "missing": missing_after}),
                diff.encode() if diff is not None else None,
            ),
        )
        new_version = self._bump_pixels(db, image_id, ids) if diff is not None else None
        result = EditResult(
            seq=int(cur.lastrowid),
            image_id=image_id,
            kind=kind,
            segment_id=main,
            pixels_added=int(detail.get("pixels_added", 0)),
            pixels_removed=int(detail.get("pixels_removed", 0)),
            taken_from={int(k): v for k, v in detail.get("taken_from", {}).items()},
            given_to={int(k): v for k, v in detail.get("given_to", {}).items()},
            new_segments=list(detail["new_segments"]),
            removed_segments=list(detail["removed_segments"]),
            versions=versions,
        )
        result.message = describe_change(kind, main, detail, self.category_name)
        return result, new_version

    def _bump_pixels(self, db, image_id: str, ids: np.ndarray) -> int:
        row = db.execute(
            "SELECT pixel_version, next_id FROM images WHERE image_id = ?", (image_id,)
        ).fetchone()
        if row is None:
            next_id = int(ids.max()) + 1 if ids is not None and ids.size else 1
            db.execute("INSERT INTO images VALUES (?, 1, ?)", (image_id, next_id))
            return 1
        db.execute(
            "UPDATE images SET pixel_version = pixel_version + 1 WHERE image_id = ?", (image_id,)
        )
        return int(row[0]) + 1

    @staticmethod
    def _put_segment(db, image_id: str, seg: Segment) -> None:
        db.execute(
            "INSERT OR REPLACE INTO segments (image_id, segment_id, category_id, iscrowd, area,"
            " bbox, origin, removed, action, excluded, comment, decided_by, decided_at, version,"
            " changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image_id,
                seg.id,
                seg.category_id,
                seg.iscrowd,
                seg.area,
                json.dumps([int(v) for v in seg.bbox]),
                seg.origin,
                int(seg.removed),
                seg.action,
                seg.excluded,
                seg.comment,
                seg.decided_by,
                seg.decided_at,
                seg.version,
                seg.changed_by,
                seg.changed_at,
            ),
        )

    @staticmethod
    def _missing_row(db, source: str, image_id: str, pred_id: int) -> dict | None:
        row = db.execute(
            "SELECT status, segment_id, version, changed_by, changed_at FROM missing"
            " WHERE source = ? AND image_id = ? AND pred_segment_id = ?",
            (source, image_id, int(pred_id)),
        ).fetchone()
        return dict(row) if row else None

    @staticmethod
    def _put_missing(db, source: str, image_id: str, pred_id: int, row: dict) -> None:
        db.execute(
            "INSERT OR REPLACE INTO missing VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                source,
                image_id,
                int(pred_id),
                row.get("status", ""),
                row.get("segment_id"),
                int(row.get("version", 0)),
                row.get("changed_by", ""),
                row.get("changed_at", ""),
            ),
        )

    # -- decisions ------------------------------------------------------------------------------

    def _decision_of(self, image_id: str, seg: Segment) -> Decision | None:
        if not seg.action and not seg.comment:
            return None
        original = self._original_states(image_id).get(seg.id)
        changed_class = original is None or original.category_id != seg.category_id
        return Decision(
            image_id=image_id,
            segment_id=seg.id,
            action=seg.action or None,
            category_id=seg.category_id if changed_class else None,
            comment=seg.comment,
            updated_at=seg.decided_at or seg.changed_at,
            reviewer=seg.decided_by or seg.changed_by,
            version=seg.version,
        )

    def decision(self, image_id, segment_id: int) -> Decision | None:
        """The segment's decision and comment, or None when it has neither."""
        image_id = str(image_id)
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM segments WHERE image_id = ? AND segment_id = ?",
                (image_id, int(segment_id)),
            ).fetchone()
        return self._decision_of(image_id, Segment.from_row(row)) if row else None

    def decisions(self) -> list[Decision]:
        """Every segment with a decision or a comment."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM segments WHERE action != '' OR comment != ''"
                " ORDER BY image_id, segment_id"
            ).fetchall()
        out = []
        for row in rows:
            d = self._decision_of(row["image_id"], Segment.from_row(row))
            if d is not None:
                out.append(d)
        return out

    def decide(
        self,
        image_id,
        segment_id: int,
        action: str,
        category_id: int | None = None,
        replace: bool = True,
        *,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> Decision:
        """Record a decision (:data:`ACTIONS`) on a GT segment. ``version``: the segment's version
        as shown (a change made since is refused with :class:`StaleSegment`). With
        ``replace=False`` an earlier, different decision is kept and named in a
        :class:`DecisionConflict`."""
        if action not in ACTIONS:
            raise ReviewError(f"unknown action '{action}'; use one of {', '.join(ACTIONS)}")
        segment_id = int(segment_id)
        if action == "relabel":
            category_id = self.data.check_category(category_id, "relabel")

        def plan(db, ids, states):
            seg = self._existing(states, str(image_id), segment_id)
            if action == "crowd" and not self.is_thing(seg.category_id):
                raise ReviewError(
                    f"segment {segment_id} is '{self.category_name(seg.category_id)}', a stuff "
                    "class; only thing segments can be crowd regions (use 'ignore' to exclude it)"
                )
            new_cat = category_id if action == "relabel" else None
            old = self._decision_of(str(image_id), seg)
            if (
                not replace
                and old is not None
                and old.action in ACTIONS
                and (old.action, old.category_id if old.action == "relabel" else None)
                != (action, new_cat)
            ):
                earlier = old.action + (
                    f" → {self.category_name(old.category_id)}" if old.action == "relabel" else ""
                )
                by = f" by {old.reviewer}" if old.reviewer else ""
                raise DecisionConflict(
                    f"Segment {segment_id} of image {image_id} was already decided: '{earlier}' "
                    f"(saved {old.updated_at}{by}).",
                    old,
                )
            updates: dict = {}
            if action in EXCLUDING:
                updates["excluded"] = action
            elif action == "relabel":
                updates["category_id"] = new_cat
                if not self.is_thing(new_cat):
                    updates["iscrowd"] = 0
            elif action == "crowd":
                updates["iscrowd"] = 1
            detail = {"category_id": seg.category_id}
            if new_cat is not None:
                detail["new_category_id"] = new_cat
            return _Plan(main=segment_id, updates={segment_id: updates}, detail=detail)

        self._change(image_id, action, {segment_id: version}, reviewer, plan, pixels=False)
        return self.decision(image_id, segment_id)

    def comment(
        self,
        image_id,
        segment_id: int,
        text: str,
        *,
        version: int | None = None,
        reviewer: str | None = None,
    ) -> Decision | None:
        """Set the segment's comment (the decision stays)."""
        segment_id = int(segment_id)

        def plan(db, ids, states):
            seg = self._existing(states, str(image_id), segment_id)
            return _Plan(
                main=segment_id,
                updates={segment_id: {"comment": str(text)}},
                detail={"comment": str(text), "category_id": seg.category_id},
                sets_action=False,
            )

        self._change(image_id, "comment", {segment_id: version}, reviewer, plan, pixels=False)
        return self.decision(image_id, segment_id)

    # -- undo ------------------------------------------------------------------------------------

    def history_size(self, reviewer: str | None = None) -> int:
        """How many of the reviewer's changes can be undone (``"*"``: everyone's)."""
        who = reviewer or self.reviewer
        with self._read() as db:
            if who == "*":
                row = db.execute("SELECT COUNT(*) FROM changes WHERE undone_at IS NULL").fetchone()
            else:
                row = db.execute(
                    "SELECT COUNT(*) FROM changes WHERE undone_at IS NULL AND reviewer = ?",
                    (who,),
                ).fetchone()
        return int(row[0])

    def undo(self, reviewer: str | None = None, image_id=None) -> UndoResult | None:
        """Revert the reviewer's last change (``"*"``: anyone's; in ``image_id`` if given): its
        pixels exactly and the segments' states before it. Refused with :class:`StaleSegment` when
        a later change touched one of its segments (undo that first). Returns None when nothing is
        left to undo. The undo is recorded with the store's reviewer."""
        whose = (reviewer or "").strip() or self.reviewer
        who = self.reviewer if whose == "*" else whose
        new_ids = new_version = None
        with self._write() as db:
            query = "SELECT * FROM changes WHERE undone_at IS NULL"
            args: list = []
            if whose != "*":
                query += " AND reviewer = ?"
                args.append(whose)
            if image_id is not None:
                query += " AND image_id = ?"
                args.append(str(image_id))
            row = db.execute(query + " ORDER BY seq DESC LIMIT 1", args).fetchone()
            if row is None:
                return None
            image = row["image_id"]
            before, after = json.loads(row["before"]), json.loads(row["after"])
            detail = json.loads(row["detail"])
            self._check_undoable(db, row, after, detail)
            if row["pixels"] is not None:
                ids, _ = self._labels(db, image)
                diff = PixelDiff.decode(row["pixels"])
                if not diff.holds(ids):
                    raise ReviewError(
                        f"cannot undo change {row['seq']} of image {image}: its pixels were "
                        "changed since by an edit that was not recorded; the store may be damaged"
                    )
                new_ids = np.array(ids)
                diff.apply(new_ids, backwards=True)
                new_version = self._bump_pixels(db, image, ids)
            now = now_iso()
            versions = {}
            for sid, seg_after in after["segments"].items():
                earlier = before["segments"].get(sid)
                seg = Segment(**(earlier if earlier is not None else seg_after))
                if earlier is None:  # a segment the change created: gone again
                    seg.removed, seg.area = True, 0
                seg.version = seg_after["version"] + 1
                seg.changed_by, seg.changed_at = who, now
                self._put_segment(db, image, seg)
                versions[int(sid)] = seg.version
            if after.get("missing") is not None:
                restored = dict(before.get("missing") or {"status": "", "segment_id": None})
                restored.update(
                    version=after["missing"]["version"] + 1, changed_by=who, changed_at=now
                )
                self._put_missing(
                    db, detail["source"], image, int(detail["pred_segment_id"]), restored
                )
            db.execute(
                "UPDATE changes SET undone_by = ?, undone_at = ? WHERE seq = ?",
                (who, now, row["seq"]),
            )
        if new_ids is not None:
            new_ids.flags.writeable = False
            LABELS.put((self._store_id, image), new_ids, new_version)
        return UndoResult(
            seq=int(row["seq"]),
            kind=row["kind"],
            image_id=image,
            segment_id=row["segment_id"],
            reviewer=who,
            versions=versions,
            message="undid "
            + describe_change(row["kind"], row["segment_id"], detail, self.category_name),
        )

    def _check_undoable(self, db, row, after: dict, detail: dict) -> None:
        """A change can be undone while no later change in force touched its segments (or its
        missing object): else undoing it would undo part of someone's later work."""
        mine = set(after["segments"])
        missing_key = (detail.get("source"), detail.get("pred_segment_id"))
        for later in db.execute(
            "SELECT * FROM changes WHERE image_id = ? AND seq > ? AND undone_at IS NULL"
            " ORDER BY seq",
            (row["image_id"], row["seq"]),
        ):
            theirs = json.loads(later["after"])
            later_detail = json.loads(later["detail"])
            shared = mine & set(theirs["segments"])
            same_missing = after.get("missing") is not None and missing_key == (
                later_detail.get("source"),
                later_detail.get("pred_segment_id"),
            )
            if shared or same_missing:
                what = f"segment {min(shared, key=int)}" if shared else "the missing object"
                raise StaleSegment(
                    f"Cannot undo {row['kind']} on image {row['image_id']}: {what} was changed "
                    f"by {later['reviewer'] or 'another reviewer'} at {later['at']} "
                    f"({later['kind']}) after it. Undo that change first.",
                    None,
                    image_id=row["image_id"],
                    segment_id=int(min(shared, key=int)) if shared else None,
                    changed_by=later["reviewer"],
                    changed_at=later["at"],
                    version=0,
                )

    # -- the ranking ----------------------------------------------------------------------------

    def ranked(self, source=None):
        """Every item to review as a DataFrame, most suspicious first: the scored items of
        ``source`` (GT segments and possible missing objects), then the GT segments of images it
        has not scored (score empty), in file order. See docs/review.md for the columns; text
        columns are "" when empty (never None), ``status`` "" means still open."""
        from .ranking import build_ranking

        key = None if source is None else _source_key(source)
        revision = self.revision()
        cache_key = (self._store_id, key)
        hit = RANKINGS.get(cache_key, revision)
        if hit is None:
            hit = build_ranking(self, key)
            RANKINGS.put(cache_key, hit, revision)
        return hit.copy()

    def ranking(self, source) -> list[dict]:
        """The ranking as ``pdl review score --out`` writes it: scored items only, each
        {image_id, file_name, kind, segment_id, category_id, model_category_id, bbox, score}."""
        from .ranking import ranking_entries

        return ranking_entries(self, self.ranked(source))

    def next_item(
        self,
        source=None,
        after: tuple | None = None,
        *,
        only_open: bool = True,
        kinds: Iterable[str] | None = None,
        categories: Iterable[int] | None = None,
        wrap: bool = True,
    ) -> dict | None:
        """The item after ``after`` = (image_id, kind, ref id) in the ranking (from the top when
        None) that passes the filters: still open (``only_open``), of these ``kinds`` and
        ``categories``. ``wrap``: continue from the top. None when there is none. The ref id is
        the GT segment id, or the predicted segment id of a missing object."""
        from .ranking import next_row

        return next_row(self.ranked(source), after, only_open, kinds, categories, wrap)

    # -- reports and export ---------------------------------------------------------------------

    def changes(self, include_undone: bool = False) -> list[dict]:
        """Every decision and edit, oldest first, as report rows (see :mod:`.report`)."""
        from .report import change_rows

        return change_rows(self, include_undone)

    def report(self, model_key=None):
        """The review report: every decision and edit (a DataFrame; "" for empty cells)."""
        from .report import change_table

        return change_table(self)

    def export(self, out_dir: str | os.PathLike, model_key=None, overwrite: bool = False):
        """Write the corrected data set to ``out_dir`` with the review report; see
        :func:`.export.export_corrected`. The source is never written to."""
        from .export import export_corrected

        return export_corrected(self, out_dir, overwrite=overwrite)

    def touched_images(self) -> list[str]:
        """Images whose labels or segments differ, or may differ, from the annotation file."""
        with self._read() as db:
            rows = db.execute(
                "SELECT image_id FROM segments UNION SELECT image_id FROM images"
                " WHERE pixel_version > 0"
            ).fetchall()
        return sorted({r[0] for r in rows}, key=lambda i: self.data.image_index(i))

    # -- the first schema's decisions -----------------------------------------------------------

    def _import_v1(self, db) -> None:
        for row in db.execute("SELECT * FROM v1_decisions ORDER BY updated_at").fetchall():
            image_id, sid = str(row["image_id"]), int(row["segment_id"])
            try:
                original = self._original_states(image_id).get(sid)
            except ReviewError:
                original = None
            if original is None:
                continue  # the annotation file no longer has it
            seg = Segment(**original.snapshot())
            action = row["action"] or ""
            if action == "relabel" and row["category_id"] is not None:
                seg.category_id = int(row["category_id"])
            elif action == "crowd":
                seg.iscrowd = 1
            elif action in EXCLUDING:
                seg.excluded = action
            at = iso_from_epoch(row["updated_at"]) if row["updated_at"] else ""
            seg.action, seg.comment = action, row["comment"] or ""
            seg.decided_at = seg.changed_at = at
            seg.version = 1
            self._put_segment(db, image_id, seg)
            detail = {"category_id": original.category_id, "migrated": True}
            if action == "relabel":
                detail["new_category_id"] = seg.category_id
            if seg.comment:
                detail["comment"] = seg.comment
            db.execute(
                "INSERT INTO changes (image_id, segment_id, kind, reviewer, at, detail, before,"
                " after) VALUES (?, ?, ?, '', ?, ?, ?, ?)",
                (
                    image_id,
                    sid,
                    action or "comment",
                    at,
                    json.dumps(detail),
                    json.dumps({"segments": {str(sid): original.snapshot()}, "missing": None}),
                    json.dumps({"segments": {str(sid): seg.snapshot()}, "missing": None}),
                ),
            )
        db.execute("DROP TABLE v1_decisions")
