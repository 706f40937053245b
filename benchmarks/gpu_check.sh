#!/usr/bin/env bash
# One command that checks the product on a GPU machine and writes every figure to one JSON file:
#   bash benchmarks/gpu_check.sh [--out gpu_check.json] [--dry] [--batch-size 8] [--train-steps 50]
# nvidia-smi, TensorFlow's view of the GPU, 50 training steps of cityscapes/mobilenet_v3_large_os16
# on 1025x2049 synthetic crops (steps/s, peak GPU memory), MobileNetV3-L and ResNet-50 inference at
# 1025x2049 in fp32 and with --precision auto (images/s, end to end), pdl evaluate on 20 images and
# one job through `pdl jobs --gpus 0`. About 8 minutes on one GPU. --dry: the same on the CPU at a
# tiny size, GPU steps skipped and marked so (what the test suite runs). Details: gpu_check.py.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-$(command -v python3 || command -v python)}
if [ -x "$here/../.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python=$here/../.venv/bin/python; fi
exec "$python" "$here/gpu_check.py" "$@"
