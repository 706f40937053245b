"""Suite-wide test settings."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Records of passed data-set checks (and any other user cache) go to a temporary folder, never
    to the real ~/.cache, and no record from an earlier run can make a test skip its check."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(autouse=True, scope="session")
def _float32_tensorflow_by_default():
    """The suite's numbers do not depend on the machine: bundles load in float32 on TensorFlow
    unless a test asks for a precision or backend (``--precision auto`` would pick bfloat16 on some
    CPUs). tests/core/inference covers the automatic choice."""
    import os

    saved = {k: os.environ.get(k) for k in ("PDL_PRECISION", "PDL_BACKEND")}
    os.environ.update(PDL_PRECISION="fp32", PDL_BACKEND="tf")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size="4m")``: a new folder on a tmpfs of that size, for full-disk tests,
    unmounted after the test. Mounting needs root, which the CI machine has."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("full-disk tests mount a small tmpfs, which needs root (CI runs as root)")
    mounts = []

    def make(size: str = "4m"):
        folder = tmp_path / f"small-disk-{len(mounts)}"
        folder.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True
        )
        mounts.append(folder)
        return folder

    yield make
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def fill_disk():
    """``fill_disk(folder, leave_bytes=0)`` fills the file system of ``folder`` (file ``filler``)
    until at most ``leave_bytes`` are free, and returns the filler's path."""
    return _fill_disk


def _fill_disk(folder, leave_bytes: int = 0):
    import errno
    import os
    import shutil

    path = os.path.join(folder, "filler")
    with open(path, "wb") as f:
        chunk = b"\0" * (1 << 16)
        while shutil.disk_usage(folder).free > leave_bytes + len(chunk):
            try:
                f.write(chunk)
                f.flush()
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                break
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """The tiny synthetic data set (COCO-panoptic layout, 6 train + 2 val images of 65x97) that
    the `pdl train` process tests, the fault tests and the Slurm tests train on; built once per
    run. Read-only: copy it before changing it."""
    from tests.core.training.scenes import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny-dataset"))


def pytest_collection_modifyitems(items):
    """Test files with slow tests run first (each file's tests in their own order): the parallel
    workers (``-n``) start the longest runs early and end on short tests, finishing together."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within kept


# -- the two tiers' time, from one whole run (README: the quick tier must stay under 10 minutes) --
_TIER_SECONDS = {"quick": 0.0, "slow": 0.0}
_STARTED = []


def pytest_sessionstart(session):
    import time

    _STARTED.append(time.monotonic())


def pytest_runtest_logreport(report):
    # With pytest-xdist the workers' reports come to this hook in the controlling process.
    _TIER_SECONDS["slow" if "slow" in report.keywords else "quick"] += report.duration


def pytest_terminal_summary(terminalreporter, config):
    """One line that says how long each tier's tests took in this run and how long the run took:
    a whole run also tells what the quick tier (``-m "not slow"``) costs. Set-up, call and teardown
    of each test, summed over the parallel workers (``-n``); a session fixture counts with the
    first test that uses it; Python's start-up and test collection count only in the run's time."""
    import time

    quick, slow = _TIER_SECONDS["quick"], _TIER_SECONDS["slow"]
    workers = getattr(config.option, "numprocesses", None) or 1
    wall = time.monotonic() - _STARTED[0] if _STARTED else 0.0
    terminalreporter.write_line(
        f"time in tests: quick tier (not slow) {quick / 60:.1f} min, slow tier {slow / 60:.1f} min"
        f", summed over {workers} worker(s); the run took {wall / 60:.1f} min"
    )
