"""Annotation review, scoring into a store (a mixin of ``ReviewStore``): run a source once per
image, keep its prediction, rank the image's items; report the progress; read stored
predictions back (the network never runs after scoring)."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..safe_files import RunLock, pid_alive
from .cache import PREDICTIONS
from .db import now_iso
from .errors import ReviewError
from .records import ScoringProgress, _source_key
from .scoring import GT_SEGMENT, Prediction, score_image
from .sources import CallableSource, file_key, load_prediction, save_prediction


class Scoring:
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
        scored. One scoring per source and store at a time (a second is refused, naming the
        first)."""
        folder = self._source_folder(source.key)
        lock = f".score-{folder.name}.lock"
        with RunLock(self.workdir, f"scoring with {source.name}", name=lock):
            self.register_source(source)
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
            db.execute("UPDATE sources SET updated_at = ? WHERE key = ?", (now_iso(), source.key))

    def _source_state(
        self, key: str, state: str, *, pid: int | None = None, message: str = "", started=False
    ) -> None:
        now = now_iso()
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
        hit = PREDICTIONS.get(str(path), stamp)
        if hit is None:
            hit = load_prediction(path)
            PREDICTIONS.put(str(path), hit, stamp)
        return hit
