"""benchmarks/gpu_check.sh in its dry mode: the whole check runs on a CPU machine, every step is
reported in one JSON file, and the GPU-only steps say they were skipped."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_mode_runs_every_step_and_writes_one_json(tmp_path):
    out = tmp_path / "check.json"
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    steps = report["steps"]
    assert report["mode"].startswith("dry") and report["failed_steps"] == []
    for gpu_only in ("nvidia_smi", "tensorflow_sees_gpu"):
        assert steps[gpu_only]["status"] == "skipped" and "dry" in steps[gpu_only]["why"]
    for name in (
        "make_dataset",
        "train",
        "inference_fp32",
        "inference_auto",
        "evaluate",
        "job_on_cpu",
    ):
        assert steps[name]["status"] == "ok", steps[name]
        assert steps[name]["seconds"] > 0
    assert steps["train"]["steps"] == 3 and steps["train"]["steps_per_s"] > 0
    assert steps["train"]["peak_gpu_memory_mib"].startswith("skipped")
    for precision in ("inference_fp32", "inference_auto"):
        (model,) = steps[precision]["models"].values()
        assert model["end_to_end_images_per_s"] > 0 and model["model_images_per_s"] > 0
    assert steps["inference_fp32"]["models"]["synthetic/tiny"]["dtype_policy"] == "float32"
    assert 0.0 <= steps["evaluate"]["miou"] <= 1.0 and steps["evaluate"]["images"] == 2
    assert steps["job_on_cpu"]["state"] == "succeeded"
    assert not Path(report["workdir"]).exists()  # the scratch folder is removed


def test_gpu_check_reports_a_failed_step_and_goes_on(tmp_path, monkeypatch):
    from benchmarks import gpu_check

    report = gpu_check.Report(tmp_path / "r.json", dry=True)
    assert report.run("broken", lambda: 1 / 0) is None
    assert report.run("fine", lambda: {"x": 1}) == {"x": 1}
    saved = json.loads((tmp_path / "r.json").read_text())["steps"]
    assert saved["broken"]["status"] == "failed" and "ZeroDivisionError" in saved["broken"]["error"]
    assert saved["fine"] == {"status": "ok", "x": 1, "seconds": saved["fine"]["seconds"]}
