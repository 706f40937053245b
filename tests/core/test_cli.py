"""The `pdl` command line: every command's --help answers at once, without TensorFlow."""

from __future__ import annotations

import os
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


_FAILS_INSIDE_TF_DATA = """
import sys, time, types
import numpy as np
from panoptic_deeplab import cli

def run(args):
    import tensorflow as tf

    def slow(i):
        time.sleep(0.05)
        return np.zeros((4,), np.int32)

    def load(i):
        x = tf.numpy_function(slow, [i], tf.int32, stateful=False)
        check = tf.debugging.assert_less(i, tf.constant(0, tf.int64), message="boom")
        with tf.control_dependencies([check]):
            return tf.identity(x)
    ds = tf.data.Dataset.range(100).map(load, num_parallel_calls=4).batch(1).prefetch(2)
    return next(iter(ds.take(1)))

module = types.ModuleType("failing_command")
module.configure_parser = lambda parser: None
module.run = run
sys.modules["failing_command"] = module
cli.COMMANDS["fail"] = ("failing_command", "fails inside tf.data")
sys.exit(cli.main(["fail"]))
"""


def test_an_unexpected_error_inside_tf_data_ends_the_process():
    """Left to interpreter exit, the failed iterator (numpy_function calls in flight) waits for the
    GIL forever: `pdl train` with a too small crop hung instead of exiting."""
    proc = subprocess.run(
        [sys.executable, "-c", _FAILS_INSIDE_TF_DATA],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "boom" in proc.stderr


def _model_summary_stderr(*extra, level=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "panoptic_deeplab",
            "model-summary",
            "--config",
            "synthetic/tiny",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "params" in proc.stdout
    return proc.stderr


def test_tensorflow_start_up_lines_are_hidden_unless_verbose():
    quiet = _model_summary_stderr()
    assert (
        "oneDNN" not in quiet and "cuda" not in quiet.lower() and "absl::InitializeLog" not in quiet
    ), quiet
    assert "oneDNN" in _model_summary_stderr("--verbose")  # what TensorFlow prints by itself


_WARM_UP = """
import sys
from panoptic_deeplab.cli import warm_up_tensorflow_quietly
warm_up = warm_up_tensorflow_quietly()
print("started" if warm_up else "none")  # stdout: stderr is silenced while the thread runs
if warm_up:
    assert warm_up_tensorflow_quietly() is warm_up  # once per process
    warm_up.join()
    assert "tensorflow" in sys.modules
print("after", file=sys.stderr)
"""


def test_the_apps_tensorflow_warm_up_keeps_its_log_quiet():
    """The app's server imports TensorFlow in the background without the start-up lines (absl,
    oneDNN, CUDA) in its log, whose other lines still appear; level 0 or 1 means none."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = dict(capture_output=True, text=True, timeout=300)
    quiet = subprocess.run(
        [sys.executable, "-c", _WARM_UP], env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, **run
    )
    assert quiet.returncode == 0 and quiet.stdout == "started\n", quiet.stderr
    assert quiet.stderr == "after\n", quiet.stderr
    asked = subprocess.run(
        [sys.executable, "-c", _WARM_UP], env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"}, **run
    )
    assert asked.returncode == 0 and (asked.stdout, asked.stderr) == ("none\n", "after\n")
