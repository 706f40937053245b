"""Remembered data-set checks: ``pdl train`` and ``pdl evaluate`` skip decoding every label again
when the data set has not changed since it last passed (minutes on Cityscapes, an hour on COCO).

One small JSON record per (absolute root, split) in
``$XDG_CACHE_HOME/panoptic_deeplab/dataset-checks/`` (default ``~/.cache/...``), named from a hash
of both. It holds a fingerprint of the version of the rules (``checks.CHECK_VERSION``) and the path,
size, mtime_ns and ctime_ns of every file the check reads; any edit, addition or removal changes it.
File contents are never hashed: a stat is what makes a re-run cheap. Only passes are recorded.
``PDL_RECHECK_DATASET=1`` ignores the record (and a pass rewrites it); deleting the record does the
same. A cache folder that cannot be written means no record.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ..settings import ENV_RECHECK_DATASET as RECHECK_ENV


def cache_dir() -> Path:
    from ..settings import user_cache

    return user_cache() / "dataset-checks"


def record_path(root: str | Path, split: str) -> Path:
    key = f"{Path(root).resolve()}\0{split}".encode("utf-8", "surrogateescape")
    return cache_dir() / f"{hashlib.sha256(key).hexdigest()[:32]}.json"


def fingerprint(root: str | Path, version: int, files: Iterable[Path]) -> str:
    """A digest of ``version`` and (path, size, mtime_ns, ctime_ns) of ``files``; a missing file
    counts too. ctime catches a same-size copy that kept the old mtime (`cp -p`)."""
    root = Path(root)
    digest = hashlib.sha256(f"v{version}\0{root.resolve()}\n".encode("utf-8", "surrogateescape"))
    for path in files:
        path = Path(path)
        name = path.relative_to(root) if path.is_relative_to(root) else path
        try:
            st = path.stat()
            entry = f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n"
        except OSError:
            entry = f"{name}\0missing\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def passed_before(
    root: str | Path, split: str, fingerprint: str, allow_image_problems: bool = False
) -> Path | None:
    """The record saying this data set passed with this fingerprint, or None (also with
    ``PDL_RECHECK_DATASET`` set). A pass that let image problems through only counts for a caller
    that allows them too."""
    if os.environ.get(RECHECK_ENV, "").strip() not in ("", "0"):
        return None
    path = record_path(root, split)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or half-written by hand: check again
        return None
    if not isinstance(record, dict) or record.get("fingerprint") != fingerprint:
        return None
    if record.get("image_problems", True) and not allow_image_problems:
        return None
    return path


def remember_pass(
    root: str | Path, split: str, fingerprint: str, image_problems: bool = False
) -> None:
    """Record a pass; silently nothing when the cache folder cannot be written."""
    path = record_path(root, split)
    record = {
        "root": str(Path(root).resolve()),
        "split": split,
        "fingerprint": fingerprint,
        "image_problems": image_problems,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent run reads the old record or the new one, never half a one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only home or cache: the next run simply checks again
