"""A damaged SQLite store (jobs.sqlite, review.sqlite) on a page: the error that names the file,
and a button that runs the library's own repair (``repair=True``, what `pdl jobs --repair` runs).

The repair renames the damaged file aside (``NAME.damaged-YYYYmmdd-HHMMSS``, never deleted) and
starts an empty store; nothing else on disk is touched. The click only renames a file and creates
a schema (milliseconds); the error then gives way to what was done, and the page goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from panoptic_deeplab.sqlite_store import DamagedStoreError


def offer(err: DamagedStoreError, repair: Callable[[], Path | None], fresh: str, key: str) -> bool:
    """Show ``err`` and a button that calls ``repair`` (which returns where the damaged file was
    put, None when it reads fine again); ``fresh`` says what starts empty ("an empty job list").
    True once the button repaired the store: the page goes on with the fresh one."""
    slot = st.empty()
    with slot.container():
        st.error(f"**{err.path.name} cannot be read.** {err}", icon=":material/error:")
        st.caption(
            "The button keeps the damaged file aside, renamed with the time (it is never "
            f"deleted), and starts {fresh}; its records stay in that file."
        )
        clicked = st.button(
            f"Keep {err.path.name} aside and start {fresh}", key=key, type="primary"
        )
    if not clicked:
        return False
    kept = repair()
    slot.success(_report(err.path, kept, fresh), icon=":material/build:")
    return True


def _report(path: Path, kept: Path | None, fresh: str) -> str:
    if kept is None:
        return f"`{path}` reads fine now (repaired meanwhile?): nothing was moved."
    size = kept.stat().st_size if kept.exists() else 0
    return (
        f"`{path.name}` was damaged: it is kept as `{kept}` ({size:,} bytes, as it was), and this "
        f"page starts with {fresh}. Nothing could be read from the damaged file; everything else "
        "on disk (job folders, logs, models, data sets) is as it was."
    )
