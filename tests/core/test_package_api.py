"""``import panoptic_deeplab`` stays light, and every name it offers resolves on first use."""

import subprocess
import sys

import pytest

_LIGHT = """
import sys
import panoptic_deeplab
assert "tensorflow" not in sys.modules, "tensorflow imported"
assert "Predictor" in dir(panoptic_deeplab)
"""


def test_importing_the_package_does_not_import_tensorflow():
    proc = subprocess.run([sys.executable, "-c", _LIGHT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_every_exported_name_resolves_to_its_definition():
    import panoptic_deeplab

    for name in panoptic_deeplab.__all__:
        value = getattr(panoptic_deeplab, name)
        assert getattr(value, "__name__", name) == name
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        panoptic_deeplab.nothing_here  # noqa: B018 - the attribute access is the test
