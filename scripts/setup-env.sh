#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv from requirements*.txt.
# Idempotent: re-installs only when a requirements file changed. Usage: scripts/setup-env.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:-runtime}
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
reqs=requirements.txt
[ "$want" = dev ] && reqs=requirements-dev.txt
stamp=".venv/.installed-$want"
digest=$(cat requirements.txt requirements-dev.txt pyproject.toml setup.py | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "installing Python packages from $reqs into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install -q -r "$reqs"
  if [ "$want" = dev ]; then
    # panopticapi-lite's metadata pins an old numpy; it runs fine on numpy 2 (see pq-semantics notes).
    .venv/bin/python -m pip install -q --no-deps panopticapi-lite==0.2.0
  fi
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$digest" > "$stamp"
fi
