"""Annotation review, the SQLite schema of ``review.sqlite`` and its migration from the first one.

Tables (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`):
  segments  the current state of every segment a reviewer touched (untouched ones are as in the
            annotation file): class, crowd, area, box, removed, the current decision and who made
            it, a comment, and a version that every change increments
  images    per image: the version of its label map and the next fresh segment id
  changes   one record per decision or edit: who, when (ISO 8601), a summary (``detail``), the
            touched segments before and after, and the pixels it changed (a compressed diff);
            undone ones are kept, marked with who undid them and when
  sources   the models and prediction sets scored, with their scoring progress
  scored    which images each source has scored
  items     the ranking: one row per GT segment and per possible missing object, with its score
  missing   what was decided on a possible missing object (added as a segment, or dismissed)
  meta      the data set and split this store belongs to, and a revision counter

A store written by the first schema (decisions, history, scores) is copied aside before it is
migrated (``review.sqlite.v1-backup-<time>``): its decisions are kept as ``v1_decisions``, which the
store turns into segment states and change records; its scores are dropped (scoring again keeps
the predictions the new schema needs).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

from .errors import ReviewError

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    image_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
    category_id INTEGER NOT NULL, iscrowd INTEGER NOT NULL DEFAULT 0,
    area INTEGER NOT NULL, bbox TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'gt', removed INTEGER NOT NULL DEFAULT 0,
    action TEXT NOT NULL DEFAULT '', excluded TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '', decided_at TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL DEFAULT '', changed_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (image_id, segment_id)
);
CREATE TABLE IF NOT EXISTS images (
    image_id TEXT PRIMARY KEY,
    pixel_version INTEGER NOT NULL DEFAULT 0,
    next_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL, segment_id INTEGER, kind TEXT NOT NULL,
    reviewer TEXT NOT NULL, at TEXT NOT NULL,
    detail TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL, pixels BLOB,
    undone_by TEXT, undone_at TEXT
);
CREATE INDEX IF NOT EXISTS changes_of_image ON changes (image_id, seq);
CREATE INDEX IF NOT EXISTS changes_of_reviewer ON changes (reviewer, seq);
CREATE TABLE IF NOT EXISTS sources (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '', folder TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT '',
    pid INTEGER, host TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS scored (
    source TEXT NOT NULL, image_id TEXT NOT NULL, PRIMARY KEY (source, image_id)
);
CREATE TABLE IF NOT EXISTS items (
    source TEXT NOT NULL, image_id TEXT NOT NULL, image_index INTEGER NOT NULL,
    kind TEXT NOT NULL, ref_id INTEGER NOT NULL,
    segment_id INTEGER, pred_segment_id INTEGER,
    category_id INTEGER NOT NULL, model_category_id INTEGER, suggested_category_id INTEGER,
    x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
    area INTEGER NOT NULL, iscrowd INTEGER NOT NULL DEFAULT 0,
    score REAL NOT NULL, disagreement REAL, best_iou REAL, confidence REAL,
    PRIMARY KEY (source, image_id, kind, ref_id)
);
CREATE INDEX IF NOT EXISTS items_ranked ON items (source, score DESC, image_index);
CREATE TABLE IF NOT EXISTS missing (
    source TEXT NOT NULL, image_id TEXT NOT NULL, pred_segment_id INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT '', segment_id INTEGER,
    version INTEGER NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL DEFAULT '', changed_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source, image_id, pred_segment_id)
);
"""

# The first schema's tables (before reviewers, edits and stored predictions).
_V1_TABLES = {"decisions", "history", "scores"}


def now_iso() -> str:
    """The local time with its UTC offset, to the second (ISO 8601)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def iso_from_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds)).astimezone().isoformat(timespec="seconds")


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def prepare(db_path: Path, connect, say=None) -> list[str]:
    """Create the schema, or migrate a first-schema store after backing it up. Returns what was
    done (for the caller to show), e.g. the backup's path."""
    db = connect()
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return []
        if version > SCHEMA_VERSION:
            raise ReviewError(
                f"{db_path}: written by a newer version of this program (schema {version}; this "
                f"one reads {SCHEMA_VERSION}); update panoptic-deeplab to review this data set"
            )
        tables = _tables(db)
    finally:
        db.close()
    notes = []
    if tables & _V1_TABLES:
        backup = _backup(db_path, connect)
        notes.append(
            f"{db_path}: migrated the review decisions to the new schema; the old file is kept "
            f"as {backup}"
        )
    db = connect()
    try:
        db.execute("BEGIN IMMEDIATE")
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # not done meanwhile
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if "decisions" in _tables(db):
                _migrate_v1(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()
    if say:
        for note in notes:
            say(note)
    return notes


def _backup(db_path: Path, connect) -> Path:
    """A consistent copy of the store (SQLite's online backup), beside it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db_path.with_name(f"{db_path.name}.v1-backup-{stamp}")
    k = 1
    while target.exists():
        target = db_path.with_name(f"{db_path.name}.v1-backup-{stamp}-{k}")
        k += 1
    src = connect()
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Keep the first schema's decisions as ``v1_decisions`` for the store to import (it knows the
    data set's segments); drop its history and scores."""
    db.execute("ALTER TABLE decisions RENAME TO v1_decisions")
    db.execute("DROP TABLE IF EXISTS history")
    db.execute("DROP TABLE IF EXISTS scores")
