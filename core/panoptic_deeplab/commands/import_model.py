"""``pdl import deeplab2``: turn a checkpoint of the authors' deeplab2 Panoptic-DeepLab into a model
bundle (see ``panoptic_deeplab.deeplab2``)."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=("deeplab2",), help="where the checkpoint comes from")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint prefix (DIR/ckpt-60000), a folder with a 'checkpoint' file (latest), "
        "or a deeplab2 SavedModel folder",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="the deeplab2 experiment .textproto the model was trained with, or a preset name / "
        "YAML",
    )
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument(
        "--dataset-spec",
        default=None,
        help="class table (cityscapes, coco, synthetic); default: from the config's data set name",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing bundle at --out"
    )
    parser.add_argument(
        "--root",
        default=None,
        help="a work directory (the app's, as pdl jobs --root) whose model list gets the bundle; "
        "without it the bundle is registered nowhere",
    )


def run(args: argparse.Namespace) -> int:
    from ..deeplab2.importer import import_deeplab2

    result = import_deeplab2(
        args.checkpoint,
        args.config,
        args.out,
        dataset_spec=args.dataset_spec,
        overwrite=args.overwrite,
        app_root=args.root,
    )
    m, p = result.config.model, result.config.postprocess
    lines = [
        f"imported {result.prefix} -> {result.bundle}",
        f"  backbone:        {m.backbone}, output stride {m.output_stride}, "
        f"width {m.backbone_width}"
        + (f", stem width {m.stem_width}" if m.stem_width is not None else ""),
        f"  classes:         {result.spec.num_classes} ({result.spec.name}, "
        f"{len(result.spec.thing_class_ids)} thing classes, "
        f"label divisor {result.spec.label_divisor})",
        f"  parameters:      {result.params:,}",
        f"  mapped:          {result.mapped} checkpoint variables ({result.values:,} values), one "
        f"to one; {len(result.skipped)} non-model entries skipped (optimizer, counters)",
        f"  post-processing: center threshold {p.center_threshold:g}, NMS kernel {p.nms_kernel}, "
        f"keep {p.keep_k_centers} centers, stuff area limit {p.stuff_area_limit}",
    ]
    lines += [f"  note: {note}" for note in result.notes]
    if result.registered:
        lines.append(f"  app:             listed among the models of {result.registered}")
    print("\n".join(lines))
    return 0
