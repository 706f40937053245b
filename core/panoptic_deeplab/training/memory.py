"""Memory of a training run: its peak resident size, the memory free for it, and the low-memory
choice. (The malloc settings that keep CPU training's RSS near its tensors: ``glibc_malloc``.)
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# Peak RSS of a default (not low-memory) CPU `pdl train` run per pixel of the crops one step holds
# in memory: 9.51 GiB for MobileNetV3-Large OS16 at 1025x2049, batch 1 (benchmarks/
# bench_train_memory.py). Larger backbones need more; the figure is a floor.
_PEAK_BYTES_PER_CROP_PIXEL = 9.51 * 2**30 / (1025 * 2049)
# Low-memory mode when the estimate exceeds this, or half of the memory available now.
LOW_MEMORY_ABOVE_BYTES = 4 * 2**30


@dataclass(frozen=True)
class MemoryChoice:
    low_memory: bool
    reason: str

    def describe(self) -> str:
        return f"memory: low-memory mode {'on' if self.low_memory else 'off'} ({self.reason})"


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from /proc/meminfo (Linux), else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def choose_low_memory(
    config,
    *,
    micro_batch: int,
    on_gpu: bool,
    available_bytes: int | None,
    requested: bool | None = None,
) -> MemoryChoice:
    """Low-memory mode (one op at a time, a small input pipeline, tensors from malloc rather than
    TensorFlow's pool: lower CPU peak RSS, slower) from the user's flag when given, else from the
    device, the crop and the memory available."""
    if requested is not None:
        return MemoryChoice(
            bool(requested), f"{'--low-memory' if requested else '--no-low-memory'} given"
        )
    if on_gpu:
        return MemoryChoice(False, "auto: training on a GPU")
    crop_h, crop_w = (int(v) for v in config.dataset.crop_size)
    estimate = _PEAK_BYTES_PER_CROP_PIXEL * crop_h * crop_w * max(int(micro_batch), 1)
    limit = (
        LOW_MEMORY_ABOVE_BYTES
        if available_bytes is None
        else min(LOW_MEMORY_ABOVE_BYTES, available_bytes / 2)
    )
    free = "" if available_bytes is None else f", {available_bytes / 2**30:.1f} GiB available"
    low = estimate > limit
    return MemoryChoice(
        low,
        f"auto: CPU, crop {crop_h}x{crop_w} x {micro_batch} per step, estimated peak "
        f"{estimate / 2**30:.1f} GiB without it{free}; "
        f"{'--no-low-memory' if low else '--low-memory'} to override",
    )


# TensorFlow's oneDNN CPU allocator (MklCPUAllocator) serves large tensors from a BFC pool that
# never returns memory and fragments over a step; with this variable set it takes them from
# malloc, which (glibc_malloc.tune_malloc) mmaps them and unmaps them when freed. Same tensors,
# same arithmetic; only where the bytes come from changes.
SYSTEM_ALLOCATOR_ENV = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def use_system_allocator() -> bool:
    """Low-memory mode's allocator: set ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` unless the user set
    it. Takes effect only before TensorFlow creates its CPU allocator (its first tensor); returns
    whether the variable is on now."""
    os.environ.setdefault(SYSTEM_ALLOCATOR_ENV, "1")
    return os.environ[SYSTEM_ALLOCATOR_ENV].strip().lower() in ("1", "true")
