"""Numeric precision of the network: the one place that turns ``--precision auto|fp32|bf16|fp16``
into a Keras dtype policy, from what the machine can do natively.

``auto`` picks bfloat16 where the hardware computes it fast: CPUs with AMX-BF16 (read from the CPU
flags) and GPUs of compute capability 8.0 or later; float32 otherwise. A CPU with AVX512-BF16 but
no AMX (Cooper Lake, Zen 4, or a VM that hides AMX) computes bfloat16 natively but slower than
float32: on such a 2-core machine TensorFlow's bf16 matmul peak was 50 GFLOP/s against 92 in fp32,
and MNV3-L ran 1.7x slower in bf16 on TensorFlow and 1.4x on OpenVINO (docs/deployment.md,
"Precision"), so ``auto`` keeps float32 there and says why. Mixed precision keeps the variables,
the softmax, the losses and
the three outputs (``semantic_logits``, ``center_heatmap``, ``offsets``) in float32; only the
convolutions and their activations run in the lower precision (see ``model/builder.py``).

Nothing here imports TensorFlow unless a GPU has to be asked about (``gpu_bf16``), so the CLI can
decide and print the choice cheaply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# --precision name -> Keras dtype policy (config key model.dtype_policy).
POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
NAMES = {policy: name for name, policy in POLICIES.items()}
# CPU flags (Linux /proc/cpuinfo names) that mean bfloat16 matrix arithmetic in hardware.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Whether training's auto choice follows inference's on AMX CPUs. Measured on the demo config
# (docs/deployment.md, "Precision", benchmarks/bench_train_precision.py): the bf16 loss curve holds
# (-1.9 % mean loss over the second half of 60 steps), but the only CPU at hand (avx512_bf16, no
# AMX) took 5.8 s per bf16 step against 3.1 s in fp32, and no AMX machine was at hand to show a
# gain, so auto trains in float32; --precision bf16 still trains in bf16.
AUTO_BF16_FOR_TRAINING = False


@dataclass(frozen=True)
class Choice:
    """The precision a run uses and why (printed by the CLI, shown by the app)."""

    name: str  # fp32 | bf16 | fp16
    requested: str  # what the user asked for (auto | fp32 | bf16 | fp16)
    reason: str

    @property
    def policy(self) -> str:
        return POLICIES[self.name]

    def describe(self) -> str:
        return f"precision {self.name} ({self.reason})"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty when the file cannot be read, e.g. on macOS or Windows)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_bf16_flags(flags: frozenset[str] | None = None) -> list[str]:
    """The native-bfloat16 flags this CPU has (``[]``: none)."""
    flags = cpu_flags() if flags is None else flags
    return [f for f in BF16_CPU_FLAGS if f in flags]


def gpu_bf16() -> bool | None:
    """True/False for the first visible GPU (compute capability >= 8.0), None without a GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (
        0,
        0,
    )
    return tuple(capability) >= (8, 0)


def parse_precision(value: str | None, source: str = "--precision") -> str:
    """``auto | fp32 | bf16 | fp16`` (or a policy name: ``float32``, ``mixed_bfloat16``, ...)."""
    if value is None:
        return "auto"
    value = str(value).strip().lower()
    value = NAMES.get(value, value)
    if value not in PRECISIONS:
        raise UserError(f"{source} {value!r}: choose one of {', '.join(PRECISIONS)}.")
    return value


def choose_precision(
    requested: str | None = "auto",
    *,
    training: bool = False,
    flags: frozenset[str] | None = None,
    gpu: bool | None | str = "ask",
) -> Choice:
    """Resolve ``requested`` for this machine; ``flags`` / ``gpu`` override detection (tests)."""
    requested = parse_precision(requested)
    if requested != "auto":
        return Choice(requested, requested, "as requested")
    has_gpu_bf16 = gpu_bf16() if gpu == "ask" else gpu
    if has_gpu_bf16 is not None:
        if has_gpu_bf16:
            return Choice("bf16", "auto", "auto: the GPU computes bfloat16 natively")
        return Choice(
            "fp32", "auto", "auto: the GPU has no native bfloat16 (compute capability < 8.0)"
        )
    native = cpu_bf16_flags(flags)
    if not native:
        return Choice(
            "fp32", "auto", "auto: this CPU has no native bfloat16 (no amx_bf16 / avx512_bf16 flag)"
        )
    if "amx_bf16" not in native:
        return Choice(
            "fp32",
            "auto",
            "auto: the CPU has avx512_bf16 but no AMX, where bfloat16 measured slower than float32",
        )
    if training and not AUTO_BF16_FOR_TRAINING:
        return Choice("fp32", "auto", "auto: training stays in float32")
    return Choice("bf16", "auto", f"auto: the CPU has {' and '.join(native)}")
