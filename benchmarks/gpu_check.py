"""One GPU check of the whole product, written to one JSON file (run by gpu_check.sh).

    python benchmarks/gpu_check.py [--out gpu_check.json] [--workdir DIR] [--dry]
        [--batch-size 8] [--train-steps 50]

Steps, each timed and recorded (a failing step is recorded with its error; the rest still run):
``nvidia-smi``; whether TensorFlow sees the GPU; a synthetic data set of 1025x2049 images; 50
training steps of ``cityscapes/mobilenet_v3_large_os16`` (steps/s after the first logged row, peak
GPU memory polled with nvidia-smi while TensorFlow grows its memory as needed); inference of
MobileNetV3-L and ResNet-50 at 1025x2049 in fp32 and with the precision ``--precision auto`` picks
(images/s, model and end to end with post-processing, from ``bench_inference.py``); ``pdl
evaluate`` on 20 images; one job started with ``pdl jobs --gpus 0 submit`` and waited for.

``--dry`` runs the same steps on the CPU at a tiny size (a 64x128 data set, ``synthetic/tiny``,
3 training steps, 2 evaluation images, a 65x129 inference) and marks the GPU-only steps
(nvidia-smi, the GPU's visibility and memory, ``--gpus 0``) as skipped, saying so: it proves the
script works on a machine without a GPU (the test suite runs it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = {
    "height": 1025,
    "width": 2049,
    "train": 8,
    "val": 20,
    "config": "cityscapes/mobilenet_v3_large_os16",
}
DRY = {"height": 64, "width": 128, "train": 4, "val": 2, "config": "synthetic/tiny"}


class Report:
    """The JSON report: one entry per step with its status, seconds and results."""

    def __init__(self, path: Path, dry: bool):
        self.path = path
        self.data = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mode": "dry (CPU, tiny sizes; GPU steps skipped)" if dry else "gpu",
            "machine": {"host": platform.node(), "python": sys.version.split()[0]},
            "steps": {},
        }

    def skip(self, name: str, why: str) -> None:
        print(f"[{name}] skipped: {why}", flush=True)
        self.data["steps"][name] = {"status": "skipped", "why": why}
        self.save()

    def run(self, name: str, fn) -> dict | None:
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        try:
            result = fn() or {}
            entry = {"status": "ok", **result}
        except Exception as error:  # noqa: BLE001 - a failed step is recorded and the check goes on
            result = None
            entry = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        entry["seconds"] = round(time.perf_counter() - start, 2)
        self.data["steps"][name] = entry
        print(f"[{name}] {entry['status']} in {entry['seconds']} s", flush=True)
        self.save()
        return result

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)


def pdl(*args: str, log: Path) -> str:
    """Run ``pdl ARGS`` with this interpreter; its output goes to ``log``; a failure raises with the
    log's tail."""
    env = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "panoptic_deeplab", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    text = log.read_text(errors="replace")
    if code != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"pdl {' '.join(args[:2])} exited with {code}; log {log}:\n{tail}")
    return text


