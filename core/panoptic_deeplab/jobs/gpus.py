"""GPUs for local jobs: what ``nvidia-smi`` lists, and a job's environment with only its GPUs
visible and TensorFlow's start-up lines left for ``pdl`` to hide."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    memory_mib: int


def detect_gpus(nvidia_smi: str | None = None) -> list[GPU]:
    """NVIDIA GPUs listed by ``nvidia-smi`` (empty when it is absent or fails: run on the CPU)."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> list[GPU]:
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else 0
            gpus.append(GPU(int(parts[0]), parts[1], memory))
    return gpus


def job_environment(
    gpus: list[int] | tuple[int, ...] = (), base: dict | None = None
) -> dict[str, str]:
    """The environment of a job: only the chosen GPUs visible (none = CPU), memory growth on."""
    env = quiet_start_up(dict(os.environ if base is None else base))
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(g)) for g in gpus) if gpus else "-1"
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    env["PYTHONUNBUFFERED"] = "1"  # the log file shows progress as it happens
    return env


def quiet_start_up(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a ``pdl`` process whose TensorFlow start-up lines (CUDA, oneDNN, absl) should be
    hidden: without a quiet ``TF_CPP_MIN_LOG_LEVEL`` (2 or 3, as ``pdl`` and the app set it), so
    that ``pdl`` silences TensorFlow's import itself (those lines come before the level is read). A
    level of 0 or 1, the user's wish to see them, is kept."""
    if env.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("2", "3"):
        del env["TF_CPP_MIN_LOG_LEVEL"]
    return env
