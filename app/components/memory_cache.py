"""A least-recently-used cache bounded by bytes, shared by all sessions of the app process.

Streamlit's ``cache_data`` bounds entries by count, and a prediction's probability maps range from
a few kB (a tiny image) to about 280 MB (133 classes at the app's 1025-pixel cap): 16 entries could
hold 4.5 GB. This cache counts the bytes of the NumPy arrays in each value and drops the least
recently used entries beyond its budget. Values are shared, not copied: callers must not change
them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from panoptic_deeplab import settings

ENV_CACHE_MB = settings.ENV_APP_CACHE_MB
DEFAULT_CACHE_MB = 1024  # all the app's image caches together


def nbytes(value: Any, _depth: int = 0) -> int:
    """The bytes of the arrays held by ``value`` (arrays, tensors, dataclasses, namespaces,
    containers), plus a little for the rest."""
    if _depth > 4:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype"):
        size = int(np.prod(value.shape)) if value.shape is not None else 0
        return size * np.dtype(value.dtype.as_numpy_dtype).itemsize  # a TensorFlow tensor
    if isinstance(value, dict):
        return sum(nbytes(v, _depth + 1) for v in value.values()) + 64
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, _depth + 1) for v in value) + 64
    if is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), _depth + 1) for f in fields(value)) + 64
    if hasattr(value, "__dict__"):
        return sum(nbytes(v, _depth + 1) for v in vars(value).values()) + 64
    return 64


class BytesLRU:
    """``get_or_make(key, make)``: the value for ``key``, made once and kept while the values
    kept sum to at most ``budget`` bytes (the newest value is always kept)."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = make()  # outside the lock: other sessions keep reading meanwhile
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._items:
                self.size -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self.size += size
            while self.size > self.budget and len(self._items) > 1:
                self.size -= self._items.popitem(last=False)[1][1]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


def budget_bytes() -> int:
    """The app's budget for cached image results: $PDL_APP_CACHE_MB, else 1024 MB."""
    try:
        megabytes = float(os.environ.get(ENV_CACHE_MB, DEFAULT_CACHE_MB))
    except ValueError:
        megabytes = DEFAULT_CACHE_MB
    return int(max(megabytes, 1) * 2**20)
