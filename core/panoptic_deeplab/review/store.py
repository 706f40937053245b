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
import getpass
import hashlib
import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..safe_files import disk_full_error, is_disk_full, pid_alive
from ..sqlite_store import SqliteStore
from . import cache, edits
from . import db as schema
from .dataset import ReviewDataset
from .errors import DecisionConflict, ReviewError, StaleSegment
from .masks import PixelDiff, areas_and_boxes, line_sides
from .scoring import GT_SEGMENT, Prediction, score_image
from .sources import CallableSource, file_key, load_prediction, save_prediction

ACTIONS = ("accept", "reject", "relabel", "crowd", "ignore")
EDIT_KINDS = ("take_model", "add_missed", "add", "paint", "region", "merge", "split")
# (the split method is ``split_segment``: ``store.split`` is the name of the split under review)
EXCLUDING = ("reject", "ignore")  # decisions whose segment is exported as VOID
MAX_SEGMENT_ID = 256**3 - 1  # ids are stored as RGB in the PNGs
REVIEWER_ENV = "PDL_REVIEWER"

# Ranking statuses (the "status" column): "" is still open.
STATUS_OF_ACTION = {
    "accept": "accepted",
    "reject": "rejected",
    "ignore": "ignored",
}


def default_reviewer() -> str:
    """``$PDL_REVIEWER``, else the login name."""
    name = os.environ.get(REVIEWER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


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


@dataclass
class Segment:
    """The current state of one segment of an image under review."""

    id: int
    category_id: int
    iscrowd: int = 0
    area: int = 0
    bbox: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    origin: str = "gt"  # gt | model (a missed object added) | split | drawn
    removed: bool = False  # edited down to nothing, or merged into another
    action: str = ""  # the last decision or edit on it; "" while undecided
    excluded: str = ""  # "reject" or "ignore": exported as VOID
    comment: str = ""
    decided_by: str = ""
    decided_at: str = ""  # ISO 8601
    version: int = 0  # +1 with every change; a caller passes back the one it showed
    changed_by: str = ""
    changed_at: str = ""

    def snapshot(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row) -> Segment:
        data = dict(row)
        return cls(
            id=int(data["segment_id"]),
            category_id=int(data["category_id"]),
            iscrowd=int(data["iscrowd"]),
            area=int(data["area"]),
            bbox=json.loads(data["bbox"]),
            origin=data["origin"],
            removed=bool(data["removed"]),
            action=data["action"],
            excluded=data["excluded"],
            comment=data["comment"],
            decided_by=data["decided_by"],
            decided_at=data["decided_at"],
            version=int(data["version"]),
            changed_by=data["changed_by"],
            changed_at=data["changed_at"],
        )

    @property
    def exported(self) -> bool:
        return not self.removed and not self.excluded


_SEGMENT_FIELDS = [f.name for f in fields(Segment)]


@dataclass
class Decision:
    """A segment's current decision, as the Review page shows it (``updated_at``: ISO 8601)."""

    image_id: str
    segment_id: int
    action: str | None
    category_id: int | None  # the new class when it differs from the annotation's
    comment: str
    updated_at: str
    reviewer: str = ""
    version: int = 0


@dataclass
class EditResult:
    """What one decision or edit did. ``taken_from``: {segment id: pixels it lost to this one};
    ``given_to``: {segment id (0 = VOID): pixels this one lost to it}; ``versions``: the new version
    of every segment it touched (pass them with the next change)."""

    seq: int
    image_id: str
    kind: str
    segment_id: int | None
    pixels_added: int = 0
    pixels_removed: int = 0
    taken_from: dict[int, int] = field(default_factory=dict)
    given_to: dict[int, int] = field(default_factory=dict)
    new_segments: list[int] = field(default_factory=list)
    removed_segments: list[int] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)
    message: str = ""


@dataclass
class UndoResult:
    """The change an undo reverted (the page moves back to ``image_id`` / ``segment_id``)."""

    seq: int
    kind: str
    image_id: str
    segment_id: int | None
    reviewer: str
    versions: dict[int, int]
    message: str

    @property
    def action(self) -> str:  # what was undone, by its kind
        return self.kind


@dataclass
class ScoringProgress:
    """How far a source's scoring is: ``scored`` of ``total`` images; ``state`` is "" (never
    started), running, finished, failed or stopped; ``running`` is checked against the process."""

    source: str
    name: str
    kind: str
    scored: int
    total: int
    state: str
    message: str
    started_at: str
    updated_at: str
    running: bool

    @property
    def fraction(self) -> float:
        return self.scored / self.total if self.total else 0.0


