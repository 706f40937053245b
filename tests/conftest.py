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
    """The suite's numbers do not depend on the machine: bundles load in float32 on TensorFlow unless
    a test asks for a precision or backend (``--precision auto`` would pick bfloat16 on some CPUs).
    tests/core/inference covers the automatic choice."""
    import os

    saved = {k: os.environ.get(k) for k in ("PDL_PRECISION", "PDL_BACKEND")}
    os.environ.update(PDL_PRECISION="fp32", PDL_BACKEND="tf")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
