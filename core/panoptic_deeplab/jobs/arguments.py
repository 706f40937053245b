"""The allow-list of job arguments: which ``pdl`` sub-commands may run as a job, with which options
and values, read from each command's own argparse definition; ``train_command`` builds a checked
``pdl train`` argument list."""

from __future__ import annotations

import argparse
import os
import re

from .errors import JobError

# Characters that mean something to a shell. Jobs never go through a shell, but a value carrying
# them is almost certainly an injection attempt or a paste accident, so it is refused outright.
_SHELL_META = re.compile(r"[;&|`$<>\n\r\x00\\]|\$\(")
_OVERRIDE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


# ---------------------------------------------------------------------------------------------
# Allow-list: sub-command -> option -> value kind. "flag" takes no value; kinds ending in "*"
# repeat; kinds ending in "+" take one or more values. Read from each command's own argparse
# definition, so an option is allowed as soon as its command has it and never after it is gone.

_INT, _FLOAT, _PATH, _NAME, _OVERRIDE, _FLAG = "int", "float", "path", "name", "override", "flag"
# comma-separated names, '+' allowed inside one (pdl evaluate --oracle semantic+center,all)
_NAMES = "names"

# What a job may run (`pdl review score` is how the app's Review page scores a split).
JOB_COMMANDS = ("train", "evaluate", "make-dataset", "check-dataset", "review")


class _RecordingParser(argparse.ArgumentParser):
    """Records every argument a command's ``configure_parser`` adds, with its keyword arguments
    (only public argparse API: ``add_argument`` and ``add_argument_group``)."""

    def __init__(self):
        self.recorded: list[tuple[tuple, dict]] | None = (
            None  # None while argparse builds its own groups
        )
        super().__init__(add_help=False)
        self.recorded = []

    def add_argument(self, *names, **kwargs):
        self.recorded.append((names, kwargs))
        return super().add_argument(*names, **kwargs)

    def add_argument_group(self, *args, **kwargs):
        if self.recorded is None:
            return super().add_argument_group(*args, **kwargs)
        return self  # options of a group are options of the command

    def add_mutually_exclusive_group(self, **kwargs):
        return self


def _value_kind(names: tuple, kwargs: dict) -> str:
    action = kwargs.get("action")
    if action in ("store_true", "store_false", "count") or action is argparse.BooleanOptionalAction:
        return _FLAG
    if kwargs.get("metavar") == "KEY=VALUE":
        kind = _OVERRIDE
    elif kwargs.get("metavar") == "LIST":
        kind = _NAMES
    elif kwargs.get("type") is int:
        kind = _INT
    elif kwargs.get("type") is float:
        kind = _FLOAT
    elif kwargs.get("choices") is not None or kwargs.get("dest", names[-1]).lstrip("-").replace(
        "-", "_"
    ).endswith("split"):
        kind = _NAME  # a choice, a split name
    else:
        kind = _PATH
    if kwargs.get("nargs") in ("+", "*"):
        kind += "+"
    return kind + "*" if action == "append" else kind


