import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from panoptic_deeplab.config import load_config  # noqa: E402


def tiny_config(**overrides):
    """synthetic/tiny at 65x97 with short schedules; extra overrides as dotted keys."""
    base = {"dataset.crop_size": [65, 97], "train.batch_size": 4, "train.log_every": 1, "train.warmup_steps": 0}
    base.update(overrides)
    config = load_config("synthetic/tiny", base)
    try:
        from panoptic_deeplab.model.backbones import build_backbone  # noqa: F401
        import importlib
        importlib.import_module("panoptic_deeplab.model.backbones.mobilenet_v3")
    except ImportError:  # the MobileNet backbone is not written yet: a narrow ResNet stands in
        config = config.replace({"model.backbone": "resnet50", "model.backbone_width": 0.125})
    return config


@pytest.fixture
def tiny():
    return tiny_config
