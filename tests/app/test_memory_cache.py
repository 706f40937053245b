"""The app's image cache is bounded by bytes, not entries (issue 24)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from panoptic_deeplab.app.components.memory_cache import BytesLRU, nbytes


def test_nbytes_counts_the_arrays_inside_a_prediction():
    probs = np.zeros((100, 200, 133), np.float32)  # 10.6 MB
    value = SimpleNamespace(semantic_probs=probs, offsets=np.zeros((100, 200, 2), np.float32))
    assert probs.nbytes + 160_000 <= nbytes(value) < probs.nbytes + 160_000 + 1024


def test_the_cache_keeps_what_fits_its_budget_and_drops_the_least_recently_used():
    cache = BytesLRU(budget=3 * 2**20)
    made = []

    def make(k):
        made.append(k)
        return np.zeros(2**20, np.uint8)  # 1 MB each

    for k in "abc":
        cache.get_or_make(k, lambda k=k: make(k))
    cache.get_or_make("a", lambda: make("a"))  # a hit: "a" is now the most recent
    cache.get_or_make("d", lambda: make("d"))  # 4 MB: "b", the least recently used, goes
    assert made == ["a", "b", "c", "d"]
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "acd" if k in cache}
    assert cache.size <= cache.budget
    big = cache.get_or_make("huge", lambda: np.zeros(5 * 2**20, np.uint8))  # over the budget
    assert len(cache) == 1 and "huge" in cache and big.nbytes == 5 * 2**20


def test_sixteen_coco_sized_predictions_stay_within_the_budget():
    """Sixteen 133-class predictions at 1025x1025 would be 8.9 GB; the cache keeps 1 GB."""
    cache = BytesLRU(budget=2**30)
    shape = (1025, 1025, 133)
    for k in range(16):
        # np.broadcast_to: an array that reports the full nbytes without allocating them
        probs = np.broadcast_to(np.float32(0), shape)
        cache.put(k, SimpleNamespace(semantic_probs=np.lib.stride_tricks.as_strided(probs)))
    assert cache.size <= 2**30 and len(cache) == 1  # each one alone is 559 MB
