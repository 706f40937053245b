"""Peak memory and time of ``pdl export --format onnx`` (and ``openvino``) for ResNet-50 (issue 26:
at most 4 GB peak RSS).

    python benchmarks/bench_export_memory.py                      # R50 OS32, ONNX
    python benchmarks/bench_export_memory.py --formats onnx openvino --model mnv3l

The bundle (random weights: memory and time do not depend on them) is saved once under
``--bundle-dir``; each export runs in a fresh ``pdl export`` process, whose peak resident memory
(``ru_maxrss`` of the child) and wall time are printed with the machine and the load average.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {"r50": "cityscapes/resnet50_os32", "mnv3l": "cityscapes/mobilenet_v3_large_os16"}
SUFFIX = {"onnx": "model.onnx", "openvino": "model.xml"}
GOAL_GB = 4.0


def make_bundle(name: str, directory: Path) -> Path:
    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model

    config = load_config(MODELS[name])
    config.model.pretrained_backbone = None
    spec = get_dataset_spec(config.dataset.name)
    return save_bundle(directory, build_model(config, num_classes=spec.num_classes), config, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="r50")
    parser.add_argument("--formats", nargs="+", default=["onnx"], choices=sorted(SUFFIX))
    parser.add_argument("--bundle-dir", default=None, help="default: a temporary folder")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(args.bundle_dir or tmp) / f"bench_{args.model}"
        if not (bundle / "bundle.json").is_file():
            # In a child, so that this process's memory does not count in the children's peak.
            code = "import sys, bench_export_memory as b; b.make_bundle(sys.argv[1], sys.argv[2])"
            env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
            cmd = [sys.executable, "-c", code, args.model, str(bundle)]
            subprocess.run(cmd, check=True, env=env)
        print(f"load average before: {os.getloadavg()}")
        for fmt in args.formats:
            out = Path(tmp) / fmt / SUFFIX[fmt]
            cmd = [sys.executable, "-m", "panoptic_deeplab", "export", "--model", str(bundle)]
            cmd += ["--format", fmt, "--out", str(out)]
            log = Path(tmp) / f"{fmt}.log"
            start = time.perf_counter()
            with open(log, "w") as output:
                child = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT)
                # wait4: this child's own peak resident memory (KiB on Linux).
                _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"{fmt} export failed:\n{log.read_text()[-2000:]}")
            peak = usage.ru_maxrss / 2**20
            size = sum(p.stat().st_size for p in out.parent.iterdir() if p.is_file())
            print(
                f"{args.model} {fmt}: {wall:.1f} s wall, peak RSS {peak:.2f} GiB "
                f"(goal <= {GOAL_GB} GB), files {size / 2**20:.0f} MiB; "
                f"load {os.getloadavg()[0]:.2f}"
            )
        print(f"machine: {os.cpu_count()} CPUs; load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