def _command_arguments(command: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """``(options, positionals)`` of ``pdl command``: each option string with its value kind, and
    the kinds of its positional arguments in order."""
    import importlib

    from ..cli import COMMANDS

    parser = _RecordingParser()
    importlib.import_module(COMMANDS[command][0]).configure_parser(parser)
    options: dict[str, str] = {}
    positionals: list[str] = []
    for names, kwargs in parser.recorded:
        kind = _value_kind(names, kwargs)
        if names[0].startswith("-"):
            if kwargs.get("action") is argparse.BooleanOptionalAction:  # --x also gives --no-x
                names = (*names, *(f"--no-{n[2:]}" for n in names if n.startswith("--")))
            options.update({name: kind for name in names})
        else:
            positionals.append(kind)
    return options, tuple(positionals)


ALLOWED_COMMANDS: dict[str, dict[str, str]] = {}
ALLOWED_POSITIONALS: dict[str, tuple[str, ...]] = {}
for _command in JOB_COMMANDS:
    ALLOWED_COMMANDS[_command], ALLOWED_POSITIONALS[_command] = _command_arguments(_command)
del _command


def validate_command(argv: list[str]) -> list[str]:
    """Check a ``pdl`` argument list against the allow-list; return it unchanged or raise JobError.

    ``argv`` starts with the sub-command, e.g. ``["train", "--config", "synthetic/tiny", ...]``.
    """
    if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
        raise JobError(
            "a job command must be a non-empty list of strings, e.g. ['train', '--config', ...]"
        )
    command, rest = argv[0], list(argv[1:])
    if command not in ALLOWED_COMMANDS:
        raise JobError(
            f"'{command}' cannot run as a job; allowed: {', '.join(sorted(ALLOWED_COMMANDS))}"
        )
    options = ALLOWED_COMMANDS[command]
    positionals = list(ALLOWED_POSITIONALS.get(command, ()))
    seen: set[str] = set()
    i = 0
    while i < len(rest):
        token = rest[i]
        _check_value_text(token, where=f"pdl {command}")
        if token.startswith("-"):
            name, eq, inline = token.partition("=")
            if name not in options:
                raise JobError(
                    f"option '{name}' is not allowed for 'pdl {command}' jobs; allowed: "
                    f"{', '.join(options)}"
                )
            kind = options[name]
            repeat = kind.endswith("*")
            kind = kind.rstrip("*")
            several = kind.endswith("+")
            kind = kind.rstrip("+")
            if name in seen and not repeat:
                raise JobError(f"option '{name}' given twice for 'pdl {command}'")
            seen.add(name)
            if kind == _FLAG:
                if eq:
                    raise JobError(f"option '{name}' takes no value")
                i += 1
                continue
            if eq:
                value, i = inline, i + 1
            else:
                if i + 1 >= len(rest):
                    raise JobError(f"option '{name}' needs a value")
                value, i = rest[i + 1], i + 2
            _check_value(kind, value, name)
            while (
                several and i < len(rest) and not rest[i].startswith("--")
            ):  # e.g. --scales 0.75 1 1.25
                _check_value(kind, rest[i], name)
                i += 1
        else:
            if not positionals:
                raise JobError(f"unexpected argument '{token}' for 'pdl {command}'")
            _check_value(positionals.pop(0), token, "argument")
            i += 1
    return list(argv)


def _check_value_text(value: str, where: str) -> None:
    if _SHELL_META.search(value):
        raise JobError(
            f"{where}: '{value}' contains shell metacharacters (; & | ` $ < > \\ or a newline)"
        )


def _check_value(kind: str, value: str, name: str) -> None:
    _check_value_text(value, where=name)
    if value.startswith("-") and kind not in (_INT, _FLOAT):
        raise JobError(f"{name}: value '{value}' must not start with '-'")
    if kind == _INT:
        if not re.fullmatch(r"-?\d+", value) or int(value) < 0:
            raise JobError(f"{name}: '{value}' is not a non-negative integer")
    elif kind == _FLOAT:
        try:
            float(value)
        except ValueError:
            raise JobError(f"{name}: '{value}' is not a number") from None
    elif kind == _NAME:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise JobError(f"{name}: '{value}' must be letters, digits, '_', '.' or '-'")
    elif kind == _NAMES:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*", value):
            raise JobError(
                f"{name}: '{value}' must be names separated by commas (letters, digits, '_', '.', "
                "'+', '-')"
            )
    elif kind == _PATH:
        if not value.strip():
            raise JobError(f"{name}: empty path")
    elif kind == _OVERRIDE:
        key, eq, _ = value.partition("=")
        if not eq or not _OVERRIDE_KEY.match(key.strip()):
            raise JobError(
                f"{name}: '{value}' must look like section.key=value, e.g. train.batch_size=2"
            )


def train_command(
    config: str,
    dataset: str | os.PathLike,
    workdir: str | os.PathLike,
    steps: int | None = None,
    init_from: str | os.PathLike | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The ``pdl train`` argument list for a (fine-tuning) job, validated.

    The arguments are checked first, then the config and its overrides are loaded so that a typo in
    a key is reported before any process starts, with the config module's own message.
    """
    from ..config import load_config

    argv = ["train", "--config", str(config), "--dataset", str(dataset), "--workdir", str(workdir)]
    if steps is not None:
        argv += ["--steps", str(int(steps))]
    if init_from:
        argv += ["--init-from", str(init_from)]
    for item in overrides:
        argv += ["--set", item]
    validate_command(argv)
    load_config(config, list(overrides) or None)
    return argv


def review_score_command(
    dataset: str | os.PathLike,
    split: str,
    model: str | os.PathLike | None = None,
    predictions: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
) -> list[str]:
    """The ``pdl review score`` argument list for a job (what the Review page submits), validated:
    absolute paths (a job runs in its own folder), one of ``model`` / ``predictions``, and
    ``--status status.json`` so the job store shows the images scored."""
    if (model is None) == (predictions is None):
        raise JobError("a review scoring job needs a model or a predictions file (one of them)")

    def absolute(path) -> str:
        return str(os.path.abspath(os.path.expanduser(os.fspath(path))))

    argv = ["review", "score", "--dataset", absolute(dataset), "--split", str(split)]
    if model is not None:
        argv += ["--model", absolute(model)]
    else:
        argv += ["--predictions", absolute(predictions)]
    if store is not None:
        argv += ["--store", absolute(store)]
    return validate_command([*argv, "--status", "status.json"])


def option_value(argv: list[str], name: str) -> str | None:
    """The value of ``name`` in an argument list (``--x v`` or ``--x=v``), or None."""
    for i, token in enumerate(argv):
        if token == name and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return None
