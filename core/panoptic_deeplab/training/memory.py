"""Keep the resident memory of CPU training close to what the tensors need.

TensorFlow's CPU allocator takes big tensors from glibc malloc. glibc raises its mmap threshold
after each large free (up to 32 MiB), so later activations come from the heap, and many per-thread
arenas fragment it: peak RSS then grows far beyond the live tensors. A fixed mmap threshold (large
blocks always mmapped, returned to the OS on free) and few arenas avoid both. No effect elsewhere.
"""
from __future__ import annotations

import resource

from ..glibc_malloc import set_malloc_options


def tune_malloc(mmap_threshold: int = 1 << 20, arena_max: int = 2) -> bool:
    """Call early (before TensorFlow starts its threads). Returns False where glibc is absent."""
    return set_malloc_options(mmap_threshold, mmap_threshold, arena_max)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
