"""Annotation review, the store: a reviewer's decision on each ground-truth segment of one split of a
COCO-panoptic data set, and the model's scores of its segments (:mod:`.scoring`), kept in SQLite.

Decisions (per segment, one current action plus an optional comment):
  accept    the annotation is right; exported unchanged
  reject    the annotation is wrong; exported as VOID (pixels id 0, segment dropped) and listed in the
            report for re-annotation
  relabel   change the category (merged into the image's segment of that category when it is stuff)
  crowd     mark a thing segment as a crowd region (iscrowd = 1)
  ignore    exclude the segment: exported as VOID
Every change is kept in a history table, so ``undo()`` reverts them one at a time, across restarts.

The review database is ``<workdir>/review.sqlite``; the source data set is only ever read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..datasets.coco_panoptic import check_file_name, find_image, read_segment_ids
from ..datasets.json_file import load_json
from ..datasets.reader_base import read_rgb
from ..errors import DatasetError
from ..sqlite_store import SqliteStore
from .errors import DecisionConflict, ReviewError
from .export import ExportResult, export_corrected
from .scoring import Prediction, SegmentScore, category_mapping_inverse, score_segments

ACTIONS = ("accept", "reject", "relabel", "crowd", "ignore")


@dataclass
class Decision:
    image_id: str
    segment_id: int
    action: str | None
    category_id: int | None
    comment: str
    updated_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    image_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
    action TEXT, category_id INTEGER, comment TEXT NOT NULL DEFAULT '', updated_at REAL NOT NULL,
    PRIMARY KEY (image_id, segment_id)
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
    before TEXT, after TEXT, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    model_key TEXT NOT NULL, image_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
    category_id INTEGER NOT NULL, iscrowd INTEGER NOT NULL, area INTEGER NOT NULL,
    disagreement REAL NOT NULL, suggested_category_id INTEGER, best_iou REAL,
    PRIMARY KEY (model_key, image_id, segment_id)
);
"""


def default_review_dir(
    dataset_root: str | os.PathLike, split: str, workdir_root: str | os.PathLike
) -> Path:
    """``<workdir_root>/review/<data set name>-<hash of its path>/<split>``: one per data set and split."""
    root = Path(dataset_root).expanduser().resolve()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return Path(workdir_root).expanduser() / "review" / f"{root.name}-{digest}" / split


