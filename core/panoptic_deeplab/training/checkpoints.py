"""Training checkpoints: tf.train.Checkpoint + CheckpointManager in ``WORKDIR/checkpoints``.

A save writes ``ckpt-N.index``/``ckpt-N.data-*`` first and only then rewrites the small
``checkpoint`` state file (TensorFlow writes it through a temporary file and a rename), so a
process killed mid-save leaves the state file pointing at the previous, complete checkpoint.
Restoring also falls back to an older checkpoint when the newest cannot be read.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow as tf

from ..errors import CheckpointError


class CheckpointStore:
    """Keeps the last ``keep`` checkpoints of a network and its optimizer.

    ``writer=False`` (non-chief workers of a multi-worker run) saves to a scratch directory that is
    deleted right away: every worker must take part in a save, only the chief keeps it.
    """

    def __init__(self, directory: str | Path, network, optimizer, keep: int = 3, writer: bool = True, scratch: str | Path | None = None):
        self.directory = Path(directory)
        self._objects = {"model": network, "optimizer": optimizer}
        self.checkpoint = tf.train.Checkpoint(**self._objects)
        self.writer = writer
        target = self.directory if writer else Path(scratch or self.directory.with_name("checkpoints_scratch"))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(target), max_to_keep=max(int(keep), 1))
        self._target = target

    @property
    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(str(self.directory))

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
        for path in candidates:
            try:
                # A fresh Checkpoint per attempt: a failed restore leaves pending state behind.
                tf.train.Checkpoint(**self._objects).restore(path).assert_existing_objects_matched()
                return path
            except Exception as err:  # noqa: BLE001 - a torn file raises anything from IndexError to OpError
                errors.append(f"{path}: {str(err).splitlines()[0]}")
        raise CheckpointError(
            f"none of the checkpoints in {self.directory} can be restored into this model:\n  "
            + "\n  ".join(errors)
            + "\nTrain into a new --workdir, or use the config that wrote these checkpoints."
        )


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
            "'.weights.h5' file, a training workdir, or a checkpoint prefix such as WORKDIR/checkpoints/ckpt-1000."
        )
    try:
        tf.train.Checkpoint(model=network).restore(prefix).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError) as err:
        raise CheckpointError(
            f"{prefix}: does not match the model of this config ({str(err).splitlines()[0]}). "
            "Use the config it was trained with."
        ) from None
    return prefix
