"""glibc malloc settings (``mallopt``), for the commands whose speed or peak memory depend on them.

No effect (returns False) where glibc is absent.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def set_malloc_options(
    mmap_threshold: int, trim_threshold: int, arena_max: int | None = None
) -> bool:
    """Blocks of ``mmap_threshold`` bytes or more are mmapped (returned to the OS on free); free
    heap memory above ``trim_threshold`` is given back; at most ``arena_max`` arenas."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(
            None
        )  # the process's own symbols, libc's among them (find_library runs ldconfig)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1
        if arena_max is not None:
            ok &= libc.mallopt(_M_ARENA_MAX, int(arena_max)) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


def tune_malloc(mmap_threshold: int = 1 << 20, arena_max: int = 2) -> bool:
    """For CPU training; call before TensorFlow starts its threads.

    TensorFlow's CPU allocator takes big tensors from glibc malloc. glibc raises its mmap threshold
    after each large free (up to 32 MiB), so later activations come from the heap, and many
    per-thread arenas fragment it: peak RSS then grows far beyond the live tensors. A fixed mmap
    threshold (large blocks always mmapped, returned to the OS on free) and few arenas avoid both.
    """
    return set_malloc_options(mmap_threshold, mmap_threshold, arena_max)
