"""A small thread-safe LRU cache bounded by bytes, shared by the review stores of one process.

The app builds a new store on every page run, so what must survive a click (parsed annotation
files, current label maps, stored predictions, the ranking) is kept here, keyed by what makes it
valid (a file's size and time, a label map's version), and dropped when older than the newest.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

import numpy as np


def size_of(value) -> int:
    """Bytes held by ``value``: arrays by their buffers, containers by their items (roughly)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(size_of(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(size_of(v) for v in value.values()) + 64 * len(value) + 64
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if hasattr(value, "memory_usage"):  # a DataFrame
        try:
            return int(value.memory_usage(deep=False).sum())
        except (TypeError, ValueError):
            pass
    return sys.getsizeof(value)


class ByteLRU:
    """``get(key, stamp)`` returns the value stored with the same ``stamp``, else None."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key, stamp=None):
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] != stamp:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key, value, stamp=None, nbytes: int | None = None) -> None:
        nbytes = size_of(value) if nbytes is None else int(nbytes)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            if nbytes > self.max_bytes:
                return
            self._items[key] = (stamp, value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._items:
                _, (_, _, n) = self._items.popitem(last=False)
                self._bytes -= n

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes


# One budget each; together they bound what review keeps in a process (the app's server).
ANNOTATIONS = ByteLRU(512 << 20)  # parsed annotation files (rough sizes)
LABELS = ByteLRU(256 << 20)  # current label maps of images being reviewed
PREDICTIONS = ByteLRU(256 << 20)  # stored predictions read back
RANKINGS = ByteLRU(64 << 20)  # ranking tables
