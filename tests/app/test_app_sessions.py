"""Ten browser sessions opened at once on a fresh app each get their page (issue 28 item 10: with
Streamlit's magic on, sessions compiling a page at once could die in CPython 3.11's ast.parse).

A session is what a browser tab does at the websocket level: connect to /_stcore/stream, ask for
a run of the default page (Inspect), read until the run has finished. The server is the command
`pdl app` runs, with no model given (the page waits for an image before it loads one)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from panoptic_deeplab.commands.app import app_environment, streamlit_command

SESSIONS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    port = free_port()
    env = app_environment(model=None, data=None, workdir=tmp_path / "work")
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        streamlit_command(port),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("the app did not start:\n" + (tmp_path / "server.log").read_text())
                time.sleep(0.3)
        yield f"ws://127.0.0.1:{port}/_stcore/stream", tmp_path / "server.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


async def open_session(url: str, timeout_s: float = 60) -> dict:
    """One fresh tab: what its page run showed (headings, exceptions) and how it ended."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    seen = {"headings": [], "exceptions": [], "finished": None}
    async with websockets.connect(url, subprotocols=["streamlit"], max_size=None) as ws:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.page_script_hash = ""
        await ws.send(request.SerializeToString())
        deadline = time.monotonic() + timeout_s
        while seen["finished"] is None and time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "exception":
                    seen["exceptions"].append(element.exception.message)
                elif element.WhichOneof("type") == "heading":
                    seen["headings"].append(element.heading.body)
            elif kind == "script_finished":
                seen["finished"] = msg.script_finished
    return seen


def test_ten_fresh_sessions_opened_at_once_each_get_their_page(app_url):
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    url, log = app_url

    async def all_at_once():
        return await asyncio.gather(*(open_session(url) for _ in range(SESSIONS)))

    sessions = asyncio.run(all_at_once())
    finished = ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY
    assert [s["finished"] for s in sessions] == [finished] * SESSIONS, log.read_text()[-3000:]
    assert [s["exceptions"] for s in sessions] == [[]] * SESSIONS
    assert [s["headings"][:1] for s in sessions] == [["Inspect"]] * SESSIONS  # not a blank page
    assert "SystemError" not in log.read_text()
