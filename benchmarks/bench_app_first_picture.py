"""The app's first picture: seconds from a fresh `pdl app`'s first page request until the Inspect
page shows the demo model's output on its first sample (issue 26), against the floor of importing
TensorFlow, measured in turns in one run.

    python benchmarks/bench_app_first_picture.py --rounds 2 --out first_picture.json

Each round imports TensorFlow in a fresh process (the floor), then starts `pdl app` (the shipped
demo model and demo data set, a temporary work directory) and opens one page at the websocket
level as soon as the server answers, timing its first element (the page drawn), its first
picture and its end. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app_client import AppServer, machine, open_page


def tensorflow_import_s() -> float:
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True)
    return time.monotonic() - began


def app_round() -> dict:
    with tempfile.TemporaryDirectory(prefix="pdl-first-picture-") as tmp:
        workdir = Path(tmp)
        # the demo data set is made on first launch: make it before the clock starts
        make_data = "import sys; from pathlib import Path; from panoptic_deeplab.commands.app "
        make_data += "import ensure_demo_data; ensure_demo_data(Path(sys.argv[1]))"
        subprocess.run([sys.executable, "-c", make_data, tmp], check=True, capture_output=True)
        with AppServer(workdir) as app:
            server_up = app.healthy - app.started
            page = asyncio.run(open_page(app.url))
    return {"server_up_s": round(server_up, 2), **page}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds 1..10")
    print(f"machine: {machine()}")
    rounds = []
    for k in range(args.rounds):
        floor = tensorflow_import_s()
        app = app_round()
        rounds.append({"tensorflow_import_s": round(floor, 2), **app})
        print(f"round {k + 1}: {json.dumps(rounds[-1])}", flush=True)
    floor = statistics.median(r["tensorflow_import_s"] for r in rounds)
    pictures = [r["first_picture_s"] for r in rounds if r["first_picture_s"] is not None]
    if not pictures:
        print("no round showed a picture")
        return 1
    picture = statistics.median(pictures)
    drawn = statistics.median(r["first_element_s"] for r in rounds)
    print(
        f"first picture {picture:.1f} s after the page request (median of {len(pictures)}); "
        f"page drawn after {drawn:.1f} s; floor (import tensorflow) {floor:.1f} s; "
        f"ratio {picture / floor:.2f}x (goal 1.5x)"
    )
    print(f"load average after: {machine().rsplit('load average ', 1)[1]}")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "rounds": rounds}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
