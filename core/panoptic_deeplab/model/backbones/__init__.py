"""Backbone registry.

Every backbone module exposes ``build(inputs, *, output_stride, width, norm) -> dict`` mapping
endpoint names to Keras tensors, with at least ``res2`` (stride 4), ``res3`` (stride 8) and
``res5`` (stride ``output_stride``). ``inputs`` are already normalised to [-1, 1]. Modules are
imported only when their backbone is built.
"""

from __future__ import annotations

import importlib
import inspect

from ...errors import ConfigError
from ..layers import NormFactory

# backbone name -> (module, variant). A module serving several variants exposes either
# ``build_<variant>(...)`` or ``build(..., variant=...)``.
BACKBONES: dict[str, tuple[str, str | None]] = {
    "resnet50": ("resnet", "resnet50"),
    "resnet50_beta": ("resnet", "resnet50_beta"),
    "mobilenet_v3_large": ("mobilenet_v3", "large"),
    "mobilenet_v3_small": ("mobilenet_v3", "small"),
    "xception71": ("xception", None),
}

REQUIRED_ENDPOINTS = ("res2", "res3", "res5")


def build_backbone(
    name: str,
    inputs,
    *,
    output_stride: int,
    width: float,
    norm: NormFactory,
    stem_width: float | None = None,
) -> dict:
    """Build backbone ``name`` on ``inputs`` and return its endpoints."""
    if name not in BACKBONES:
        raise ConfigError(
            f"model.backbone: unknown backbone '{name}'. Choose one of: {', '.join(BACKBONES)}."
        )
    if output_stride not in (16, 32):
        raise ConfigError(f"model.output_stride must be 16 or 32, got {output_stride}.")
    module_name, variant = BACKBONES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    kwargs = {}
    builder = getattr(module, f"build_{variant}", None) if variant else None
    if builder is None:
        builder = module.build
        if variant and "variant" in inspect.signature(builder).parameters:
            kwargs["variant"] = variant
    if stem_width is not None and stem_width != width:
        if "stem_width" not in inspect.signature(builder).parameters:
            raise ConfigError(
                f"model.stem_width: the {name} backbone has no separate stem width; leave it null."
            )
        kwargs["stem_width"] = stem_width
    endpoints = builder(inputs, output_stride=output_stride, width=width, norm=norm, **kwargs)
    missing = [k for k in REQUIRED_ENDPOINTS if k not in endpoints]
    if missing:
        raise RuntimeError(f"backbone '{name}' did not return endpoints {missing}")
    return endpoints
