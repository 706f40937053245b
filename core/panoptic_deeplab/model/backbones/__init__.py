"""Backbone registry.

Every backbone module exposes ``build(inputs, *, output_stride, width, norm) -> dict`` mapping
endpoint names to Keras tensors, with at least ``res2`` (stride 4), ``res3`` (stride 8) and
``res5`` (stride ``output_stride``); other endpoints (``res1``, ``res4``, ``backbone_output``) may
be there too. ``inputs`` are already normalised to [-1, 1]. Modules are
imported only when their backbone is built.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .architectures import ARCHITECTURES

if TYPE_CHECKING:
    from ..layers import NormFactory

# backbone name -> (module, variant). A module serving several variants exposes either
# ``build_<variant>(...)`` or ``build(..., variant=...)``.
BACKBONES: dict[str, tuple[str, str | None]] = {
    "resnet50": ("resnet", "resnet50"),
    "resnet50_beta": ("resnet", "resnet50_beta"),
    "mobilenet_v3_large": ("mobilenet_v3", "large"),
    "mobilenet_v3_small": ("mobilenet_v3", "small"),
    "xception71": ("xception", None),
    # The rest of deeplab2's Axial-ResNet family.
    **{name: ("resnet", name) for name in ARCHITECTURES},
}

REQUIRED_ENDPOINTS = ("res2", "res3", "res5")
# Options only deeplab2's Axial-ResNet family has (model.<name>), with their neutral values.
FAMILY_OPTIONS = {
    "backbone_layers": 1.0,
    "sac_beyond_stride": 0,
    "squeeze_excite": False,
    "drop_path_keep_prob": 1.0,
    "drop_path_schedule": "constant",
    "recompute_grad": True,
}


def build_backbone(
    name: str,
    inputs,
    *,
    output_stride: int,
    width: float,
    norm: NormFactory,
    stem_width: float | None = None,
    **options,
) -> dict:
    """Build backbone ``name`` on ``inputs`` and return its endpoints. ``options``: the
    ``FAMILY_OPTIONS`` (an error for a backbone without them unless neutral)."""
    if name not in BACKBONES:
        raise ConfigError(
            f"model.backbone: unknown backbone '{name}'. Choose one of: {', '.join(BACKBONES)}."
        )
    if output_stride not in (8, 16, 32):
        raise ConfigError(f"model.output_stride must be 8, 16 or 32, got {output_stride}.")
    module_name, variant = BACKBONES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    kwargs = {}
    builder = getattr(module, f"build_{variant}", None) if variant else None
    if builder is None:
        builder = module.build
        if variant and "variant" in inspect.signature(builder).parameters:
            kwargs["variant"] = variant
    accepted = inspect.signature(builder).parameters
    if stem_width is not None and stem_width != width:
        if "stem_width" not in accepted:
            raise ConfigError(
                f"model.stem_width: the {name} backbone has no separate stem width; leave it null."
            )
        kwargs["stem_width"] = stem_width
    for key, value in options.items():
        if key in accepted:
            kwargs[key] = value
        elif value != FAMILY_OPTIONS.get(key, value):
            raise ConfigError(
                f"model.{key}: {value!r} is not available for the {name} backbone (only deeplab2's "
                f"ResNet family has it); set it to {FAMILY_OPTIONS[key]!r}."
            )
    endpoints = builder(inputs, output_stride=output_stride, width=width, norm=norm, **kwargs)
    missing = [k for k in REQUIRED_ENDPOINTS if k not in endpoints]
    if missing:
        raise RuntimeError(f"backbone '{name}' did not return endpoints {missing}")
    return endpoints
