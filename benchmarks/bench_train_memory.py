"""Peak memory (RSS) of a real `pdl train` run at Cityscapes' size, with Cityscapes' 19 classes.

    python benchmarks/bench_train_memory.py [--config cityscapes/mobilenet_v3_large_os16] \
        [--low-memory | --no-low-memory] [--steps 3] [--runs 1] [--height 1025 --width 2049]

No Cityscapes download is needed: a small synthetic street set is generated and written in the
Cityscapes layout (leftImg8bit/ + gtFine/*_instanceIds.png with Cityscapes label ids), so the
reader, the 19-class table, the tf.data pipeline, the model, the loss and the checkpoints are the
ones a Cityscapes run uses. Each run is `/usr/bin/time -v pdl train ...` (batch 1, a full-size
crop); prints the peak RSS of each run and their median, plus the seconds per step `pdl train`
logged after its first (traced) step. Without either flag `pdl train` chooses low-memory mode
itself (and prints its choice, shown here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Synthetic class -> Cityscapes label id (road, sidewalk, building, vegetation, sky, person, ...).
LABEL_IDS = {
    "road": 7,
    "sidewalk": 8,
    "building": 11,
    "vegetation": 21,
    "sky": 23,
    "person": 24,
    "car": 26,
    "bus": 28,
}


def write_cityscapes_layout(root: Path, height: int, width: int, num_train: int = 2) -> Path:
    """A synthetic set re-written as ROOT/cityscapes/{leftImg8bit,gtFine}/<split>/synth/..."""
    import cv2

    from panoptic_deeplab.datasets.coco_panoptic import read_segment_ids
    from panoptic_deeplab.datasets.specs import SYNTHETIC_CLASSES
    from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset

    source = make_synthetic_dataset(
        root / "synthetic", num_train=num_train, num_val=1, height=height, width=width, workers=1
    )
    out = root / "cityscapes"
    for split in ("train", "val"):
        data = json.loads((source / "annotations" / f"panoptic_{split}.json").read_text())
        images = {im["id"]: im for im in data["images"]}
        for k, ann in enumerate(data["annotations"]):
            ids = read_segment_ids(source / "annotations" / f"panoptic_{split}" / ann["file_name"])
            label = np.zeros(ids.shape, np.uint16)
            count: dict[int, int] = {}
            for seg in ann["segments_info"]:
                name, _, isthing = SYNTHETIC_CLASSES[seg["category_id"]]
                label_id = LABEL_IDS[name]
                if isthing:  # Cityscapes: labelId * 1000 + k, k from 0
                    count[label_id] = count.get(label_id, -1) + 1
                    label[ids == seg["id"]] = label_id * 1000 + count[label_id]
                else:
                    label[ids == seg["id"]] = label_id
            stem = f"synth_{k:06d}_000019"
            for sub in ("gtFine", "leftImg8bit"):
                (out / sub / split / "synth").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(out / "gtFine" / split / "synth" / f"{stem}_gtFine_instanceIds.png"), label
            )
            image = cv2.imread(str(source / split / images[ann["image_id"]]["file_name"]))
            cv2.imwrite(
                str(out / "leftImg8bit" / split / "synth" / f"{stem}_leftImg8bit.png"), image
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="cityscapes/mobilenet_v3_large_os16")
    parser.add_argument("--height", type=int, default=1025)
    parser.add_argument("--width", type=int, default=2049)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--low-memory", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs GNU time (/usr/bin/time; Debian package 'time')")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    peaks, step_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_cityscapes_layout(Path(tmp), args.height, args.width)
        for run in range(args.runs):
            command = [
                "/usr/bin/time",
                "-v",
                sys.executable,
                "-m",
                "panoptic_deeplab",
                "train",
                "--config",
                args.config,
                "--dataset",
                str(data),
                "--workdir",
                str(Path(tmp) / f"run{run}"),
                "--steps",
                str(args.steps),
                "--batch-size",
                "1",
                "--set",
                f"dataset.crop_size=[{args.height},{args.width}]",
                "--set",
                "train.log_every=1",
            ]
            if args.low_memory is not None:
                command.append("--low-memory" if args.low_memory else "--no-low-memory")
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode:
                sys.exit(f"pdl train failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
            kib = int(
                re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)
            )
            peaks.append(kib / 2**20)
            step_times += [float(s) for s in re.findall(r"\(([\d.]+) s/step\)", done.stdout)[1:]]
            choice = re.search(r"^memory: .*$", done.stdout, re.M)
            print(
                f"run {run + 1}: peak RSS {peaks[-1]:.2f} GiB; {choice.group(0) if choice else ''}",
                flush=True,
            )
    per_step = f", {statistics.median(step_times):.1f} s/step after the first" if step_times else ""
    mode = {None: " (default flags)", True: " --low-memory", False: " --no-low-memory"}[
        args.low_memory
    ]
    print(
        f"{args.config} {args.height}x{args.width}, batch 1, 19 classes{mode}: "
        f"median peak RSS {statistics.median(peaks):.2f} GiB over {args.runs} run(s){per_step}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
