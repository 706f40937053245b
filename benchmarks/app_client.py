"""Drive a `pdl app` server the way a browser tab does, for the app benchmarks: start the server
on a free loopback port, open sessions at the websocket level (connect to /_stcore/stream, ask for
a run of the default page, read the page's messages), stop the server."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def machine() -> str:
    flags = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = {f for f in ("avx2", "avx512f", "amx_tile") if f" {f}" in cpuinfo}
        flags = ", ".join(sorted(found)) or "no AVX2"
    except OSError:
        pass
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs ({flags}), "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class AppServer:
    """``with AppServer(workdir) as app:`` a running `pdl app` (the shipped demo model and demo
    data unless ``args`` say otherwise); ``app.url``, ``app.pid``, ``app.started`` (monotonic)."""

    def __init__(self, workdir: Path, *args: str, start_timeout_s: float = 180):
        self.workdir, self.args, self.start_timeout_s = Path(workdir), args, start_timeout_s

    def __enter__(self) -> AppServer:
        port = free_port()
        self.log_path = self.workdir / "server.log"
        self._log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "panoptic_deeplab", "app", "--port", str(port)]
            + ["--workdir", str(self.workdir), *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            start_new_session=True,
        )
        self.pid, self.url = self.proc.pid, f"ws://127.0.0.1:{port}/_stcore/stream"
        deadline = self.started + self.start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(
                        "the app did not start:\n" + self.log_path.read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        self.healthy = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()


async def open_page(url: str, timeout_s: float = 300) -> dict:
    """One fresh tab's run of the default page: seconds from the request to its first element,
    to its first picture (a Plotly chart) and to the run's end; ``finished``: the run ended."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    times = {"first_element_s": None, "first_picture_s": None, "finished_s": None}
    began = time.monotonic()
    async with websockets.connect(
        url, subprotocols=["streamlit"], max_size=None, open_timeout=30
    ) as ws:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.page_script_hash = ""
        await ws.send(request.SerializeToString())
        deadline = began + timeout_s
        while times["finished_s"] is None and time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            now = round(time.monotonic() - began, 2)
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                if times["first_element_s"] is None:
                    times["first_element_s"] = now
                element = msg.delta.new_element.WhichOneof("type")
                if element == "plotly_chart" and times["first_picture_s"] is None:
                    times["first_picture_s"] = now
            elif kind == "script_finished":
                times["finished_s"] = now
    return times
