"""``pdl predict``: run a model bundle on images or a data set split and write COCO-panoptic
predictions (see ``prediction_io`` for the files)."""

from __future__ import annotations

import argparse
import sys


def add_predictor_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``pdl predict`` and ``pdl evaluate``."""
    g = parser.add_argument_group("inference")
    add_precision_argument(g)
    g.add_argument(
        "--backend",
        choices=("tf", "onnx", "openvino"),
        default=None,
        help="engine for the network: TensorFlow, or an export run by ONNX Runtime / OpenVINO "
        "(converted on first use and cached; default: $PDL_BACKEND or tf)",
    )
    g.add_argument(
        "--engine-file",
        default=None,
        metavar="FILE",
        help="an exported .onnx / .xml file to run with --backend onnx / openvino "
        "(default: the cached export)",
    )
    g.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        metavar="S",
        help="test-time scales, e.g. 0.75 1 1.25 (default: 1)",
    )
    g.add_argument("--flip", action="store_true", help="also run mirrored images and average")
    g.add_argument(
        "--batch-size", type=int, default=1, help="images per network call (same padded size)"
    )
    g.add_argument(
        "--max-side",
        type=int,
        default=None,
        help="downscale images whose long side exceeds this (default: max(2049, crop))",
    )
    g.add_argument(
        "--pad-to",
        choices=("crop", "minimal"),
        default="crop",
        help="pad to at least the train crop (deeplab2 eval, default) or to the nearest k*OS+1",
    )
    g = parser.add_argument_group("post-processing (default: the bundle's config)")
    g.add_argument("--center-threshold", type=float, default=None)
    g.add_argument("--nms-kernel", type=int, default=None)
    g.add_argument("--keep-k-centers", type=int, default=None)
    g.add_argument("--stuff-area-limit", type=int, default=None)


def add_precision_argument(parser, training: bool = False) -> None:
    from ..precision import PRECISIONS

    default = (
        "the config's model.dtype_policy"
        if training
        else "$PDL_PRECISION, else the bundle's default (auto)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"network arithmetic; auto = bf16 where the CPU/GPU has it natively, else fp32 "
        f"(default: {default})",
    )


def make_predictor(bundle, args):
    from ..inference import Predictor

    if args.batch_size < 1:
        from ..errors import UserError

        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    predictor = Predictor(
        bundle,
        precision=args.precision,
        backend=args.backend,
        engine_file=args.engine_file,
        scales=tuple(args.scales),
        flip=args.flip,
        batch_size=args.batch_size,
        max_side=args.max_side,
        pad_to=args.pad_to,
        center_threshold=args.center_threshold,
        nms_kernel=args.nms_kernel,
        keep_k_centers=args.keep_k_centers,
        stuff_area_limit=args.stuff_area_limit,
    )
    print(f"network: {predictor.describe()}", file=sys.stderr)
    return predictor


def open_matching_dataset(root, split, spec, model_path="the model"):
    """The data set reader, checked to use the bundle's classes (ids, names, thing/stuff)."""
    from ..datasets.class_check import require_matching_classes
    from ..datasets.readers import open_dataset
    from ..errors import DatasetError

    require_matching_classes(spec, root, split, model_path)
    reader = open_dataset(root, split, spec=spec)
    if len(reader) == 0:
        raise DatasetError(f"{root}: split '{split}' has no images.")
    return reader


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model bundle directory (holds bundle.json)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="an image file or a directory of images")
    source.add_argument(
        "--dataset", help="data set root (COCO-panoptic, Cityscapes or Mapillary Vistas layout)"
    )
    parser.add_argument(
        "--split", default="val", help="data set split with --dataset (default: val)"
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--save-raw", action="store_true", help="also write raw outputs as OUT/raw/*.npz"
    )
    parser.add_argument(
        "--overlays", action="store_true", help="also write colour overlays as OUT/overlays/*.jpg"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    add_predictor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bundle import load_bundle
    from ..image_io import list_images
    from ..prediction_io import (
        PanopticWriter,
        iter_predictions,
        sources_from_dataset,
        sources_from_paths,
    )

    bundle = load_bundle(args.model, precision=args.precision)
    if args.images:
        sources = sources_from_paths(list_images(args.images))
    else:
        sources = sources_from_dataset(
            open_matching_dataset(args.dataset, args.split, bundle.spec, args.model)
        )
    if args.limit is not None:
        sources = sources[: max(0, args.limit)]
    predictor = make_predictor(bundle, args)
    info = {
        "model": str(args.model),
        "source": args.images or f"{args.dataset}:{args.split}",
        "scales": list(args.scales),
        "flip": bool(args.flip),
        "backend": predictor.backend,
        "precision": predictor.precision.name,
        "postprocess": predictor.pipeline.postprocess.to_dict(),
    }
    writer = PanopticWriter(
        args.out, bundle.spec, overlays=args.overlays, save_raw=args.save_raw, info=info
    )

    progress = tqdm(total=len(sources), unit="img", desc="predict", file=sys.stderr)

    def skip(source, reason):
        writer.skip(source, reason)
        progress.update(1)
        tqdm.write(f"skipped: {reason}", file=sys.stderr)

    try:
        for source, image, prediction in iter_predictions(
            predictor, sources, return_raw=args.save_raw, on_skip=skip
        ):
            writer.add(source, image, prediction)
            for note in prediction.notes:
                tqdm.write(f"note: {source.path}: {note}", file=sys.stderr)
            progress.update(1)
    finally:
        progress.close()
        path = writer.close()  # what was predicted so far is kept, even when interrupted
    print(
        f"wrote {len(writer.annotations)} predictions to {path}"
        + (
            f"; skipped {len(writer.skipped)} unreadable image(s), "
            f"see {writer.out / 'skipped.json'}"
            if writer.skipped
            else ""
        )
    )
    return 0 if writer.annotations or not sources else 1
