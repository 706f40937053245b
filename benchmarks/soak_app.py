"""Soak test of a long-running app: many short browser sessions, and the server's memory after each
burst of them (issue 24).

Starts `pdl app` (the shipped demo model, the demo data set, a temporary work directory) on
127.0.0.1, then opens ``--sessions`` sessions in bursts of ``--burst`` at once at the websocket
level (what a browser tab does: connect, run the Inspect page, which shows the demo model's output
on its first sample, read until the run has finished, close). After each burst it prints the
server's RSS; at the end it waits ``--idle`` seconds and prints it again. Loopback only, bounded in
count and time.

    python benchmarks/soak_app.py --sessions 100 --burst 10 --out soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from app_client import AppServer, machine, open_page, rss_mb


async def burst(url: str, n: int) -> int:
    results = await asyncio.gather(*(open_page(url) for _ in range(n)), return_exceptions=True)
    return sum(isinstance(r, dict) and r["finished_s"] is not None for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--idle", type=float, default=150.0, help="seconds to wait at the end")
    parser.add_argument("--out", type=Path, help="write the curve as JSON here")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 1000 or not 1 <= args.burst <= 50:
        parser.error("--sessions 1..1000, --burst 1..50")

    print(f"machine: {machine()}")
    curve = []
    with tempfile.TemporaryDirectory(prefix="pdl-soak-") as tmp, AppServer(Path(tmp)) as app:
        print(f"{'sessions':>8} {'finished':>8} {'RSS MB':>8} {'s':>6}")
        started, done, finished = time.monotonic(), 0, 0
        curve.append({"sessions": 0, "rss_mb": rss_mb(app.pid), "s": 0.0})
        while done < args.sessions:
            n = min(args.burst, args.sessions - done)
            finished += asyncio.run(burst(app.url, n))
            done += n
            point = {"sessions": done, "finished": finished, "rss_mb": rss_mb(app.pid)}
            point["s"] = round(time.monotonic() - started, 1)
            curve.append(point)
            print(f"{done:8d} {finished:8d} {point['rss_mb']:8.0f} {point['s']:6.0f}", flush=True)
        time.sleep(args.idle)
        idle = {"sessions": done, "after_idle_s": args.idle, "rss_mb": rss_mb(app.pid)}
        curve.append(idle)
        print(f"after {args.idle:.0f} s idle: RSS {idle['rss_mb']:.0f} MB")
    print(f"load average after: {machine().rsplit('load average ', 1)[1]}")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "curve": curve}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
