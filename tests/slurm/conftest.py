"""A real one-node Slurm cluster on 127.0.0.1 for the Slurm backend's tests: munged, slurmctld and
slurmd from Debian's ``munge`` and ``slurm-wlm`` (``scripts/run-tests.sh`` installs them), with a
minimal slurm.conf written here. Everything lives in a private temporary folder (key, sockets,
state, spool, logs) and listens on free ports, so parallel runs do not collide; the daemons are
stopped at the end of the session.

No cgroup plugins (proctrack/linuxproc, task/none): sandboxes and containers rarely delegate them.
No accounting database (accounting_storage/none): the backend reads states from
``scontrol show job`` while slurmctld remembers a job, which is what these tests look at.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
CPUS = 2


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _slurm_conf(root: Path, munge_socket: Path, ctld_port: int, slurmd_port: int) -> str:
    return f"""\
ClusterName=pdltest{secrets.token_hex(3)}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
KillWait=10
InactiveLimit=0
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=30:00 State=UP
PartitionName=short Nodes=ALL MaxTime=1:00 State=UP
"""


class Cluster:
    """The running test cluster: its slurm.conf, and its daemons' logs for failure messages."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}"
            for p in sorted((self.root / "log").glob("*.log"))
        )

    def scontrol_job(self, slurm_id: str) -> dict[str, str]:
        import re

        out = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", slurm_id],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def start(self) -> None:
        root = self.root
        for sub in ("munge", "munge-run", "state", "spool", "log"):
            (root / sub).mkdir(mode=0o700 if sub == "munge" else 0o755)
        key = root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        munge_socket = root / "munge-run" / "munge.socket"
        ctld_port, slurmd_port = _free_ports(2)
        self.conf.write_text(_slurm_conf(root, munge_socket, ctld_port, slurmd_port))
        os.environ["SLURM_CONF"] = str(
            self.conf
        )  # every Slurm command (and each job's srun) reads it
        self._spawn(
            "munged",
            [
                "munged",
                "-F",
                "-f",
                f"--socket={munge_socket}",
                f"--key-file={key}",
                f"--log-file={root}/log/munged.log",
                f"--pid-file={root}/munge-run/munged.pid",
                f"--seed-file={root}/munge/seed",
            ],
        )
        self._wait(munge_socket.exists, 15, "munged did not create its socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-i"])
        self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost"])
        self._wait(self._node_idle, 60, "the node did not come up idle")

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")
        self.procs.append(
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def _node_idle(self) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{self.logs()}")
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True
        )
        return done.returncode == 0 and "idle" in done.stdout.split()

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {timeout:.0f} s:\n{self.logs()}")

    def stop(self) -> None:
        if any(p.poll() is None for p in self.procs[1:]):
            subprocess.run(
                ["scancel", "--user", "root"], capture_output=True, timeout=30
            )  # only this cluster's
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                out = subprocess.run(
                    ["squeue", "--noheader"], capture_output=True, text=True
                ).stdout
                if not out.strip():
                    break
                time.sleep(0.5)
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A started cluster; skipped (with the reason) where it cannot be had."""
    missing = [d for d in DAEMONS if not Path(d).exists()]
    if missing and os.geteuid() != 0:
        pytest.skip(
            f"{', '.join(missing)} missing and no root to install slurm-wlm and munge with apt-get"
        )
    if missing:
        # As scripts/run-tests.sh does, for a plain `pytest tests/slurm` on a fresh machine.
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    if os.geteuid() != 0:
        pytest.skip(
            "slurmd must run as root (it starts each job's tasks as the job's user); no root here"
        )
    # A short private folder: Unix socket paths are limited to 108 bytes.
    root = Path(os.path.realpath(tmp_path_factory.mktemp("slurm")))
    old_conf = os.environ.get("SLURM_CONF")
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