class GpuMemoryPoller:
    """Peak memory used on GPU 0 (MiB, from nvidia-smi) while the block runs."""

    def __init__(self):
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        query = [
            "nvidia-smi",
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ]
        while not self._stop.is_set():
            try:
                used = int(subprocess.check_output(query, text=True, timeout=10).strip())
                self.peak_mib = max(self.peak_mib, used)
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def steps_per_second(metrics_csv: Path) -> dict:
    """Steps/s between the first and the last logged row (the first row holds the tracing)."""
    with open(metrics_csv) as f:
        rows = [r for r in csv.DictReader(f) if r.get("elapsed_s")]
    if len(rows) < 2:
        return {"logged_rows": len(rows)}
    steps = int(rows[-1]["step"]) - int(rows[0]["step"])
    seconds = float(rows[-1]["elapsed_s"]) - float(rows[0]["elapsed_s"])
    return {
        "steps_per_s": round(steps / seconds, 3) if seconds > 0 else None,
        "first_logged_step": int(rows[0]["step"]),
        "seconds_to_first_logged_step": float(rows[0]["elapsed_s"]),
        "images_per_s": float(rows[-1]["images_per_sec"])
        if rows[-1].get("images_per_sec")
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="gpu_check.json", help="the JSON report")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one, removed)")
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes, GPU steps skipped")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (one GPU)")
    parser.add_argument("--train-steps", type=int, default=50)
    args = parser.parse_args(argv)
    size = DRY if args.dry else FULL
    train_steps = 3 if args.dry else args.train_steps
    batch = 2 if args.dry else args.batch_size
    report = Report(Path(args.out).resolve(), args.dry)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pdl-gpu-check-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    report.data["workdir"] = str(work)
    gpu_skip = "dry mode: no GPU is used"

    if args.dry:
        report.skip("nvidia_smi", gpu_skip)
        report.skip("tensorflow_sees_gpu", gpu_skip)
    else:
        report.run(
            "nvidia_smi",
            lambda: {"output": subprocess.check_output(["nvidia-smi"], text=True, timeout=60)},
        )

        def sees_gpu():
            code = (
                "import json, tensorflow as tf; g = tf.config.list_physical_devices('GPU'); "
                "print(json.dumps({'tensorflow': tf.__version__, 'gpus': [d.name for d in g], "
                "'built_with_cuda': tf.test.is_built_with_cuda()}))"
            )
            found = json.loads(
                subprocess.check_output([sys.executable, "-c", code], text=True).splitlines()[-1]
            )
            if not found["gpus"]:
                raise RuntimeError(f"TensorFlow sees no GPU: {found}")
            return found

        report.run("tensorflow_sees_gpu", sees_gpu)

    data = work / "data"

    def make_dataset():
        pdl(
            "make-dataset", "synthetic", "--out", str(data),
            "--num-train", str(size["train"]), "--num-val", str(size["val"]),
            "--height", str(size["height"]), "--width", str(size["width"]),
            log=work / "make_dataset.log",
        )  # fmt: skip
        return {
            "images": f"{size['train']} train + {size['val']} val, {size['height']}x{size['width']}"
        }

    report.run("make_dataset", make_dataset)

    run = work / "train"

    def train():
        arguments = (
            "train", "--config", size["config"], "--dataset", str(data), "--workdir", str(run),
            "--steps", str(train_steps), "--batch-size", str(batch), "--skip-dataset-check",
            "--set", "train.log_every=1" if args.dry else "train.log_every=10",
        )  # fmt: skip
        if args.dry:
            pdl(*arguments, log=work / "train.log")
            memory = {"peak_gpu_memory_mib": "skipped (dry mode)"}
        else:
            with GpuMemoryPoller() as poller:
                pdl(*arguments, log=work / "train.log")
            memory = {"peak_gpu_memory_mib": poller.peak_mib}
        return {
            "config": size["config"],
            "steps": train_steps,
            "batch_size": batch,
            **steps_per_second(run / "metrics.csv"),
            **memory,
        }

    report.run("train", train)

    def inference(dtype: str):
        out = work / f"inference_{dtype}.json"
        models = ["synthetic/tiny"] if args.dry else ["mnv3l", "r50"]
        height, width = (65, 129) if args.dry else (1025, 2049)
        command = [
            sys.executable, str(HERE / "bench_inference.py"), "--models", *models,
            "--size", str(height), str(width), "--runs", "2" if args.dry else "10",
            "--dtype", dtype, "--json", str(out), *(["--no-peak"] if args.dry else []),
        ]  # fmt: skip
        log = work / f"inference_{dtype}.log"
        env = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true", TF_CPP_MIN_LOG_LEVEL="2")
        with open(log, "w") as f:
            subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env, check=True)
        rows = json.loads(out.read_text())
        return {
            "size": f"{height}x{width}",
            "models": {
                r["config"]: {
                    "dtype_policy": r["dtype_policy"],
                    "model_images_per_s": round(1 / r["model_s"]["median"], 2),
                    "end_to_end_images_per_s": round(1 / r["end_to_end_s"]["median"], 2)
                    if "end_to_end_s" in r
                    else None,
                    "first_call_s": r["first_call_s"],
                }
                for r in rows
            },
        }

    report.run("inference_fp32", lambda: inference("float32"))
    report.run("inference_auto", lambda: inference("auto"))

    model = run / "model"

    def evaluate():
        pdl(
            "evaluate", "--model", str(model), "--dataset", str(data), "--limit", str(size["val"]),
            "--ap", "none", "--skip-dataset-check", "--out", str(work / "evaluate.json"),
            log=work / "evaluate.log",
        )  # fmt: skip
        return {"images": size["val"], **_headline(work / "evaluate.json")}

    report.run("evaluate", evaluate)

    def job():
        gpus = [] if args.dry else ["--gpus", "0"]
        text = pdl(
            "jobs", "--root", str(work / "jobs"), "--name", "gpu-check", *gpus, "submit",
            "evaluate", "--model", str(model), "--dataset", str(data), "--limit", "2",
            "--ap", "none", "--skip-dataset-check",
            log=work / "job_submit.log",
        )  # fmt: skip
        found = re.search(r"started job (\d+)", text)
        if not found:
            raise RuntimeError(f"no job id in: {text[-500:]}")
        job_id = found.group(1)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            shown = pdl("jobs", "--root", str(work / "jobs"), "show", job_id, log=work / "job.log")
            state = re.search(rf"job {job_id} \S+: (\w+)", shown)
            if state and state.group(1) not in ("queued", "running", "starting"):
                if state.group(1) != "succeeded":
                    raise RuntimeError(f"job {job_id} ended {state.group(1)}:\n{shown[-800:]}")
                return {
                    "job": int(job_id),
                    "state": state.group(1),
                    "gpus": "0" if gpus else "none (dry)",
                }
            time.sleep(2)
        raise RuntimeError(f"job {job_id} still not finished after 300 s")

    report.run("job_on_gpu_0" if not args.dry else "job_on_cpu", job)

    report.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    failed = [k for k, v in report.data["steps"].items() if v["status"] == "failed"]
    report.data["failed_steps"] = failed
    report.save()
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(f"report: {report.path}; failed steps: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _headline(path: Path) -> dict:
    """PQ / mIoU from a `pdl evaluate --out` file, whatever its nesting."""
    found = {}

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("pq", "miou", "sq", "rq") and isinstance(inner, (int, float)):
                    found.setdefault(key, inner)
                else:
                    walk(inner)

    walk(json.loads(path.read_text()))
    return found


if __name__ == "__main__":
    sys.exit(main())