class ReviewStore(SqliteStore):
    """Review decisions for one split of a COCO-panoptic data set.

    Layout read: ``ROOT/annotations/panoptic_<split>.json``, ``ROOT/annotations/panoptic_<split>/*.png``
    and ``ROOT/<split>/<image file>``.
    """

    def __init__(self, dataset_root: str | os.PathLike, split: str, workdir: str | os.PathLike):
        self.root = Path(dataset_root).expanduser().resolve()
        self.split = split
        self.json_path = self.root / "annotations" / f"panoptic_{split}.json"
        if not self.json_path.is_file():
            raise DatasetError(
                f"{self.json_path}: annotation file not found. Expected a COCO-panoptic data set with "
                f"annotations/panoptic_{split}.json (give the data set's root folder and a split it has)."
            )
        self.coco = load_json(self.json_path)
        for key in ("images", "annotations", "categories"):
            if key not in self.coco:
                raise DatasetError(
                    f"{self.json_path}: missing the '{key}' list of a COCO-panoptic file"
                )
        self.categories = {int(c["id"]): c for c in self.coco["categories"]}
        self._images = {str(im["id"]): im for im in self.coco["images"]}
        self._annotations = {str(a["image_id"]): a for a in self.coco["annotations"]}
        for image_id, ann in self._annotations.items():  # the export writes files under these names
            check_file_name(ann["file_name"], self.json_path, f"image id {image_id}")
            check_file_name(
                self._images.get(image_id, {}).get("file_name") or "",
                self.json_path,
                f"image id {image_id}",
            )
        self.workdir = Path(workdir).expanduser()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.workdir / "review.sqlite"
        with self._connect() as db:
            db.executescript(_SCHEMA)

    # -- the data set ------------------------------------------------------------------------

    def image_ids(self) -> list[str]:
        return [str(a["image_id"]) for a in self.coco["annotations"]]

    def annotation(self, image_id) -> dict:
        try:
            return self._annotations[str(image_id)]
        except KeyError:
            raise ReviewError(f"image {image_id} has no annotation in {self.json_path}") from None

    def segments(self, image_id) -> list[dict]:
        return self.annotation(image_id)["segments_info"]

    def png_path(self, image_id) -> Path:
        return self.json_path.with_suffix("") / self.annotation(image_id)["file_name"]

    def image_path(self, image_id) -> Path:
        info = self._images.get(str(image_id), {})
        return find_image(
            self.root / self.split, info.get("file_name"), self.annotation(image_id)["file_name"]
        )

    def gt_ids(self, image_id) -> np.ndarray:
        """The annotation PNG of an image as an HxW segment-id map."""
        return read_segment_ids(self.png_path(image_id))

    def image(self, image_id) -> np.ndarray:
        """The image as HxWx3 uint8 RGB."""
        return read_rgb(self.image_path(image_id))

    @property
    def spec(self):
        """The data set's class table (names, colours, things) from its categories."""
        from ..datasets.coco_panoptic import dataset_spec_from_categories

        return dataset_spec_from_categories(self.coco["categories"], name=self.root.name)

    def gt_panoptic(self, image_id, spec=None) -> np.ndarray:
        """The annotation as a ``train_id * label_divisor + k`` map of ``spec`` (this data set's by
        default), ``k`` numbering segments from 1, for drawing; void and unknown classes are void."""
        spec = spec or self.spec
        ids = self.gt_ids(image_id)
        train_of = category_mapping_inverse(spec)
        out = np.full(ids.shape, spec.ignore_label * spec.label_divisor, np.int64)
        for k, seg in enumerate(self.segments(image_id), start=1):
            t = train_of.get(int(seg["category_id"]))
            if t is not None:
                out[ids == seg["id"]] = t * spec.label_divisor + (k if spec.is_thing(t) else 0)
        return out

    def category_name(self, category_id: int | None) -> str:
        if category_id is None:
            return ""
        cat = self.categories.get(int(category_id))
        return cat["name"] if cat else f"#{category_id}"

    def is_thing(self, category_id: int) -> bool:
        return bool(self.categories.get(int(category_id), {}).get("isthing", 0))

    # -- scores ------------------------------------------------------------------------------

    def save_scores(self, model_key: str, scores: Iterable[SegmentScore]) -> None:
        rows = [
            (
                model_key,
                s.image_id,
                s.segment_id,
                s.category_id,
                s.iscrowd,
                s.area,
                s.disagreement,
                s.suggested_category_id,
                s.best_iou,
            )
            for s in scores
        ]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def scored_images(self, model_key: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT DISTINCT image_id FROM scores WHERE model_key=?", (model_key,)
            ).fetchall()
        return {r["image_id"] for r in rows}

    def score_images(
        self,
        model_key: str,
        predict: Callable[[np.ndarray, str], Prediction],
        image_ids: Iterable[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Score the images not yet scored for ``model_key`` with ``predict(image, image_id)``.
        Returns how many images were scored. Scores are saved image by image, so an interrupted run
        resumes where it stopped."""
        done = self.scored_images(model_key)
        todo = [i for i in (image_ids or self.image_ids()) if str(i) not in done]
        for n, image_id in enumerate(todo):
            pred = predict(self.image(image_id), image_id)
            self.save_scores(
                model_key,
                score_segments(image_id, self.gt_ids(image_id), self.segments(image_id), pred),
            )
            if progress:
                progress(n + 1, len(todo))
        return len(todo)

    def ranked(self, model_key: str | None = None):
        """Every GT segment with its score (if scored for ``model_key``) and current decision, most
        suspicious first, as a DataFrame."""
        import pandas as pd

        scores = {}
        if model_key is not None:
            with self._connect() as db:
                for r in db.execute("SELECT * FROM scores WHERE model_key=?", (model_key,)):
                    scores[(r["image_id"], r["segment_id"])] = dict(r)
        decisions = {(d.image_id, d.segment_id): d for d in self.decisions()}
        rows = []
        for ann in self.coco["annotations"]:
            image_id = str(ann["image_id"])
            for seg in ann["segments_info"]:
                key = (image_id, int(seg["id"]))
                s = scores.get(key, {})
                d = decisions.get(key)
                rows.append(
                    {
                        "image_id": image_id,
                        "file_name": self._images.get(image_id, {}).get(
                            "file_name", ann["file_name"]
                        ),
                        "segment_id": int(seg["id"]),
                        "category_id": int(seg["category_id"]),
                        "category": self.category_name(seg["category_id"]),
                        "iscrowd": int(seg.get("iscrowd", 0)),
                        "area": int(s["area"]) if s else int(seg.get("area", 0)),
                        "disagreement": s.get("disagreement"),
                        "suggested_category_id": s.get("suggested_category_id"),
                        "suggested": self.category_name(s.get("suggested_category_id")),
                        "best_iou": s.get("best_iou"),
                        "action": d.action if d else None,
                        "new_category_id": d.category_id if d else None,
                        "new_category": self.category_name(d.category_id) if d else "",
                        "comment": d.comment if d else "",
                        "decided_at": d.updated_at if d else None,
                    }
                )
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        df["_iou"] = df["best_iou"].fillna(1.0).astype(float)
        df["_dis"] = df["disagreement"].fillna(-1.0).astype(float)
        df = df.sort_values(
            ["_dis", "_iou", "image_id", "segment_id"], ascending=[False, True, True, True]
        )
        return df.drop(columns=["_iou", "_dis"]).reset_index(drop=True)

    # -- decisions ---------------------------------------------------------------------------

    def decision(self, image_id, segment_id: int) -> Decision | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM decisions WHERE image_id=? AND segment_id=?",
                (str(image_id), int(segment_id)),
            ).fetchone()
        return Decision(**dict(row)) if row else None

    def decisions(self) -> list[Decision]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM decisions ORDER BY image_id, segment_id").fetchall()
        return [Decision(**dict(r)) for r in rows]

    def decide(
        self,
        image_id,
        segment_id: int,
        action: str,
        category_id: int | None = None,
        replace: bool = True,
    ) -> Decision:
        """Record ``action`` for a segment, keeping its comment. An earlier, different decision is
        replaced, or with ``replace=False`` kept: a DecisionConflict names it (the app asks first)."""
        seg = self._segment(image_id, segment_id)
        if action not in ACTIONS:
            raise ReviewError(f"unknown action '{action}'; use one of {', '.join(ACTIONS)}")
        if action == "relabel":
            if category_id is None or int(category_id) not in self.categories:
                known = ", ".join(f"{k} {v['name']}" for k, v in self.categories.items())
                raise ReviewError(
                    f"relabel needs a category of this data set; got {category_id!r} (known: {known})"
                )
            category_id = int(category_id)
        else:
            category_id = None
        if action == "crowd" and not self.is_thing(seg["category_id"]):
            raise ReviewError(
                f"segment {segment_id} is '{self.category_name(seg['category_id'])}', a stuff class; only "
                "thing segments can be crowd regions (use 'ignore' to exclude it)"
            )
        old = self.decision(image_id, segment_id)
        if (
            not replace
            and old is not None
            and old.action
            and (old.action, old.category_id) != (action, category_id)
        ):
            earlier = old.action + (
                f" → {self.category_name(old.category_id)}" if old.category_id is not None else ""
            )
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(old.updated_at))
            raise DecisionConflict(
                f"Segment {segment_id} of image {image_id} was already decided: '{earlier}' "
                f"(saved {when}).",
                old,
            )
        comment = old.comment if old else ""
        return self._write(image_id, segment_id, action, category_id, comment, old)

    def comment(self, image_id, segment_id: int, text: str) -> Decision:
        self._segment(image_id, segment_id)
        old = self.decision(image_id, segment_id)
        return self._write(
            image_id,
            segment_id,
            old.action if old else None,
            old.category_id if old else None,
            text.strip(),
            old,
        )

    def clear(self, image_id, segment_id: int) -> None:
        """Forget a segment's decision and comment (undoable)."""
        old = self.decision(image_id, segment_id)
        if old is not None:
            self._write(image_id, segment_id, None, None, "", old, delete=True)

    def undo(self) -> Decision | None:
        """Revert the most recent change; returns the decision as it was restored (None if there was
        nothing to undo or the segment had no decision before)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM history ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM history WHERE seq=?", (row["seq"],))
            if row["before"] is None:
                db.execute(
                    "DELETE FROM decisions WHERE image_id=? AND segment_id=?",
                    (row["image_id"], row["segment_id"]),
                )
                return None
            before = json.loads(row["before"])
            db.execute(
                "INSERT OR REPLACE INTO decisions VALUES (:image_id, :segment_id, :action, :category_id,"
                " :comment, :updated_at)",
                before,
            )
            return Decision(**before)

    def history_size(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM history").fetchone()[0]

    def _segment(self, image_id, segment_id: int) -> dict:
        for seg in self.segments(image_id):
            if int(seg["id"]) == int(segment_id):
                return seg
        raise ReviewError(f"image {image_id} has no segment {segment_id} in {self.json_path}")

    def _write(
        self, image_id, segment_id, action, category_id, comment, old: Decision | None, delete=False
    ):
        new = Decision(str(image_id), int(segment_id), action, category_id, comment, time.time())
        with self._connect() as db:
            db.execute(
                "INSERT INTO history (image_id, segment_id, before, after, at) VALUES (?, ?, ?, ?, ?)",
                (
                    new.image_id,
                    new.segment_id,
                    json.dumps(asdict(old)) if old else None,
                    None if delete else json.dumps(asdict(new)),
                    new.updated_at,
                ),
            )
            if delete:
                db.execute(
                    "DELETE FROM decisions WHERE image_id=? AND segment_id=?",
                    (new.image_id, new.segment_id),
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                    (new.image_id, new.segment_id, action, category_id, comment, new.updated_at),
                )
        return new

    # -- export ------------------------------------------------------------------------------

    def report(self, model_key: str | None = None):
        """The review report: every segment with its score and decision (a DataFrame)."""
        return self.ranked(model_key)

    def export(
        self, out_dir: str | os.PathLike, model_key: str | None = None, overwrite: bool = False
    ) -> ExportResult:
        """Write the corrected data set to ``out_dir`` plus ``out_dir/review_report.csv``; see
        :func:`.export.export_corrected`. The source is never written to."""
        return export_corrected(self, out_dir, model_key, overwrite)
