"""The product installs like any other package: its wheel declares its dependencies and carries the
app and the demo model, and an installation outside the repository runs every command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[req.name.lower()] = req
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_the_pinned_requirements_satisfy_the_declared_dependencies():
    pins, declared = _pins(), _declared()
    assert {r.name.lower() for r in declared} == set(pins), (
        "pyproject.toml and requirements.txt list different packages"
    )
    for req in declared:
        pinned = pins[req.name.lower()]
        exact = [s.version for s in pinned.specifier if s.operator == "=="]
        if exact:
            assert req.specifier.contains(Version(exact[0])), (
                f"{req.name}: pin {exact[0]} outside {req.specifier}"
            )
        else:  # a range in requirements.txt too: the same range
            assert req.specifier == pinned.specifier, (
                f"{req.name}: {req.specifier} vs requirements.txt {pinned.specifier}"
            )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (out / "build.log").write_text(build.stdout + build.stderr)  # -v: the build backend's output
    (path,) = out.glob("panoptic_deeplab-*.whl")
    return path


def test_the_build_prints_no_setuptools_warnings(wheel):
    """Folders of data only (configs/<dataset>, assets/models/<name>) are listed as packages:
    setuptools prints ~40 lines of "Package would be ignored" for each one that is not."""
    log = (wheel.parent / "build.log").read_text()
    assert "Building wheel for panoptic-deeplab" in log  # the backend's output is in the log
    assert "would be ignored" not in log and "is absent from the `packages`" not in log


def test_the_wheel_carries_the_app_the_demo_model_and_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "panoptic_deeplab/app/main.py",
        "panoptic_deeplab/app/state.py",
        "panoptic_deeplab/app/pages/inspect.py",
        "panoptic_deeplab/app/components/figures.py",
        "panoptic_deeplab/assets/models/synthetic_demo/model.weights.h5",
        "panoptic_deeplab/assets/models/synthetic_demo/bundle.json",
        "panoptic_deeplab/configs/synthetic/tiny.yaml",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"
    assert not [n for n in names if n.startswith(("tests/", "app/", "assets/", "core/"))]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: tensorflow" in text and "Provides-Extra: mlflow" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_installed_wheel_runs_the_app_and_every_command_outside_the_repository(wheel, tmp_path):
    """A fresh venv outside the repository, the wheel installed into it (its dependencies come from
    this environment's site-packages, added as a path: nothing is downloaded). No file of the
    checkout is reachable: the working directory is a temp dir and PYTHONPATH is unset."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    deps = [
        p for p in sys.path if p.endswith("site-packages")
    ]  # this environment's, without its .pth hooks
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    py = venv / "bin" / "python"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PDL_APP_MODEL", "PDL_APP_DATA")
    }
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PDL_WORKDIR=str(tmp_path / "work")
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        env=env,
    )
    pdl = [str(venv / "bin" / "pdl")]

    def run(*args, timeout=300):
        proc = subprocess.run(
            [*pdl, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, (
            f"pdl {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
        return proc.stdout

    where = subprocess.run(
        [str(py), "-c", "import panoptic_deeplab, sys; print(panoptic_deeplab.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(site)), where
    assert run("--version").strip().startswith("pdl (panoptic-deeplab) ")

    dry = run("app", "--dry-run", "--workdir", str(tmp_path / "work"))
    assert f"{site}/panoptic_deeplab/app/main.py" in dry
    assert f"PDL_APP_MODEL={site}/panoptic_deeplab/assets/models/synthetic_demo" in dry

    data = tmp_path / "data"
    run(
        "make-dataset",
        "synthetic",
        "--out",
        str(data),
        "--num-train",
        "4",
        "--num-val",
        "2",
        "--height",
        "65",
        "--width",
        "97",
        "--workers",
        "1",
    )
    demo = site / "panoptic_deeplab" / "assets" / "models" / "synthetic_demo"
    run(
        "predict",
        "--model",
        str(demo),
        "--images",
        str(data / "val"),
        "--out",
        str(tmp_path / "pred"),
    )
    assert len(list((tmp_path / "pred").rglob("*.png"))) >= 2
    run(
        "evaluate",
        "--model",
        str(demo),
        "--dataset",
        str(data),
        "--split",
        "val",
        "--out",
        str(tmp_path / "eval.json"),
    )
    assert "pq" in json.loads((tmp_path / "eval.json").read_text())["panoptic"]["All"]
    run(
        "train",
        "--config",
        "synthetic/tiny",
        "--dataset",
        str(data),
        "--workdir",
        str(tmp_path / "train"),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--set",
        "dataset.crop_size=[65,97]",
        "--set",
        "train.warmup_steps=0",
    )
    assert (tmp_path / "train" / "model" / "bundle.json").is_file()

    # The app itself, served by the installed package with the shipped demo model.
    port = _free_port()
    log = open(tmp_path / "app.log", "wb")
    server = subprocess.Popen(
        [*pdl, "app", "--port", str(port), "--workdir", str(tmp_path / "work")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the installed app did not start in 120 s"
                time.sleep(1)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    # What the served page shows: the same script run headless in the installed package.
    page = (
        "import json, sys; from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file(sys.argv[1], default_timeout=120).run(); "
        "print(json.dumps({'exception': [str(e.value) for e in at.exception], "
        "'sidebar': [m.value for m in at.sidebar.markdown]}))"
    )
    app_env = {**env, "PDL_APP_MODEL": str(demo), "PDL_APP_WORKDIR": str(tmp_path / "work")}
    shown = json.loads(
        subprocess.run(
            [str(py), "-c", page, f"{site}/panoptic_deeplab/app/main.py"],
            cwd=tmp_path,
            env=app_env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert not shown["exception"], shown
    assert "`synthetic_demo`" in shown["sidebar"]