@dataclass
class ImageState:
    """An image's current labels: ``ids`` (HxW int32, read only; 0 = VOID) and its ``segments``
    (removed ones included, marked), at ``pixel_version``."""

    image_id: str
    ids: np.ndarray
    segments: dict[int, Segment]
    pixel_version: int

    def active(self) -> dict[int, Segment]:
        return {k: s for k, s in self.segments.items() if not s.removed}


@dataclass
class _Plan:
    """What a change will write (built inside the write transaction)."""

    main: int | None
    new_ids: np.ndarray | None = None
    updates: dict[int, dict] = field(default_factory=dict)
    created: dict[int, Segment] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    sets_action: bool = True
    missing: tuple | None = None  # (source, pred segment id, row after)


def _source_key(source) -> str:
    return source if isinstance(source, str) else source.key


class ReviewStore(SqliteStore):
    """The review of one split of a COCO-panoptic data set; see the module docstring.

    ``workdir``: the store's folder (:func:`default_review_dir` gives the app's); ``reviewer``: the
    name stored with every change (default :func:`default_reviewer`); ``say``: where notes go (a
    migration's backup), default stderr.
    """

    def __init__(
        self,
        dataset_root: str | os.PathLike,
        split: str,
        workdir: str | os.PathLike,
        reviewer: str | None = None,
        say: Callable[[str], None] | None = None,
    ):
        self.data = ReviewDataset(dataset_root, split)
        self.root, self.split, self.json_path = self.data.root, split, self.data.json_path
        self.workdir = Path(workdir).expanduser()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "review.sqlite"
        self.reviewer = (reviewer or "").strip() or default_reviewer()
        import sys

        self.notes = schema.prepare(
            self.db_path, self._connect, say or (lambda t: print(t, file=sys.stderr))
        )
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
    ) -> ReviewStore:
        """The store the app uses for this data set and split (under ``workdir_root``, by default
        the app's work directory)."""
        return cls(
            dataset_root, split, default_review_dir(dataset_root, split, workdir_root), reviewer
        )

    # -- SQLite --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self):
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _write(self, count: bool = True):
        """One write transaction, taken at once (BEGIN IMMEDIATE): two reviewers' changes are
        serialised, and the versions checked inside it cannot change before the write."""
        db = self._connect()
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
        hit = cache.LABELS.get(key, version)
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
        cache.LABELS.put(key, ids, version)
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
            cache.LABELS.put((self._store_id, image_id), new_ids, new_version)
        return result

    def _commit(self, db, image_id, kind, reviewer, states, ids, todo: _Plan):
        now = schema.now_iso()
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

    # -- edits ----------------------------------------------------------------------------------

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
                new_ids=edits.paint(ids, segment_id, mask, mode),
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
            fill = edits.model_fill(ids, pred.panoptic, pred.segments, live, exclude=segment_id)
            new_ids = edits.take_model(ids, segment_id, pred.panoptic == pid, fill)
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
                        new_ids=edits.paint(ids, sid, mask, "add"),
                        detail={"category_id": cat, "joined": sid},
                    )
        new_id = self._fresh_ids(db, image_id, ids, states, 1)[0]
        created = Segment(id=new_id, category_id=cat, iscrowd=int(bool(iscrowd and thing)))
        created.origin = origin
        return _Plan(
            main=new_id,
            new_ids=edits.add_segment(ids, new_id, mask),
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
                new_ids=edits.merge(ids, segment_id, other_id),
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
                parts = edits.model_parts(
                    ids, segment_id, pred.panoptic, pred.segments, seg.category_id
                )
                how = "model"
            n = len(np.unique(parts[ids == segment_id]))
            fresh = self._fresh_ids(db, str(image_id), ids, states, max(n - 1, 1))
            new_ids, given = edits.split(ids, segment_id, parts, fresh)
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
            now = schema.now_iso()
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
            cache.LABELS.put((self._store_id, image), new_ids, new_version)
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

    # -- scoring --------------------------------------------------------------------------------

    def _source_folder(self, key: str) -> Path:
        return self.workdir / "predictions" / hashlib.sha1(key.encode()).hexdigest()[:12]

    def register_source(self, source) -> None:
        """Record a source (its name, kind and folder of stored predictions)."""
        folder = self._source_folder(source.key)
        with self._write(count=False) as db:
            db.execute(
                "INSERT INTO sources (key, kind, name, path, folder, total)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET name = excluded.name, total = excluded.total",
                (
                    source.key,
                    source.kind,
                    source.name,
                    getattr(source, "path", ""),
                    str(folder.relative_to(self.workdir)),
                    len(self.image_ids()),
                ),
            )

    def scored_images(self, source) -> set[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT image_id FROM scored WHERE source = ?", (_source_key(source),)
            ).fetchall()
        return {r[0] for r in rows}

    def score(
        self,
        source,
        image_ids: Iterable | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Score the images ``source`` has not scored yet (all of the split by default): run it once
        per image, keep its prediction, and rank the image's GT segments and possible missing
        objects against the current labels. Saved image by image, so an interrupted run resumes
        where it stopped. ``progress(done, to_do)`` after each image. Returns how many were
        scored."""
        self.register_source(source)
        folder = self._source_folder(source.key)
        folder.mkdir(parents=True, exist_ok=True)
        done = self.scored_images(source)
        wanted = [str(i) for i in (image_ids if image_ids is not None else self.image_ids())]
        todo = [i for i in wanted if i not in done]
        self._source_state(source.key, "running", pid=os.getpid(), started=True)
        try:
            for n, image_id in enumerate(todo, start=1):
                self._score_one(source, folder, image_id)
                if progress:
                    progress(n, len(todo))
        except (KeyboardInterrupt, SystemExit):
            self._source_state(source.key, "stopped", message="stopped before the end")
            raise
        except Exception as err:
            self._source_state(source.key, "failed", message=str(err))
            raise
        self._source_state(source.key, "finished")
        return len(todo)

    def _score_one(self, source, folder: Path, image_id: str) -> None:
        image = self.image(image_id) if source.needs_image else None
        pred = source.predict(image_id, image)
        state = self.image_state(image_id)
        segments = [
            {"id": s.id, "category_id": s.category_id, "iscrowd": s.iscrowd}
            for s in state.active().values()
        ]
        items = score_image(image_id, state.ids, segments, pred, self.categories)
        save_prediction(folder / f"{file_key(image_id)}.npz", pred)
        index = self.data.image_index(image_id)
        with self._write() as db:
            db.execute(
                "DELETE FROM items WHERE source = ? AND image_id = ?", (source.key, image_id)
            )
            db.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?)",
                [
                    (
                        source.key,
                        image_id,
                        index,
                        it.kind,
                        it.segment_id if it.kind == GT_SEGMENT else it.pred_segment_id,
                        it.segment_id,
                        it.pred_segment_id,
                        it.category_id,
                        it.model_category_id,
                        it.suggested_category_id,
                        *it.bbox,
                        it.area,
                        it.iscrowd,
                        float(it.score),
                        it.disagreement,
                        it.best_iou,
                        it.confidence,
                    )
                    for it in items
                ],
            )
            db.execute("INSERT OR REPLACE INTO scored VALUES (?, ?)", (source.key, image_id))
            db.execute(
                "UPDATE sources SET updated_at = ? WHERE key = ?", (schema.now_iso(), source.key)
            )

    def _source_state(
        self, key: str, state: str, *, pid: int | None = None, message: str = "", started=False
    ) -> None:
        now = schema.now_iso()
        with self._write(count=False) as db:
            db.execute(
                "UPDATE sources SET state = ?, message = ?, updated_at = ?,"
                " pid = COALESCE(?, pid), host = ?"
                + (", started_at = ?" if started else "")
                + " WHERE key = ?",
                (state, message, now, pid, socket.gethostname())
                + ((now,) if started else ())
                + (key,),
            )

    def score_images(
        self,
        model_key: str,
        predict: Callable[[np.ndarray, str], Prediction],
        image_ids: Iterable | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """:meth:`score` with ``predict(image, image_id)`` under the name ``model_key``."""
        return self.score(CallableSource(model_key, predict), image_ids, progress)

    def scoring_progress(self, source) -> ScoringProgress:
        """How far the source's scoring is (what the app shows while a job scores)."""
        key = _source_key(source)
        total = len(self.image_ids())
        with self._read() as db:
            row = db.execute("SELECT * FROM sources WHERE key = ?", (key,)).fetchone()
            scored = db.execute("SELECT COUNT(*) FROM scored WHERE source = ?", (key,)).fetchone()
        if row is None:
            return ScoringProgress(key, key, "", int(scored[0]), total, "", "", "", "", False)
        running = row["state"] == "running"
        if running and row["host"] == socket.gethostname() and row["pid"]:
            running = pid_alive(int(row["pid"]))
        state = row["state"] if running or row["state"] != "running" else "stopped"
        message = row["message"] or (
            "" if state == row["state"] else "the scoring process is gone (killed or stopped)"
        )
        return ScoringProgress(
            source=key,
            name=row["name"],
            kind=row["kind"],
            scored=int(scored[0]),
            total=total,
            state=state,
            message=message,
            started_at=row["started_at"],
            updated_at=row["updated_at"],
            running=running,
        )

    def sources(self) -> list[ScoringProgress]:
        """Every source scored (or being scored) in this store."""
        with self._read() as db:
            keys = [r[0] for r in db.execute("SELECT key FROM sources ORDER BY rowid")]
        return [self.scoring_progress(k) for k in keys]

    def _stored_prediction(self, source, image_id) -> Prediction:
        pred = self.prediction(source, image_id)
        if pred is None:
            raise ReviewError(
                f"image {image_id} is not scored with {_source_key(source)}; score the split "
                "first (pdl review score)"
            )
        if pred.panoptic is None:
            raise ReviewError("this prediction has no panoptic map (no segments to take)")
        return pred

    def prediction(self, source, image_id) -> Prediction | None:
        """The stored prediction of an image (None when the source has not scored it). The network
        is never run here."""
        key = _source_key(source)
        path = self._source_folder(key) / f"{file_key(str(image_id))}.npz"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        hit = cache.PREDICTIONS.get(str(path), stamp)
        if hit is None:
            hit = load_prediction(path)
            cache.PREDICTIONS.put(str(path), hit, stamp)
        return hit

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
        hit = cache.RANKINGS.get(cache_key, revision)
        if hit is None:
            hit = build_ranking(self, key)
            cache.RANKINGS.put(cache_key, hit, revision)
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
            at = schema.iso_from_epoch(row["updated_at"]) if row["updated_at"] else ""
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


@dataclass
class _MissingView:
    """A missing object's state, shaped like a Segment for the stale-change message."""

    row: dict

    @property
    def version(self) -> int:
        return int(self.row.get("version", 0))

    @property
    def changed_by(self) -> str:
        return self.row.get("changed_by", "") or ""

    @property
    def changed_at(self) -> str:
        return self.row.get("changed_at", "") or ""

    @property
    def action(self) -> str:
        return self.row.get("status", "") or ""


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


def describe_change(kind: str, segment_id, detail: dict, name_of) -> str:
    """One line for people: what a change did."""
    seg = f"segment {segment_id}" if segment_id is not None else "the possible missing object"
    text = {
        "accept": f"accepted {seg}",
        "reject": f"rejected {seg} (exported as VOID)",
        "ignore": f"ignored {seg} (exported as VOID)",
        "crowd": f"marked {seg} as a crowd region",
        "comment": f"commented on {seg}",
        "take_model": f"{seg} now has the model's mask",
        "add_missed": f"added the missed object as {seg}",
        "add": f"added {seg}",
        "paint": f"painted {seg} ({detail.get('tool', 'brush')}, {detail.get('mode', 'add')})",
        "region": f"smart region on {seg} ({detail.get('mode', 'add')})",
        "merge": f"merged segment {detail.get('other')} into {seg}",
        "split": f"split {seg} along the "
        + ("drawn line" if detail.get("along") == "line" else "model's instances"),
        "dismiss": "dismissed the possible missing object",
        "relabel": f"relabelled {seg}",
    }.get(kind, f"{kind} on {seg}")
    if "new_category_id" in detail:
        text += f": {name_of(detail.get('category_id'))} → {name_of(detail['new_category_id'])}"
    parts = []
    if detail.get("pixels_added"):
        parts.append(f"+{detail['pixels_added']} px")
    if detail.get("pixels_removed"):
        parts.append(f"-{detail['pixels_removed']} px")
    taken = detail.get("taken_from") or {}
    if taken:
        parts.append(
            "taken from " + ", ".join(f"segment {k} ({v} px)" for k, v in sorted(taken.items()))
        )
    if detail.get("new_segments"):
        parts.append("new " + ", ".join(f"segment {k}" for k in detail["new_segments"]))
    if detail.get("removed_segments"):
        parts.append("removed " + ", ".join(f"segment {k}" for k in detail["removed_segments"]))
    return text + (f" ({'; '.join(parts)})" if parts else "")
