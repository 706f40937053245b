#!/usr/bin/env bash
# Install what the app needs on a fresh machine and start it on http://127.0.0.1:8501
# with the shipped demo model. Extra arguments go to `pdl app` (e.g. --port 8600).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh runtime
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/pdl app "$@"
