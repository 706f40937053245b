"""`pdl pq`: panoptic quality of COCO-panoptic predictions, like panopticapi's CLI (no TF)."""

from __future__ import annotations

import json
import os
import sys
import time


def configure_parser(parser) -> None:
    parser.add_argument("--gt-json", required=True, help="COCO-panoptic GT JSON (with categories)")
    parser.add_argument("--pred-json", required=True, help="prediction JSON (annotations)")
    parser.add_argument("--gt-folder", help="GT PNG folder (default: GT JSON path without .json)")
    parser.add_argument(
        "--pred-folder", help="prediction PNG folder (default: pred JSON path without .json)"
    )
    parser.add_argument(
        "--out", help="write the results (All/Things/Stuff, per_class) to this JSON file"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="processes reading PNGs (default 0 = one per core)"
    )
    parser.add_argument(
        "--per-image",
        action="store_true",
        help="also store per-image PQ and per-segment match details in --out",
    )


def _fmt(x) -> str:
    return "   n/a" if x is None else f"{100 * x:6.2f}"


def format_table(result: dict) -> str:
    lines = [f"{'':10s}|{'PQ':>7s} {'SQ':>7s} {'RQ':>7s} {'N':>5s}", "-" * 40]
    for name in ("All", "Things", "Stuff"):
        r = result[name]
        lines.append(f"{name:10s}| {_fmt(r['pq'])}  {_fmt(r['sq'])}  {_fmt(r['rq'])} {r['n']:5d}")
    return "\n".join(lines)


def run(args) -> int:
    from ..evaluation.coco_io import pq_from_files
    from ..glibc_malloc import set_malloc_options

    # Each image allocates and frees the same megabyte-sized arrays: keep them in the heap instead
    # of glibc's default of mmapping and unmapping each one: its page faults cost a third of a run.
    set_malloc_options(mmap_threshold=32 << 20, trim_threshold=256 << 20)
    start = time.perf_counter()
    result = pq_from_files(
        args.gt_json,
        args.pred_json,
        args.gt_folder,
        args.pred_folder,
        workers=args.workers,
        per_image=args.per_image,
        processes=True,
    )
    print(format_table(result))
    print(f"time: {time.perf_counter() - start:.2f} s", file=sys.stderr)
    if args.out:
        out = {k: result[k] for k in ("All", "Things", "Stuff")}
        out["per_class"] = {
            str(cid): {
                k: r[k]
                for k in (
                    "pq",
                    "sq",
                    "rq",
                    "tp",
                    "fp",
                    "fn",
                    "iou_sum",
                    "evaluated",
                    "isthing",
                    "name",
                )
            }
            for cid, r in result["per_class"].items()
        }
        if args.per_image:
            out["per_image"] = {str(k): v for k, v in result["per_image"].items()}
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0
