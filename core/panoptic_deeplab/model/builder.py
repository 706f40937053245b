"""Build the Panoptic-DeepLab Keras model from a config (docs/method.md §1).

Input: float32 ``[B, H, W, 3]`` RGB in 0..255; normalisation ``x / 127.5 - 1`` is inside the model.
Outputs (float32, at the input resolution, corner-aligned bilinear upsampling from stride 4):

* ``semantic_logits`` ``[B, H, W, num_classes]``
* ``center_heatmap`` ``[B, H, W, 1]`` (raw, no activation)
* ``offsets`` ``[B, H, W, 2]`` as (dy, dx) in input pixels (rescaled by (H-1)/(h-1), (W-1)/(w-1))

Input sizes: DeepLab's sizes ``k * OS + 1`` (see ``valid_input_size``) keep every stride-2 layer
and every corner-aligned resize exact, and are what inference pads to. Any other size also runs
(strided convs pad symmetrically, like deeplab2), with sub-pixel misalignment between strides.
The ASPP pooling window comes from ``config.dataset.crop_size`` (see ``aspp.py`` for other sizes).
"""

from __future__ import annotations

import contextlib
import math

import keras

from ..config import Config
from ..errors import ConfigError
from .aspp import aspp, pool_size_for_crop
from .backbones import FAMILY_OPTIONS, build_backbone
from .decoder import decoder
from .heads import CONV_TYPES, head
from .input_limits import describe_limit, max_input_side
from .layers import ResizeLike, ResizeOffsetsLike, make_norm
from .pretrained import load_pretrained_backbone

# The network's outputs (module docstring), in the order every list of them uses (exports, engines).
OUTPUTS = ("semantic_logits", "center_heatmap", "offsets")

# Parts built in float32 under a mixed policy (names: "<branch>_decoder" or "<head>"). The accuracy
# guard (tests/core/inference/test_precision_guard.py) found the center heatmap is what bfloat16
# breaks: with the whole network in bfloat16 the demo model loses 1.4 PQ on 60 held-out images
# (peaks rounded to 8 mantissa bits change which centers survive NMS); with a float32 center head
# it differs by 0.08, while a float32 offset head alone changes nothing (docs/deployment.md,
# "Precision").
FLOAT32_PARTS: tuple[str, ...] = ("center_head",)


def valid_input_size(h: int, w: int, output_stride: int) -> tuple[int, int]:
    """The smallest sizes ``k * output_stride + 1 >= (h, w)`` (k >= 1): 1024 -> 1025 at OS32."""

    def fit(size: int) -> int:
        return max(1, math.ceil((int(size) - 1) / output_stride)) * output_stride + 1

    return fit(h), fit(w)


def build_model(
    config: Config, num_classes: int | None = None, input_shape: tuple[int, int] | None = None
) -> keras.Model:
    """Build the model. ``num_classes`` defaults to the config's data set; ``input_shape`` (H, W)
    fixes the spatial size (``None``: any size)."""
    m = config.model
    if num_classes is None:
        from ..datasets.specs import get_dataset_spec

        num_classes = get_dataset_spec(config.dataset.name).num_classes
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(m.dtype_policy)
    try:
        model = _build(config, int(num_classes), input_shape)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    if m.pretrained_backbone:
        load_pretrained_backbone(
            model.get_layer("backbone"), m.pretrained_backbone, backbone_name=m.backbone
        )
    return model


def decoder_settings(m, branch: str) -> dict:
    """The effective settings of ``model.<branch>_decoder`` (its own, else the model's)."""
    cfg = getattr(m, f"{branch}_decoder")
    endpoints = (
        cfg.low_level_endpoints if cfg.low_level_endpoints is not None else m.low_level_endpoints
    )
    rates = cfg.aspp_rates if cfg.aspp_rates is not None else m.aspp_rates
    where = f"model.{branch}_decoder"
    if len(cfg.low_level_project_channels) != len(endpoints):
        raise ConfigError(
            f"{where}.low_level_project_channels has {len(cfg.low_level_project_channels)} entries "
            f"but its low-level endpoints {list(endpoints)} are {len(endpoints)}; give one per "
            "endpoint."
        )
    if not cfg.aspp_projection_only and len(rates) != 3:
        raise ConfigError(f"{where}: the ASPP needs three atrous rates, got {list(rates)}.")
    convs = {"fuse_conv": cfg.fuse_conv, "head_conv": cfg.head_conv}
    if branch == "instance":
        convs["offset_head_conv"] = cfg.offset_head_conv or cfg.head_conv
    for key, value in convs.items():
        if value not in CONV_TYPES:
            raise ConfigError(f"{where}.{key}: {value!r}; choose one of {', '.join(CONV_TYPES)}.")
    return {
        "cfg": cfg,
        "endpoints": tuple(endpoints),
        "rates": tuple(rates),
        "offset_head_channels": cfg.offset_head_channels or cfg.head_channels,
        **convs,
    }


