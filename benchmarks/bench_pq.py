"""Compare `pdl pq` with hotcoco and panopticapi on the same generated COCO-panoptic files.

    python benchmarks/bench_pq.py [--images 50] [--height 512 --width 1024] [--runs 3] [--workers 0]
                                  [--gt-writer opencv|pil]

Each contender runs as a whole process (``python -c ...`` / the ``pdl`` command) so start-up and
imports count;
panopticapi runs ``pq_compute`` in a subprocess too (its own Pool over all cores). ``pdl pq`` and
hotcoco take turns, run by run; prints the median wall time of ``--runs`` runs each (panopticapi:
one run) and checks that the three PQ values agree. Our package is byte-compiled first, as an
installed one is. Predictions are
written by OpenCV (as ``pdl predict`` writes them); GT by OpenCV or, with ``--gt-writer pil``, by
PIL as COCO's own files are (their Paeth rows take the slower OpenCV route in ``pdl pq``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CATEGORIES = [{"id": i, "name": f"stuff{i}", "isthing": 0} for i in range(8)] + [
    {"id": i, "name": f"thing{i}", "isthing": 1} for i in range(8, 16)
]


def _write_png(path: Path, ids: np.ndarray, writer: str = "opencv") -> None:
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
    if writer == "pil":
        from PIL import Image

        Image.fromarray(rgb).save(path)
    else:
        import cv2

        cv2.imwrite(str(path), rgb[..., ::-1])


def _scene(rng, h, w, segments):
    """About ``segments`` segments: stuff bands plus thing boxes; labels as class*1000+inst."""
    lab = (np.arange(h)[:, None] * 5 // h + rng.integers(0, 3)) * 1000 + np.zeros((h, w), np.int64)
    for inst in range(1, segments - 4):
        bh, bw = rng.integers(h // 20, h // 4), rng.integers(w // 20, w // 6)
        y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
        lab[y : y + bh, x : x + bw] = int(rng.integers(8, 16)) * 1000 + inst
    lab[: h // 30] = -1  # void strip
    return lab


def _segments(lab, is_gt):
    ids = np.where(lab < 0, 0, lab + 1)
    u, c = np.unique(ids[ids > 0], return_counts=True)
    infos = []
    for s, a in zip(u.tolist(), c.tolist()):
        info = {"id": s, "category_id": (s - 1) // 1000}
        if is_gt:
            info |= {"iscrowd": 0, "area": a, "bbox": [0, 0, 1, 1]}
        infos.append(info)
    return ids, infos


def generate(
    root: Path,
    n: int,
    h: int,
    w: int,
    seed: int = 2,
    gt_writer: str = "opencv",
    pred_writer: str = "opencv",
) -> None:
    rng = np.random.default_rng(seed)
    for sub in ("gt", "pred"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    anns = {"gt": [], "pred": []}
    images = []
    for k in range(n):
        gt = _scene(rng, h, w, 25)
        pred = np.roll(gt, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        flip = rng.random(pred.shape[:1]) < 0.05
        pred[flip] = np.where(pred[flip] >= 8000, pred[flip] + 1, pred[flip])  # some split segments
        name = f"{k:05d}.png"
        images.append({"id": k, "file_name": name, "height": h, "width": w})
        for sub, lab in (("gt", gt), ("pred", pred)):
            ids, infos = _segments(lab, sub == "gt")
            _write_png(root / sub / name, ids, gt_writer if sub == "gt" else pred_writer)
            anns[sub].append({"image_id": k, "file_name": name, "segments_info": infos})
    for sub in ("gt", "pred"):
        (root / f"{sub}.json").write_text(
            json.dumps({"images": images, "annotations": anns[sub], "categories": CATEGORIES})
        )


def _run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + sys of the process and its children) of one run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, proc.stdout


def _time_interleaved(cmds: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, str]]:
    """Median wall and CPU time of each command, the commands taking turns run by run (this
    machine's speed drifts over minutes: blocks of runs would compare different speeds)."""
    walls, cpus, outs = {k: [] for k in cmds}, {k: [] for k in cmds}, {}
    for _ in range(runs):
        for name, cmd in cmds.items():
            wall, cpu, outs[name] = _run(cmd)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {k: (statistics.median(walls[k]), statistics.median(cpus[k]), outs[k]) for k in cmds}


# `pdl pq` with png_ids' own decoder turned off: every PNG takes its OpenCV route.
_OPENCV_ONLY = """
import sys
from panoptic_deeplab.datasets import png_ids

png_ids.decode_segment_runs = lambda data: None
from panoptic_deeplab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="workers for pdl pq (default 0: its own default, one thread per core)",
    )
    parser.add_argument(
        "--gt-writer",
        choices=("opencv", "pil"),
        default="opencv",
        help="library that writes the GT PNGs (COCO's own are PIL-written)",
    )
    parser.add_argument(
        "--pred-writer",
        choices=("opencv", "pil"),
        default="opencv",
        help="library that writes the prediction PNGs (pdl predict: OpenCV; detectron2: PIL)",
    )
    parser.add_argument(
        "--with-opencv-decoder",
        action="store_true",
        help="also time pdl pq with its own PNG decoder (datasets/png_ids.py) turned off, every "
        "PNG decoded by OpenCV: does the hand-written decoder earn its place?",
    )
    parser.add_argument("--skip-panopticapi", action="store_true")
    args = parser.parse_args()
    py = sys.executable
    # Byte-compile our package as an installed package would be (an editable install under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile it on every run); the others are wheels.
    import compileall

    import panoptic_deeplab

    compileall.compile_dir(Path(panoptic_deeplab.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(
            root,
            args.images,
            args.height,
            args.width,
            gt_writer=args.gt_writer,
            pred_writer=args.pred_writer,
        )
        gt, pred = str(root / "gt.json"), str(root / "pred.json")
        result = root / "r.json"
        hot_code = (
            "import sys, json; from hotcoco.panoptic import PanopticEval; "
            "ev = PanopticEval(sys.argv[1], sys.argv[2]); ev.run(); "
            "print(json.dumps(ev.results()['All']['pq']))"
        )
        pdl = Path(py).with_name("pdl")  # the installed command, as users run it
        pdl_cmd = [str(pdl)] if pdl.exists() else [py, "-m", "panoptic_deeplab"]
        cmds = {
            "pdl pq": [
                *pdl_cmd,
                "pq",
                "--gt-json",
                gt,
                "--pred-json",
                pred,
                "--out",
                str(result),
                "--workers",
                str(args.workers),
            ],
            "hotcoco (Python API)": [py, "-c", hot_code, gt, pred],
        }
        if args.with_opencv_decoder:
            cmds["pdl pq, OpenCV decoder"] = [
                py,
                "-c",
                _OPENCV_ONLY,
                *cmds["pdl pq"][len(pdl_cmd) :],
            ]
        timed = _time_interleaved(cmds, args.runs)
        rows = [
            ("pdl pq", *timed["pdl pq"][:2], json.loads(result.read_text())["All"]["pq"]),
            (
                "hotcoco (Python API)",
                *timed["hotcoco (Python API)"][:2],
                float(timed["hotcoco (Python API)"][2].strip().splitlines()[-1]),
            ),
        ]
        if args.with_opencv_decoder:
            rows.append(
                (
                    "pdl pq, OpenCV decoder",
                    *timed["pdl pq, OpenCV decoder"][:2],
                    json.loads(result.read_text())["All"]["pq"],
                )
            )
        if not args.skip_panopticapi:
            pa_code = (
                "import sys, json; from panopticapi.evaluation import pq_compute; "
                "r = pq_compute(sys.argv[1], sys.argv[2]); print(json.dumps(r['All']['pq']))"
            )
            t, c, out = _run([py, "-c", pa_code, gt, pred])
            rows.append(("panopticapi pq_compute", t, c, float(out.strip().splitlines()[-1])))
    print(
        f"{args.images} images {args.height}x{args.width} (GT written by {args.gt_writer}, "
        f"predictions by {args.pred_writer}), "
        f"median of {args.runs} runs (panopticapi: 1 run), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for name, t, c, pq in rows:
        print(
            f"{name:24s} wall {t:7.3f} s  CPU {c:7.3f} s   PQ {pq:.12f}   "
            f"wall {rows[-1][1] / t:6.1f}x "
            f"CPU {rows[-1][2] / max(c, 1e-9):6.1f}x vs last row"
        )
    assert max(abs(r[3] - rows[0][3]) for r in rows) < 1e-9, "PQ values disagree"


if __name__ == "__main__":
    main()
