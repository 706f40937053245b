"""The SQLite opener shared by the stores kept in one database file (jobs, review decisions)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class SqliteStore:
    """Base of a store whose records live in the SQLite file ``self.db_path``."""

    db_path: Path

    def _connect(self) -> sqlite3.Connection:
        # One short-lived connection per operation: Streamlit runs each session in its own thread,
        # and a connection may not cross threads. ``with db:`` commits (or rolls back) the operation;
        # the 30 s timeout waits out another process's write instead of failing with "locked".
        db = sqlite3.connect(self.db_path, timeout=30)
        db.row_factory = sqlite3.Row  # rows by column name
        return db
