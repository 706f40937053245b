"""Shared helpers for the model tests: tiny configs that build and run in seconds on a CPU."""

from __future__ import annotations

from panoptic_deeplab.config import Config


def tiny_config(
    backbone: str = "resnet50", output_stride: int = 32, crop=(65, 97), **extra
) -> Config:
    """A narrow model with the full layout (backbone width 1/8, 16-32 channel decoders)."""
    overrides = {
        "model.backbone": backbone,
        "model.output_stride": output_stride,
        "model.backbone_width": 0.125,
        "model.aspp_rates": [1, 2, 3],
        "model.sync_batch_norm": False,
        "model.semantic_decoder.aspp_channels": 16,
        "model.semantic_decoder.low_level_project_channels": [8, 8],
        "model.semantic_decoder.decoder_channels": 16,
        "model.semantic_decoder.head_channels": 16,
        "model.instance_decoder.aspp_channels": 16,
        "model.instance_decoder.low_level_project_channels": [8, 8],
        "model.instance_decoder.decoder_channels": 8,
        "model.instance_decoder.head_channels": 8,
        "dataset.name": "synthetic",
        "dataset.crop_size": list(crop),
    }
    overrides.update(extra)
    return Config().replace(overrides)
