"""Server time of the Review page's decisions and edits, and how many planted errors the ranking
finds, on generated synthetic sets (written under --work, never into the repository).

    python benchmarks/bench_review.py [--demo-images 8] [--big-images 500] [--ops 40]
                                      [--model assets/models/synthetic_demo] [--work /tmp/...]

Both sets are `pdl make-dataset synthetic` val splits at 256x512 (the demo model's size): the
"demo" set (seed 2027) with one planted error per image (benchmarks/planted_errors.py: relabel,
delete, merge, shift in turn) and a 500-image set (seed 2031). Each is scored once with the demo
model (`ReviewStore.score`, what `pdl review score` runs), then the ranking is walked from the top
and each open GT segment gets, in turn:

  decision  ``decide`` (accept or relabel to the model's class), then what the page shows next:
            ``next_item`` (the ranking, rebuilt as it changed), the next image's labels
            (``image_state``), its stored prediction and its picture
  edit      a brush stroke across the segment (``paint``), then the redraw: ``image_state`` and
            the ranking (``ranked``)
  undo      every fifth edit is undone (``undo``), with the same redraw

and the wall time of each is recorded (library level, in this process: what the page's server
spends; no browser). Prints p50 / p95 per kind and set, the planted errors' recall at 10 and 20,
the machine and its load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from planted_errors import plant_errors, recall_at  # next to this script, so on sys.path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu, flags = platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        info = []
    for line in info:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            cpu = value.strip()
        elif key.strip() == "flags":
            have = set(value.split())
            flags = " ".join(f for f in ("avx2", "avx512f", "fma") if f in have)
            break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu} ({os.cpu_count()} CPUs; {flags}); load average {load}"


def make_set(folder: Path, images: int, seed: int) -> Path:
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    if not (folder / "annotations" / "panoptic_val.json").is_file():
        make_synthetic_dataset(folder, 0, images, height=256, width=512, seed=seed, workers=2)
    return folder


def score(root: Path, store_dir: Path, model: Path):
    from panoptic_deeplab.review import ModelSource, ReviewStore

    store = ReviewStore(root, "val", store_dir, reviewer="bench")
    source = ModelSource(model, store.coco["categories"])
    start = time.perf_counter()
    n = store.score(source)
    seconds = time.perf_counter() - start
    print(f"  scored {n} images in {seconds:.1f} s ({seconds / max(n, 1):.2f} s per image)")
    return store, source


def _timed(samples: list[float], work, *args) -> None:
    start = time.perf_counter()
    work(*args)
    samples.append(time.perf_counter() - start)


def _decision(store, source, image_id, segment_id, new_class) -> None:
    if new_class is None:
        store.decide(image_id, segment_id, "accept")
    else:
        store.decide(image_id, segment_id, "relabel", new_class)
    nxt = store.next_item(source, after=(image_id, "gt_segment", segment_id))
    if nxt is not None:  # what the page shows next
        store.image_state(nxt["image_id"])
        store.prediction(source, nxt["image_id"])
        store.image(nxt["image_id"])


def _edit(store, source, image_id, segment_id, mask) -> None:
    store.paint(image_id, segment_id, mask, "add", tool="brush")
    store.image_state(image_id)
    store.ranked(source)


def _undo(store, source, image_id) -> None:
    store.undo()
    store.image_state(image_id)
    store.ranked(source)


def walk(store, source, ops: int) -> dict[str, list[float]]:
    """Decide, edit and (every fifth edit) undo on the ranking's open GT segments, from the top."""
    from panoptic_deeplab.review import brush_mask

    times: dict[str, list[float]] = {"decision": [], "edit": [], "undo": []}
    ranking = store.ranked(source)
    rows = ranking[ranking.kind == "gt_segment"].head(ops)
    for k, row in enumerate(rows.itertuples()):
        image_id, segment_id = row.image_id, int(row.segment_id)
        new_class = None
        if row.model_category_id == row.model_category_id:  # not NaN
            model, given = int(row.model_category_id), int(row.category_id)
            if model != given and store.is_thing(model) == store.is_thing(given):
                new_class = model
        _timed(times["decision"], _decision, store, source, image_id, segment_id, new_class)
        x, y, w, h = store.segment(image_id, segment_id).bbox
        stroke = [[x, y + h // 2], [x + w - 1, y + h // 2]]
        mask = brush_mask(store.image_state(image_id).ids.shape, stroke, radius=3)
        _timed(times["edit"], _edit, store, source, image_id, segment_id, mask)
        if k % 5 == 4:
            _timed(times["undo"], _undo, store, source, image_id)
    return times


def percentiles(samples: list[float]) -> str:
    ms = np.asarray(samples) * 1000
    return (
        f"p50 {np.percentile(ms, 50):6.1f} ms  p95 {np.percentile(ms, 95):6.1f} ms  "
        f"max {ms.max():6.1f} ms  (n={len(ms)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo-images", type=int, default=8)
    parser.add_argument("--big-images", type=int, default=500, help="0: skip the big set")
    parser.add_argument("--ops", type=int, default=40, help="decisions (and edits) per set")
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "synthetic_demo"))
    parser.add_argument("--work", help="folder for the generated sets (default: a new /tmp one)")
    parser.add_argument("--keep", action="store_true", help="keep --work afterwards")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_review-"))
    print(f"machine: {machine()}")
    print(f"python {platform.python_version()}; work folder {work}")
    results = []
    try:
        demo = make_set(work / "demo", args.demo_images, seed=2027)
        planted_file = work / "demo" / "planted.json"
        if not planted_file.exists():
            planted_file.write_text(json.dumps(plant_errors(demo)))
        planted = json.loads(planted_file.read_text())
        print(f"demo set: {args.demo_images} images, {len(planted)} planted errors")
        store, source = score(demo, work / "demo-store", Path(args.model))
        ranking = store.ranking(source)
        r10, r20 = recall_at(planted, ranking, 10), recall_at(planted, ranking, 20)
        print(
            f"  ranking: {len(ranking)} items; planted errors found in the top 10: {r10:.0%}, "
            f"top 20: {r20:.0%}"
        )
        for kind in ("relabel", "delete", "merge", "shift"):
            mine = [e for e in planted if e["kind"] == kind]
            if mine:
                print(f"    {kind:<8} recall@10 {recall_at(mine, ranking, 10):.0%} of {len(mine)}")
        results.append(("demo", len(store.image_ids()), walk(store, source, args.ops)))
        if args.big_images:
            big = make_set(work / "big", args.big_images, seed=2031)
            print(f"big set: {args.big_images} images")
            store, source = score(big, work / "big-store", Path(args.model))
            print(f"  ranking: {len(store.ranked(source))} items")
            results.append(("big", args.big_images, walk(store, source, args.ops)))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nserver time (library calls the Review page makes), wall clock:")
    for name, images, times in results:
        for kind, samples in times.items():
            if samples:
                print(f"  {name:<5} {images:>4} images  {kind:<8} {percentiles(samples)}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
