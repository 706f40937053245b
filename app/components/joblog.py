"""Job logs as a person should read them: TensorFlow's start-up chatter left out (it reads like a
failure: "failed call to cuInit: INTERNAL: CUDA error" on every CPU machine), everything else kept.

The filter is the app's: the log file itself stays complete (the Train page offers it whole).
"""

from __future__ import annotations

import re

# A native-code log line: absl/glog prefix (severity, date, time, thread, file:line]).
_NATIVE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\]")
# What TensorFlow / XLA / CUDA libraries print while starting, on any machine, that is no problem.
_STARTUP = re.compile(
    r"cuInit|CUDA error|cuda_executor|cuda_diagnostics|cuda_dnn|cuda_fft|cuda_blas"
    r"|Unable to register cu(DNN|FFT|BLAS)"
    r"|TF-TRT Warning|Could not find TensorRT|oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS"
    r"|This TensorFlow binary is optimized|rebuild TensorFlow with the appropriate compiler flags"
    r"|computation placer already registered|All log messages before absl::InitializeLog"
    r"|Could not find cuda drivers|cuda drivers on your machine, GPU will not be used"
    r"|no NVIDIA GPU device is present|retrieving CUDA diagnostic information|hostname: "
    r"|WARNING: All log messages before absl|Created device /job:localhost"
    r"|XLA service .* initialized"
    r"|StreamExecutor device|disabling MLIR crash reproducer|NUMA node"
)


def is_startup_noise(line: str) -> bool:
    text = line.strip()
    if not text:
        return False
    if _NATIVE.match(text):
        return bool(_STARTUP.search(text)) or "cpu_feature_guard" in text or "port.cc" in text
    return text.startswith("WARNING: All log messages before absl::InitializeLog") or (
        "To enable the following instructions" in text and "rebuild TensorFlow" in text
    )


def clean_log(text: str) -> tuple[str, int]:
    """``text`` without TensorFlow's start-up lines, and how many were left out."""
    kept, hidden = [], 0
    for line in text.splitlines():
        if is_startup_noise(line):
            hidden += 1
        else:
            kept.append(line)
    return "\n".join(kept), hidden
