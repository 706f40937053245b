"""Typed experiment configs: dataclasses loaded from YAML, with named presets shipped in configs/.

A config is addressed by name (``cityscapes/resnet50_os32``, resolved inside the package) or by a
path to a YAML file. Unknown keys are errors that name the key and suggest the closest valid one,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

# tf.distribute strategies `train.strategy` may name (here, not in training/: no TensorFlow import).
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DecoderConfig:
    """One Panoptic-DeepLab decoder (semantic or instance) and its heads (deeplab2 DecoderOptions,
    LowLevelOptions and HeadOptions)."""

    aspp_channels: int = 256
    # Projection widths of the low-level features, in the order they are consumed (res3, res2).
    low_level_project_channels: tuple[int, ...] = (64, 32)
    decoder_channels: int = 256
    head_channels: int = 256  # the semantic head; in the instance decoder, the center head
    feature_key: str = "res5"  # the backbone endpoint the ASPP reads
    low_level_endpoints: tuple[str, ...] | None = None  # null: model.low_level_endpoints
    aspp_rates: tuple[int, ...] | None = None  # null: model.aspp_rates
    aspp_projection_only: bool = (
        False  # the ASPP is one 1x1 conv (deeplab2 aspp_use_only_1x1_proj_conv)
    )
    fuse_conv: str = "separable"  # the decoder's 5x5 convs: separable | standard
    head_conv: str = "separable"  # the 5x5 conv of the head(s) above: separable | standard
    # Instance decoder only: the offset head, when it differs from the center head (null: the same).
    offset_head_channels: int | None = None
    offset_head_conv: str | None = None


@dataclass
class ModelConfig:
    # resnet50 | resnet50_beta | mobilenet_v3_large | mobilenet_v3_small | xception71, or one of
    # deeplab2's Axial-ResNet family: wide_resnet41 | swidernet | axial_swidernet |
    # max_deeplab_s_backbone | max_deeplab_l_backbone | axial_resnet_s | axial_resnet_l |
    # axial_deeplab_s | axial_deeplab_l (model/backbones/__init__.py)
    backbone: str = "resnet50"
    output_stride: int = 32  # 8, 16 or 32 (atrous convolution in the later stages below 32)
    backbone_width: float = 1.0  # channel multiplier for the backbone (1.0 = the published network)
    # ResNet stem multiplier (deeplab2's stem_width_multiplier); null = backbone_width. MobileNetV3
    # scales its stem with backbone_width, as deeplab2 does.
    stem_width: float | None = None
    # ResNet family only (deeplab2 BackboneOptions): block counts times this, truncated
    # (backbone_layer_multiplier); switchable atrous convolution in the stages whose stride reaches
    # sac_beyond_stride (0 = none); squeeze-and-excite in every block; drop path (stochastic depth,
    # training only) with this keep probability for the last stage, constant or linear over stages.
    backbone_layers: float = 1.0
    sac_beyond_stride: int = 0
    squeeze_excite: bool = False
    drop_path_keep_prob: float = 1.0
    drop_path_schedule: str = "constant"  # constant | linear
    # Recompute axial attention in the backward pass instead of keeping its activations (training
    # memory; deeplab2's default). No effect on results.
    recompute_grad: bool = True
    low_level_endpoints: tuple[str, ...] = ("res3", "res2")
    aspp_rates: tuple[int, ...] = (3, 6, 9)
    aspp_separable: bool = False  # True: depthwise-separable atrous branches, as in the paper
    aspp_dropout: float = 0.1
    semantic_decoder: DecoderConfig = field(default_factory=DecoderConfig)
    instance_decoder: DecoderConfig = field(
        default_factory=lambda: DecoderConfig(
            aspp_channels=256,
            low_level_project_channels=(32, 16),
            decoder_channels=128,
            head_channels=32,
        )
    )
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    sync_batch_norm: bool = True
    # Keras dtype policy: float32 | mixed_float16 | mixed_bfloat16 (outputs stay float32).
    dtype_policy: str = "float32"
    # Optional local file with ImageNet-pretrained backbone weights; never downloaded.
    pretrained_backbone: str | None = None


@dataclass
class DatasetConfig:
    name: str = "cityscapes"  # cityscapes | coco | synthetic (selects the class table)
    crop_size: tuple[int, int] = (1025, 2049)  # train crop (H, W); also the eval pad size
    min_resize_value: int = 0  # resize so the short side is >= this (0 = off); COCO uses 641
    max_resize_value: int = 0  # and the long side <= this (0 = off)
    min_scale: float = 0.5
    max_scale: float = 2.0
    scale_step: float = 0.1
    flip: bool = True
    sigma: float = 8.0
    increase_small_instance_weights: bool = True
    small_instance_area: int = 4096
    small_instance_weight: float = 3.0


@dataclass
class LossConfig:
    semantic_weight: float = 1.0
    center_weight: float = 200.0
    offset_weight: float = 0.01
    top_k_percent: float = 0.2


@dataclass
class TrainConfig:
    batch_size: int = 8
    steps: int = 60000
    base_learning_rate: float = 2.5e-4
    end_learning_rate: float = 0.0
    poly_power: float = 0.9
    warmup_steps: int = 0
    gradient_accumulation: int = 1  # micro-batches per optimizer step
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3  # rolling resume checkpoints (model + optimizer), the newest ones
    keep_history: int = 10  # model-only snapshots spread over the run (WORKDIR/history; 0 = none)
    eval_every: int = 0  # 0 = no periodic evaluation
    log_every: int = (
        20  # at most; short runs log more often, so every run draws a curve (monitor.log_interval)
    )
    xla: bool = False
    strategy: str = "auto"  # one of STRATEGIES
    seed: int = 0


@dataclass
class PostProcessConfig:
    center_threshold: float = 0.1
    nms_kernel: int = 13
    keep_k_centers: int = 200
    stuff_area_limit: int = 2048


@dataclass
class Config:
    name: str = "unnamed"
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    postprocess: PostProcessConfig = field(default_factory=PostProcessConfig)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def replace(self, overrides: dict[str, Any] | list[str]) -> Config:
        """A copy with dotted-key overrides (``{"train.steps": 10}`` or ``["train.steps=10"]``)."""
        data = self.to_dict()
        items = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        for dotted, value in items.items():
            _set_dotted(data, dotted, value, source="override")
        return from_dict(data, source="override")


# ---------------------------------------------------------------------------------------------
# Loading and saving


def available_configs() -> list[str]:
    """Names of the presets shipped with the package, e.g. ``cityscapes/resnet50_os32``."""
    return sorted(
        str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.glob("*/*.yaml")
    )


def resolve_config_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(
                f"{path}: config file not found. Give a path to a YAML file or a preset name."
            )
        return path
    preset = CONFIG_DIR / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    names = available_configs()
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"unknown config '{name_or_path}'.{hint} Available presets: {', '.join(names)}"
    )


def load_config(
    name_or_path: str | Path, overrides: dict[str, Any] | list[str] | None = None
) -> Config:
    """Load a preset by name or a YAML file by path, then apply dotted-key overrides."""
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{path}: not valid YAML ({err}). Fix the syntax at the line shown."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections (model:, dataset:, ...), got "
            f"{type(data).__name__}."
        )
    data.setdefault("name", _preset_name(path))
    config = from_dict(data, source=str(path))
    return config.replace(overrides) if overrides else config


def save_config(config: Config, path: str | Path) -> None:
    from .safe_files import write_atomic  # whole or not at all: a full disk leaves no empty file

    write_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    return _build(Config, data, source, prefix="")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are YAML (``1e-3``, ``[513, 513]``, ``true``)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}' must look like section.key=value, e.g. train.steps=100"
            )
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out


# ---------------------------------------------------------------------------------------------
# Internals


def _preset_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(CONFIG_DIR.resolve()).with_suffix(""))
    except ValueError:
        return path.stem


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(valid)}."


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            valid = [k for k, v in node.items() if isinstance(v, dict)]
            where = ".".join(parts[:i]) or "top level"
            raise ConfigError(
                f"{source}: unknown section '{part}' in '{dotted}' "
                f"({where}).{_suggest(part, valid)}"
            )
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"{source}: unknown key '{dotted}'.{_suggest(parts[-1], list(node))}")
    node[parts[-1]] = value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix or 'config'}' must be a mapping, got {data!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{full}'.{_suggest(key, list(fields))}")
        kwargs[key] = _coerce(hints[key], value, source, full)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, prefix=f"{key}.")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, source, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}.")
        item_type = args[0]
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
            raise ConfigError(f"{source}: '{key}' must have 2 items, got {value!r}.")
        return tuple(_coerce(item_type, v, source, key) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{source}: '{key}' must be {hint.__name__}, got {value!r}.")
    return value
