"""Data of the deeplab2 import tests: two small Panoptic-DeepLab checkpoints saved by deeplab2's
own code with fixed random weights, their textprotos, an input image and deeplab2's outputs for it
(tests/fixtures/deeplab2/README.md says how they were made)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "deeplab2"
MODELS = {
    # name: (checkpoint folder, textproto, deeplab2 outputs)
    "mnv3s_os16": ("ckpt_mnv3s_os16", "mnv3s_os16.textproto", "outputs_mnv3s_os16.npz"),
    "r50w025_os32": ("ckpt_r50w025_os32", "r50w025_os32.textproto", "outputs_r50w025_os32.npz"),
}


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), path
    return path
