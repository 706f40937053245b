#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run the whole suite.
# Extra arguments go to pytest (e.g. `scripts/run-tests.sh -m "not slow"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh dev
if [ ! -x /usr/bin/chromium ]; then
  # Browser tests drive Debian's Chromium; never a browser downloaded by a test tool.
  echo "installing Debian's chromium for the browser tests..."
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ]; then
  # The Slurm backend's tests start a one-node cluster on 127.0.0.1 (tests/slurm/conftest.py).
  if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then
    echo "installing Debian's slurm-wlm and munge for the Slurm tests..."
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      slurm-wlm munge >/dev/null
  fi
fi
export TF_CPP_MIN_LOG_LEVEL=2
# Two test processes (pytest-xdist), one per core of the 2-core CI machine: much of a test's time
# is single-threaded (Python, tracing, process start-up). Each grew to about 10 GiB in a whole
# run; PDL_TEST_WORKERS sets another count, and `-n 0` among the arguments runs in this process.
# Each worker starts its own Slurm cluster (tests/slurm/conftest.py: private ports and folders).
# Work stealing: a worker that runs out takes half of the other's queue, so neither ends alone on
# a long test (with plain load balancing one worker idled for minutes at the end).
exec .venv/bin/python -m pytest -n "${PDL_TEST_WORKERS:-2}" --dist worksteal "$@"
