"""`pdl app`: argument checks, the streamlit command it runs, and the first-launch demo data set."""

from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from panoptic_deeplab import settings
from panoptic_deeplab.cli import main
from panoptic_deeplab.commands import app as app_command
from tests.app import apptest_utils as u


def run_pdl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "panoptic_deeplab", "app", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dry_run_prints_a_headless_local_streamlit_command(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    model = tmp_path / "bundle"
    model.mkdir()
    done = run_pdl(
        "--dry-run",
        "--port",
        "8612",
        "--model",
        str(model),
        "--data",
        str(data),
        "--workdir",
        str(tmp_path / "w"),
    )
    assert done.returncode == 0, done.stderr
    command, *env = done.stdout.strip().splitlines()
    assert command.split()[1:5] == ["-m", "streamlit", "run", str(settings.app_entry())]
    for flag in (
        "--server.address 127.0.0.1",
        "--server.port 8612",
        "--server.headless true",
        "--browser.gatherUsageStats false",
        "--runner.magicEnabled false",  # no AST parse per session (issue 28 item 10)
    ):
        assert flag in command
    assert env == [
        f"PDL_APP_MODEL={model}",
        f"PDL_APP_DATA={data}",
        f"PDL_APP_WORKDIR={tmp_path / 'w'}",
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "/nonexistent/bundle"], "no such model bundle"),
        (["--data", "/nonexistent/data"], "no such data set directory"),
        (["--port", "70000"], "between 1 and 65535"),
    ],
)
def test_bad_arguments_give_a_clear_error(tmp_path, capsys, args, words):
    assert main(["app", "--dry-run", "--workdir", str(tmp_path), *args]) == 2
    assert words in capsys.readouterr().err


def test_first_launch_makes_the_demo_data_set_once(tmp_path, monkeypatch):
    monkeypatch.setitem(app_command.DEMO_DATA, "num_train", 1)
    monkeypatch.setitem(app_command.DEMO_DATA, "num_val", 2)
    monkeypatch.setitem(app_command.DEMO_DATA, "height", 33)
    monkeypatch.setitem(app_command.DEMO_DATA, "width", 65)
    root = app_command.ensure_demo_data(tmp_path)
    from panoptic_deeplab.datasets.readers import open_dataset

    assert len(open_dataset(root, "val")) == 2 and len(open_dataset(root, "train")) == 1
    stamp = (root / "annotations" / "panoptic_val.json").stat().st_mtime_ns
    assert app_command.ensure_demo_data(tmp_path) == root
    assert (
        root / "annotations" / "panoptic_val.json"
    ).stat().st_mtime_ns == stamp  # reused, not remade


def test_default_model_is_a_shipped_bundle_or_none():
    model = app_command.default_model()
    assert model is None or model.parent == settings.shipped_models_dir()


def test_shell_lists_the_pages_with_inspect_first(monkeypatch, tmp_path):
    u.set_app_env(monkeypatch, tmp_path)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Inspect"
    for page in ("pages/evaluate.py",):
        at.switch_page(page).run()
        assert not at.exception
