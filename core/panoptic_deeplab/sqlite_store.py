"""The SQLite opener shared by the stores kept in one database file (jobs, review decisions), and
what they do when that file is damaged.

A damaged file (cut short, its header overwritten, or emptied to 0 bytes after it held records) is
never read as an empty store and never overwritten: every operation raises ``DamagedStoreError``,
which names the file, what is wrong and the fix. ``set_aside(path)`` renames the damaged file (with
its journal) to ``NAME.damaged-YYYYmmdd-HHMMSS`` so that a fresh store can start; a store does that
only when asked (``repair=True``, a command's ``--repair``, a button in the app).

A 0-byte file is what a new store looks like before its first write, so SQLite cannot tell an
emptied store from a new one. A sidecar marker (``.NAME.created``), written once the schema exists,
tells them apart.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError

# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT and SQLITE_NOTADB.
_DAMAGE_CODES = (11, 26)
_COMPANIONS = ("-journal", "-wal", "-shm")  # files SQLite keeps beside the database


class DamagedStoreError(UserError):
    """The store's SQLite file cannot be read as a database. ``path`` is the file, ``reason`` what
    is wrong with it; nothing was changed."""

    def __init__(self, path: Path, reason: str, fix: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"{self.path} is damaged: {reason}. Its records cannot be read; the file is left as it "
            f"is. {fix}"
        )


def marker_path(db_path: str | os.PathLike) -> Path:
    """The sidecar that says the store at ``db_path`` was created (0 bytes there means damage)."""
    db_path = Path(db_path)
    return db_path.with_name(f".{db_path.name}.created")


def set_aside(db_path: str | os.PathLike) -> Path:
    """Rename a damaged store (and SQLite's journal files beside it) to
    ``NAME.damaged-YYYYmmdd-HHMMSS`` and forget that it existed; return the new path. The next
    open starts a fresh, empty store."""
    db_path = Path(db_path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    n = 1
    while target.exists():  # two repairs within one second
        n += 1
        target = db_path.with_name(f"{db_path.name}.damaged-{stamp}-{n}")
    if db_path.exists():
        os.replace(db_path, target)
    for suffix in _COMPANIONS:  # a journal of the old file must not be replayed into the new one
        companion = db_path.with_name(db_path.name + suffix)
        if companion.exists():
            os.replace(companion, target.with_name(target.name + suffix))
    marker_path(db_path).unlink(missing_ok=True)
    return target


def is_damage(err: BaseException) -> bool:
    """Whether an sqlite3 error says the file is damaged (not e.g. locked or read-only)."""
    code = getattr(err, "sqlite_errorcode", None)
    return (
        isinstance(err, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE_CODES
    )


class SqliteStore:
    """Base of a store whose records live in the SQLite file ``self.db_path``.

    ``with self._connect() as db:`` is one operation: committed (or rolled back) and closed at the
    end; a damaged file raises ``DamagedStoreError`` instead of sqlite3's own error. A subclass may
    set ``repair_hint`` to the fix its users can run (a command, a button).
    """

    db_path: Path
    repair_hint = "Move it away (or delete it) to start a fresh, empty store."
    _checked: Path | None = None  # the file whose integrity this instance checked

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = self._open()
        try:
            try:
                with db:
                    yield db
            except sqlite3.DatabaseError as err:
                if is_damage(err):
                    raise self._damaged(f"SQLite reports '{err}'") from err
                raise
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection:
        """A connection, the caller's to commit and close (``_connect`` does both); the file's
        damage is checked first, once per instance."""
        # One short-lived connection per operation: Streamlit runs each session in its own thread,
        # and a connection may not cross threads. The 30 s timeout waits out another process's
        # write instead of failing with "locked".
        self._refuse_emptied()
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row  # rows by column name
        if self._checked != self.db_path:
            try:
                self._check_integrity(db)
            except sqlite3.DatabaseError as err:
                db.close()
                if is_damage(err):
                    raise self._damaged(f"SQLite reports '{err}'") from err
                raise
            except BaseException:
                db.close()
                raise
            self._checked = self.db_path
        marker = marker_path(self.db_path)
        if not marker.exists() and self.db_path.stat().st_size > 0:  # an earlier one wrote a schema
            marker.write_text("this store held a schema; 0 bytes here means it was emptied\n")
        return db

    def _refuse_emptied(self) -> None:
        try:
            empty = self.db_path.stat().st_size == 0
        except FileNotFoundError:
            return  # a new store (or one the user removed on purpose)
        if empty and marker_path(self.db_path).exists():
            raise self._damaged("it is empty (0 bytes) although it held this store's records")

    def _check_integrity(self, db: sqlite3.Connection) -> None:
        """SQLite's quick check, once per instance: a file cut short may otherwise answer some
        queries and fail others."""
        rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            raise self._damaged(f"SQLite's integrity check reports '{'; '.join(rows[:3])}'")

    def _damaged(self, reason: str) -> DamagedStoreError:
        return DamagedStoreError(self.db_path, reason, self.repair_hint)
