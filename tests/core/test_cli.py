"""The `pdl` command line: every command's --help answers at once, without TensorFlow."""
from __future__ import annotations

import subprocess
import sys

from panoptic_deeplab.cli import COMMANDS

_CODE = """
import sys
from panoptic_deeplab.cli import main
try:
    main([sys.argv[1], "--help"])
except SystemExit as done:
    assert done.code == 0, done.code
assert "tensorflow" not in sys.modules, "tensorflow imported"
"""


def test_every_command_shows_its_help_without_importing_tensorflow():
    for name in COMMANDS:
        proc = subprocess.run([sys.executable, "-c", _CODE, name], capture_output=True, text=True)
        assert proc.returncode == 0, f"pdl {name} --help: {proc.stderr[-1000:]}"
        assert f"usage: pdl {name}" in proc.stdout, name
