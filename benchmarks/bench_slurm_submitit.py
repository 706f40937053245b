"""pdl's Slurm backend against submitit on the same cluster, in one interleaved run: the decision
recorded in docs/distributed-training.md ("Why not submitit").

    pip install submitit   # only for this comparison; the product does not use it
    python -m benchmarks.bench_slurm_submitit [--rounds 2]   # from the checkout root

Runs as root on a machine with Debian's slurm-wlm and munge (as tests/slurm does): it starts the
one-node test cluster of tests/slurm/conftest.py (no accounting database, like many small
clusters), makes a one-image synthetic set, then for each round submits the same `pdl evaluate` of
the shipped demo through `JobStore.submit(backend="slurm")` and through `submitit.SlurmExecutor`
(`CommandFunction`), and prints the time to submit, the time until each reports the end, and the
state each reports. Last, one job of each is cancelled at once and looked at 10 s later.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from panoptic_deeplab.jobs import FINAL_STATES, JobStore
from panoptic_deeplab.jobs.backends.slurm import SlurmOptions
from tests.slurm.conftest import Cluster  # the test cluster, started as the tests do

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import submitit

    logging.getLogger("submitit").setLevel(logging.ERROR)  # one warning per failed sacct call
    tmp = Path(os.path.realpath(tempfile.mkdtemp(prefix="bench_slurm_", dir="/tmp")))
    data = tmp / "data"
    subprocess.run(
        [sys.executable, "-m", "panoptic_deeplab", "make-dataset", "synthetic", "--out", str(data)]
        + ["--num-train", "1", "--num-val", "1", "--height", "129", "--width", "257"],
        check=True,
        capture_output=True,
    )
    model = REPO / "assets" / "models" / "synthetic_demo"
    argv = ["evaluate", "--model", str(model), "--dataset", str(data), "--split", "val"]
    argv += ["--ap", "none"]
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"submitit {submitit.__version__}; workload: pdl {' '.join(argv)}")
    (tmp / "cluster").mkdir()
    cluster = Cluster(tmp / "cluster")
    cluster.start()
    try:
        store = JobStore(tmp / "root")

        def submitit_job(folder: Path, command: list[str]):
            executor = submitit.SlurmExecutor(folder=folder)
            executor.update_parameters(time=5)
            return executor.submit(submitit.helpers.CommandFunction(command))

        for n in range(args.rounds):
            start = time.monotonic()
            job = store.submit(argv, backend="slurm", options=SlurmOptions(), workdir=tmp / f"p{n}")
            submitted = time.monotonic() - start
            while (job := store.refresh(job.id)).state not in FINAL_STATES:
                time.sleep(0.2)
            print(
                f"round {n} pdl:      submit {submitted:.2f} s, ended after "
                f"{time.monotonic() - start:.1f} s, state {job.state!r}"
            )
            start = time.monotonic()
            sjob = submitit_job(tmp / f"s{n}", [sys.executable, "-m", "panoptic_deeplab", *argv])
            submitted = time.monotonic() - start
            deadline = start + 300
            while not sjob.done(force_check=True) and time.monotonic() < deadline:
                time.sleep(0.2)
            sjob.result()
            print(
                f"round {n} submitit: submit {submitted:.2f} s, done() after "
                f"{time.monotonic() - start:.1f} s, state {sjob.state!r}"
            )
        job = store.submit(argv, backend="slurm", options=SlurmOptions(), workdir=tmp / "pc")
        store.cancel(job.id)
        sjob = submitit_job(tmp / "sc", ["sleep", "60"])
        sjob.cancel()
        time.sleep(10)
        print(f"cancelled pdl:      state {store.refresh(job.id).state!r}")
        print(f"cancelled submitit: state {sjob.state!r}, done() {sjob.done(force_check=True)}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
