"""``pdl model-summary``: build a model from a config and print its size.

Prints trainable / non-trainable / total parameters, the output shapes and the multiply-adds at
the config's crop size (counted analytically from conv and dense layers, see ``model/flops.py``).
"""

from __future__ import annotations

import argparse
import json


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="preset name (cityscapes/resnet50_os32) or YAML path"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.output_stride=16 (repeatable)",
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="default: the config's data set"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def summarize(config, num_classes: int | None = None) -> dict:
    """Sizes of the model ``config`` describes, built at the config's crop size."""
    import keras

    from ..model.builder import build_model
    from ..model.flops import count_mult_adds, mult_adds_by_part

    crop = tuple(config.dataset.crop_size)
    model = build_model(config, num_classes=num_classes, input_shape=crop)
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    non_trainable = int(sum(keras.ops.size(w) for w in model.non_trainable_weights))
    backbone = model.get_layer("backbone")
    return {
        "config": config.name,
        "backbone": config.model.backbone,
        "output_stride": config.model.output_stride,
        "input_shape": [1, *crop, 3],
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "total_params": trainable + non_trainable,
        "backbone_trainable_params": int(
            sum(keras.ops.size(w) for w in backbone.trainable_weights)
        ),
        "output_shapes": {k: [1, *t.shape[1:]] for k, t in model.output.items()},
        "mult_adds": count_mult_adds(model),
        "mult_adds_by_part": mult_adds_by_part(model),
        "mult_adds_method": (
            "analytic: conv, depthwise conv and dense layers at the crop size, batch 1"
        ),
        "dtype_policy": config.model.dtype_policy,
    }


def run(args: argparse.Namespace) -> int:
    from ..config import load_config

    config = load_config(args.config, args.overrides)
    info = summarize(config, args.num_classes)
    if args.json:
        print(json.dumps(info))
        return 0
    print(
        f"config            {info['config']}  ({info['backbone']}, output stride "
        f"{info['output_stride']})"
    )
    print(f"input             {info['input_shape']} float32 RGB 0..255")
    print(
        f"trainable params  {info['trainable_params']:,}  (backbone "
        f"{info['backbone_trainable_params']:,})"
    )
    print(f"non-trainable     {info['non_trainable_params']:,}")
    print(f"total params      {info['total_params']:,}")
    for name, shape in info["output_shapes"].items():
        print(f"output            {name:16s} {shape}")
    parts = ", ".join(f"{k} {v / 1e9:.1f} G" for k, v in info["mult_adds_by_part"].items())
    print(
        f"multiply-adds     {info['mult_adds'] / 1e9:.1f} G at the crop size ({parts}; "
        f"{info['mult_adds_method']})"
    )
    return 0
