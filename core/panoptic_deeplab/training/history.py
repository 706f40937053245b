"""Outputs over training: model-only snapshots kept across the whole run (``WORKDIR/history``),
beside the rolling resume checkpoints (``WORKDIR/checkpoints``, the last ``keep_checkpoints``).

``train.keep_history`` times over the run (evenly spaced, the last at the final step) the network's
weights (no optimizer state, a third of a checkpoint) are written as ``history/step-N``. At most
``train.keep_history`` snapshots stay; when one more comes (a resumed run with more steps), the
interior snapshot whose removal leaves the smallest gap goes, so the kept steps stay spread over
the run (first and newest always kept). The Inspect page loads any of them with
:func:`load_step_bundle`.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

HISTORY_DIR = "history"
SPEC_FILE = (
    "dataset_spec.json"  # the run's class table, written at the start (a bundle has its own)
)
_PREFIX = re.compile(r"(?:step|ckpt)-(\d+)\.index")


def thin_steps(steps: list[int], keep: int) -> list[int]:
    """The steps to delete so that at most ``keep`` remain, spread over the run (the newest stays,
    and the first while ``keep`` >= 2)."""
    kept, removed = sorted(steps), []
    while len(kept) > max(keep, 0):
        if len(kept) <= 2:
            removed.append(kept.pop(0))
            continue
        # Removing kept[i] merges the gaps on its two sides: take the smallest merged gap.
        i = min(range(1, len(kept) - 1), key=lambda j: (kept[j + 1] - kept[j - 1], j))
        removed.append(kept.pop(i))
    return removed


class SnapshotHistory:
    """Writes ``history/step-N`` (``save``) and thins the folder to ``keep`` snapshots.
    ``writer=False`` (non-chief workers) writes to ``scratch`` and deletes it, as checkpoints do."""

    def __init__(
        self,
        workdir: str | Path,
        network,
        keep: int,
        writer: bool = True,
        scratch: str | Path | None = None,
    ):
        import tensorflow as tf

        self.directory = Path(workdir) / HISTORY_DIR
        self.keep = int(keep)
        self.writer = writer
        self.scratch = Path(scratch) if scratch else Path(workdir) / "worker_scratch" / "history"
        self._checkpoint = tf.train.Checkpoint(model=network)
        self._checkpoint.save_counter  # noqa: B018 - created now, so write() stores it and restores match fully

    def save(self, step: int) -> str | None:
        if self.keep <= 0:
            return None
        target = self.directory if self.writer else self.scratch
        target.mkdir(parents=True, exist_ok=True)
        path = self._checkpoint.write(str(target / f"step-{int(step)}"))
        if not self.writer:
            shutil.rmtree(self.scratch, ignore_errors=True)
            return None
        for old in thin_steps([s for s, _ in _prefixes(self.directory)], self.keep):
            for file in self.directory.glob(f"step-{old}.*"):
                file.unlink(missing_ok=True)
        return path

    def remove_unfinished_saves(self) -> None:
        if self.writer:
            from .checkpoints import remove_unfinished_saves

            remove_unfinished_saves(self.directory, prefix="step")


@dataclass(frozen=True)
class Snapshot:
    step: int
    prefix: str  # TF checkpoint prefix holding the model's weights
    source: str  # "history" or "checkpoints"


def _prefixes(directory: Path) -> list[tuple[int, str]]:
    if not directory.is_dir():
        return []
    out = []
    for path in directory.iterdir():
        match = _PREFIX.fullmatch(path.name)
        if match:
            out.append((int(match.group(1)), str(path.with_suffix(""))))
    return sorted(out)


def list_snapshots(workdir: str | Path) -> list[Snapshot]:
    """Every saved step of a training workdir, oldest first: the history snapshots and the resume
    checkpoints (a step held by both is listed once, from the history)."""
    workdir = Path(workdir)
    found: dict[int, Snapshot] = {}
    for source in ("checkpoints", HISTORY_DIR):
        for step, prefix in _prefixes(workdir / source):
            found[step] = Snapshot(step, prefix, source)
    return [found[s] for s in sorted(found)]


def write_run_spec(workdir: str | Path, spec) -> None:
    """Keep the run's class table in the workdir: a step can be loaded before the bundle exists."""
    Path(workdir, SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2))


def load_step_bundle(workdir: str | Path, step: int):
    """A :class:`bundle.Bundle` with the weights of ``step`` of a workdir (``config.yaml`` and the
    class table of the run), ready for ``inference.Predictor``."""
    from ..bundle import Bundle
    from ..config import load_config
    from ..datasets.specs import DatasetSpec
    from ..errors import CheckpointError
    from ..model.builder import build_model
    from .checkpoints import restore_model_weights

    workdir = Path(workdir)
    snapshots = {s.step: s for s in list_snapshots(workdir)}
    if int(step) not in snapshots:
        have = ", ".join(map(str, sorted(snapshots))) or "none"
        raise CheckpointError(f"{workdir}: no saved step {step} (saved steps: {have}).")
    spec_path = workdir / SPEC_FILE
    if not spec_path.is_file() and (workdir / "model" / SPEC_FILE).is_file():
        spec_path = workdir / "model" / SPEC_FILE
    if not (workdir / "config.yaml").is_file() or not spec_path.is_file():
        raise CheckpointError(
            f"{workdir}: config.yaml or {SPEC_FILE} is missing, so its steps cannot be loaded. "
            "It was written by an older pdl train; its final bundle (model/) still loads."
        )
    config = load_config(str(workdir / "config.yaml"))
    config.model.pretrained_backbone = None
    spec = DatasetSpec.from_dict(json.loads(spec_path.read_text()))
    model = build_model(config, num_classes=spec.num_classes)
    restore_model_weights(model, snapshots[int(step)].prefix)
    return Bundle(path=workdir, config=config, spec=spec, model=model, info={"step": int(step)})
