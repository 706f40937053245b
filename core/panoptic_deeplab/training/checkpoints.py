"""Training checkpoints: tf.train.Checkpoint + CheckpointManager in ``WORKDIR/checkpoints``.

A save writes ``ckpt-N.index``/``ckpt-N.data-*`` first and only then rewrites the small
``checkpoint`` state file (TensorFlow writes it through a temporary file and a rename), so a
process killed mid-save leaves the state file pointing at the previous, complete checkpoint.
What such a save leaves behind (TensorFlow's ``ckpt-N_temp/`` folder, ``*.tempstate*`` files, a data
shard without its index) is removed when the store opens. Restoring falls back, with a warning, to
an older checkpoint when the newest cannot be read.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import shutil
import sys
from pathlib import Path

import tensorflow as tf

from ..bundle import CLASS_LAYER
from ..errors import CheckpointError


class CheckpointStore:
    """Keeps the last ``keep`` checkpoints of a network and its optimizer.

    ``writer=False`` (non-chief workers of a multi-worker run) saves to a scratch directory that is
    deleted right away: every worker must take part in a save, only the chief keeps it.
    """

    def __init__(
        self,
        directory: str | Path,
        network,
        optimizer,
        keep: int = 3,
        writer: bool = True,
        scratch: str | Path | None = None,
    ):
        self.directory = Path(directory)
        self._objects = {"model": network, "optimizer": optimizer}
        self.checkpoint = tf.train.Checkpoint(**self._objects)
        self.writer = writer
        target = (
            self.directory
            if writer
            else Path(scratch or self.directory.with_name("checkpoints_scratch"))
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(target), max_to_keep=max(int(keep), 1)
        )
        self._target = target
        if writer:
            self.remove_unfinished_saves()

    def remove_unfinished_saves(self) -> None:
        if self.writer:
            remove_unfinished_saves(self.directory)

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(str(self.directory))

    @property
    def latest_step(self) -> int:
        """The step of the newest registered checkpoint (0: none): what a resume would load, even
        when a stop interrupted the bookkeeping that follows a save."""
        latest = self.latest
        return checkpoint_step(latest) if latest else 0

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=int(step))
        if not self.writer:
            shutil.rmtree(self._target, ignore_errors=True)
        return path

    def restore_latest(self) -> str | None:
        """Restore the newest readable checkpoint of this workdir; ``None`` when there is none."""
        state = tf.train.get_checkpoint_state(str(self.directory))
        if state is None:
            return None
        candidates = list(reversed(list(state.all_model_checkpoint_paths)))
        errors = []
        with _quiet_restores():
            for path in candidates:
                try:
                    # A fresh Checkpoint per attempt: a failed restore leaves pending state behind.
                    tf.train.Checkpoint(**self._objects).restore(
                        path
                    ).assert_existing_objects_matched()
                    if errors:
                        print(
                            "warning: the newest checkpoint(s) cannot be read, resuming from "
                            f"{Path(path).name}:\n  " + "\n  ".join(errors),
                            file=sys.stderr,
                            flush=True,
                        )
                    return path
                except Exception as err:  # noqa: BLE001 - a torn file raises anything from IndexError to OpError
                    errors.append(f"{path}: {_first_line(err)}")
        raise CheckpointError(
            f"none of the checkpoints in {self.directory} can be restored into this model:\n  "
            + "\n  ".join(errors)
            + "\nTrain into a new --workdir, or use the config that wrote these checkpoints."
        )


def remove_unfinished_saves(directory: Path, prefix: str = "ckpt") -> list[str]:
    """Delete what a save killed half-way (or stopped by a full disk) leaves in ``directory``: no
    reader can use it, and a model-sized partial shard is left behind by every such kill."""
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        name = path.name
        data = re.fullmatch(rf"({prefix}-\d+)\.data-\d+-of-\d+", name)
        if path.is_dir() and re.fullmatch(rf"{prefix}-\d+_temp", name):
            shutil.rmtree(path, ignore_errors=True)
        elif ".tempstate" in name or (data and not (directory / f"{data.group(1)}.index").exists()):
            path.unlink(missing_ok=True)
        else:
            continue
        removed.append(name)
    if removed:
        print(
            f"removed the files of an unfinished checkpoint save in {directory}: "
            + ", ".join(removed),
            file=sys.stderr,
            flush=True,
        )
    return removed


def checkpoint_step(path: str) -> int:
    """``.../ckpt-1200`` -> 1200."""
    return int(str(path).rsplit("-", 1)[-1])


def restore_model_weights(network, source: str | Path) -> str:
    """Initialise ``network`` (not the optimizer) from a TF checkpoint prefix, a workdir or its
    ``checkpoints`` folder; returns the checkpoint path used."""
    source = Path(source)
    prefix = None
    for directory in (source, source / "checkpoints"):
        if directory.is_dir():
            prefix = tf.train.latest_checkpoint(str(directory))
            if prefix:
                break
    if prefix is None and Path(str(source) + ".index").is_file():
        prefix = str(source)
    if prefix is None:
        raise CheckpointError(
            f"{source}: no checkpoint found. Give a model bundle directory (with bundle.json), a "
            "'.weights.h5' file, a training workdir, or a checkpoint prefix such as "
            "WORKDIR/checkpoints/ckpt-1000."
        )
    problem = None
    with _quiet_restores():
        try:
            tf.train.Checkpoint(model=network).restore(
                prefix
            ).expect_partial().assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError) as err:
            problem = _first_line(err)
    if problem:
        raise CheckpointError(
            f"{prefix}: does not match the model of this config ({problem}). "
            "Use the config it was trained with."
        )
    return prefix


def _first_line(err: BaseException) -> str:
    """The first line of a restore error, plus what a mismatch of the class layer means."""
    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if CLASS_LAYER in line:
        line += (
            " (that layer's size is the number of classes: the checkpoint was trained on another "
            "class table)"
        )
    return line


@contextlib.contextmanager
def _quiet_restores():
    """Restores whose TensorFlow warnings are muted: a restore that fails leaves objects whose
    deletion logs a warning per unrestored variable (hundreds of lines that bury the one clear
    error). They are collected before the warnings are turned back on."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        gc.collect()
        logger.setLevel(level)
