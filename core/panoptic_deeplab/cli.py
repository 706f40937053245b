"""The ``pdl`` command line. Each sub-command lives in its own module and is imported only when
run, so light commands (``pdl pq``, ``pdl check-dataset``) never import TensorFlow.

A command module exposes ``configure_parser(parser)`` and ``run(args) -> int``, and optionally
``before_tensorflow()`` (process set-up that must precede TensorFlow's import).

TensorFlow's C++ start-up lines (oneDNN, CUDA drivers, cuInit) are hidden unless the user set
``TF_CPP_MIN_LOG_LEVEL`` or passed ``--verbose``: the level is raised to 3 and, for the commands
that use TensorFlow, stderr is silenced while it is imported (those lines are written before its
log level is read).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import traceback

from . import __version__
from .errors import UserError

# sub-command -> (module, one-line help)
COMMANDS = {
    "model-summary": (
        "panoptic_deeplab.commands.model_summary",
        "build a model from a config and print its size",
    ),
    "make-dataset": (
        "panoptic_deeplab.commands.make_dataset",
        "generate the synthetic street data set",
    ),
    "check-dataset": (
        "panoptic_deeplab.commands.check_dataset",
        "validate a COCO-panoptic or Cityscapes data set",
    ),
    "train": ("panoptic_deeplab.commands.train", "train or fine-tune a model"),
    "predict": ("panoptic_deeplab.commands.predict", "run a model bundle on images or a data set"),
    "evaluate": (
        "panoptic_deeplab.commands.evaluate",
        "predict on a data set and compute PQ / mIoU / AP",
    ),
    "pq": (
        "panoptic_deeplab.commands.pq",
        "panoptic quality of COCO-panoptic predictions (no TensorFlow)",
    ),
    "export": (
        "panoptic_deeplab.commands.export",
        "export a bundle as SavedModel, TFLite, ONNX or OpenVINO",
    ),
    "import": (
        "panoptic_deeplab.commands.import_model",
        "import a deeplab2 checkpoint as a model bundle",
    ),
    "review": (
        "panoptic_deeplab.commands.review",
        "score a split for annotation review, or export the reviewed data set",
    ),
    "app": ("panoptic_deeplab.commands.app", "start the browser app"),
    "jobs": (
        "panoptic_deeplab.commands.jobs",
        "list, show, cancel, resume or submit background jobs",
    ),
}

TENSORFLOW_COMMANDS = {"model-summary", "train", "predict", "evaluate", "export", "import"}
VERBOSE_HELP = (
    "show TensorFlow's C++ log lines (oneDNN, CUDA; hidden unless TF_CPP_MIN_LOG_LEVEL is set)"
)


def quiet_tensorflow(verbose: bool) -> bool:
    """Hide TensorFlow's C++ logs for this process and its children, unless ``verbose`` or the
    user chose a level; True when hidden. Call before TensorFlow is imported."""
    if verbose or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return True


def import_tensorflow_silently() -> None:
    """Import TensorFlow with stderr silenced: its start-up lines come before it reads its level."""
    if "tensorflow" not in sys.modules:
        with _stderr_silenced():
            import tensorflow  # noqa: F401


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdl", description="Panoptic-DeepLab toolkit")
    parser.add_argument(
        "--version", action="version", version=f"pdl (panoptic-deeplab) {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # Parsers are configured lazily below so that `pdl --help` stays fast.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Find the sub-command first, then let its module add its own arguments (the parser of all
    # commands is built only for help and usage errors: its gettext lookups cost `pdl pq` 18 ms).
    if argv and argv[0] in COMMANDS:
        quiet = quiet_tensorflow(verbose="--verbose" in argv[1:])
        module = importlib.import_module(COMMANDS[argv[0]][0])
        sub = argparse.ArgumentParser(prog=f"pdl {argv[0]}", description=COMMANDS[argv[0]][1])
        module.configure_parser(sub)
        sub.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
        args = sub.parse_args(argv[1:])
        try:
            if hasattr(module, "before_tensorflow"):
                module.before_tensorflow()
            if quiet and argv[0] in TENSORFLOW_COMMANDS:
                import_tensorflow_silently()
            return int(module.run(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            code = 130
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            code = 2
        except Exception:  # noqa: BLE001 - a bug or a TensorFlow error: shown as Python would show it
            traceback.print_exc()
            code = 1
        # The error, and the tf.data iterators its frames hold, are freed here and not at interpreter
        # exit, where an iterator with tf.numpy_function calls in flight waits for the GIL forever.
        gc.collect()
        return code
    build_parser().parse_args(argv)  # prints help / usage errors
    return 2


if __name__ == "__main__":
    sys.exit(main())