def _branch(features, settings, m, pool_size, norm, branch):
    """One branch's ASPP and decoder."""
    cfg = settings["cfg"]
    y = aspp(
        features[cfg.feature_key],
        channels=cfg.aspp_channels,
        rates=settings["rates"],
        pool_size=pool_size,
        separable=m.aspp_separable,
        dropout=m.aspp_dropout,
        norm=norm,
        name=f"{branch}_aspp",
        projection_only=cfg.aspp_projection_only,
    )
    return decoder(
        y,
        features,
        low_level=list(zip(settings["endpoints"], cfg.low_level_project_channels)),
        channels=cfg.decoder_channels,
        norm=norm,
        name=f"{branch}_decoder",
        conv=settings["fuse_conv"],
    )


@contextlib.contextmanager
def _float32_if(condition: bool):
    """Build the layers made inside in float32 (their inputs are cast up) when ``condition``."""
    previous = keras.config.dtype_policy()
    if condition:
        keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _build(config: Config, num_classes: int, input_shape: tuple[int, int] | None) -> keras.Model:
    m = config.model
    norm = make_norm(m.bn_momentum, m.bn_epsilon, m.sync_batch_norm)
    check_input_size(config, input_shape)
    spatial = tuple(input_shape) if input_shape is not None else (None, None)
    image = keras.Input(shape=(*spatial, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(image)
    settings = {branch: decoder_settings(m, branch) for branch in ("semantic", "instance")}

    # The backbone is a sub-model so that pretrained weights, freezing and summaries can address it.
    backbone_input = keras.Input(shape=(*spatial, 3), name="backbone_input")
    endpoints = build_backbone(
        m.backbone,
        backbone_input,
        output_stride=m.output_stride,
        width=m.backbone_width,
        norm=norm,
        stem_width=m.stem_width,
        **{key: getattr(m, key) for key in FAMILY_OPTIONS},
    )
    used = {s["cfg"].feature_key for s in settings.values()}
    used |= {e for s in settings.values() for e in s["endpoints"]}
    unknown = sorted(used - set(endpoints))
    if unknown:
        raise ConfigError(
            f"model: the {m.backbone} backbone has no endpoint {', '.join(unknown)} (it has "
            f"{', '.join(k for k in endpoints if k.startswith('res'))}); fix the decoders' "
            "feature_key / low-level endpoints."
        )
    # Outputs no decoder reads stay in the sub-model, so that their weights are part of it (MaX-
    # DeepLab-L's stacked decoder: deeplab2 computes and checkpoints it too).
    kept = [k for k in endpoints if k in used or not k.startswith("res")]
    backbone = keras.Model(backbone_input, {k: endpoints[k] for k in kept}, name="backbone")
    features = backbone(x)

    pool_size = pool_size_for_crop(config.dataset.crop_size, m.output_stride)
    branches = {}
    for branch in ("semantic", "instance"):
        with _float32_if(f"{branch}_decoder" in FLOAT32_PARTS):
            branches[branch] = _branch(features, settings[branch], m, pool_size, norm, branch)

    sem, inst = settings["semantic"], settings["instance"]
    heads = {}
    for name, inputs, channels, outputs, conv in (
        (
            "semantic_head",
            branches["semantic"],
            sem["cfg"].head_channels,
            num_classes,
            sem["head_conv"],
        ),
        ("center_head", branches["instance"], inst["cfg"].head_channels, 1, inst["head_conv"]),
        (
            "offset_head",
            branches["instance"],
            inst["offset_head_channels"],
            2,
            inst["offset_head_conv"],
        ),
    ):
        with _float32_if(name in FLOAT32_PARTS):
            heads[name] = head(
                inputs, channels=channels, outputs=outputs, norm=norm, name=name, conv=conv
            )
    semantic, center, offsets = heads["semantic_head"], heads["center_head"], heads["offset_head"]

    semantic_name, center_name, offsets_name = OUTPUTS
    outputs = {
        semantic_name: ResizeLike(dtype="float32", name=semantic_name)([semantic, image]),
        center_name: ResizeLike(dtype="float32", name=center_name)([center, image]),
        offsets_name: ResizeOffsetsLike(dtype="float32", name=offsets_name)([offsets, image]),
    }
    return keras.Model(image, outputs, name=f"panoptic_deeplab_{m.backbone}_os{m.output_stride}")


def check_input_size(config: Config, input_shape: tuple[int, int] | None = None) -> None:
    """A ConfigError when the train crop (or ``input_shape``) exceeds what the network takes
    (``input_limits``: axial attention)."""
    limit = max_input_side(config.model)
    if limit is None:
        return
    for what, size in (
        ("dataset.crop_size", config.dataset.crop_size),
        ("input size", input_shape),
    ):
        if size is not None and max(int(s) for s in size) > limit:
            raise ConfigError(
                f"{what} {list(size)}: {describe_limit(config.model)}. Use a crop of at most "
                f"{limit}x{limit}."
            )
