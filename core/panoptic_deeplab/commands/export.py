"""``pdl export``: a bundle as a SavedModel (whole pipeline inside), or a TFLite, ONNX or OpenVINO
file (network only). See ``panoptic_deeplab.export`` for what each format holds."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model bundle directory (holds bundle.json)")
    parser.add_argument(
        "--format", choices=("saved_model", "tflite", "onnx", "openvino"), default="saved_model"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="SavedModel directory, .tflite file, .onnx file or OpenVINO .xml file",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing export at --out"
    )
    g = parser.add_argument_group("saved_model options")
    g.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        metavar="S",
        help="test-time scales inside",
    )
    g.add_argument("--flip", action="store_true", help="mirrored test-time augmentation inside")
    g.add_argument(
        "--max-side", type=int, default=None, help="downscale inputs whose long side exceeds this"
    )
    g.add_argument("--pad-to", choices=("crop", "minimal"), default="crop")
    g.add_argument("--center-threshold", type=float, default=None)
    g.add_argument("--nms-kernel", type=int, default=None)
    g.add_argument("--keep-k-centers", type=int, default=None)
    g.add_argument("--stuff-area-limit", type=int, default=None)
    g = parser.add_argument_group("tflite options")
    g.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="fixed input size (default: the train crop)",
    )


def run(args: argparse.Namespace) -> int:
    from ..bundle import open_bundle
    from ..converters import export_onnx, export_openvino, export_tflite
    from ..export import export_saved_model

    # Exports hold float32 arithmetic; the runtime that loads them picks its own precision. The
    # network is built by the export, after it checked --out.
    bundle = open_bundle(args.model, precision="fp32")
    if args.format == "saved_model":
        path = export_saved_model(
            bundle,
            args.out,
            scales=tuple(args.scales),
            flip=args.flip,
            max_side=args.max_side,
            pad_to=args.pad_to,
            overwrite=args.overwrite,
            center_threshold=args.center_threshold,
            nms_kernel=args.nms_kernel,
            keep_k_centers=args.keep_k_centers,
            stuff_area_limit=args.stuff_area_limit,
        )
        print(
            f"wrote SavedModel to {path} (signatures serving_default: uint8 [B,H,W,3], "
            "serve_image: uint8 [H,W,3]; outputs: panoptic, semantic, semantic_probs, "
            "center_heatmap, offsets, centers, instance scores)"
        )
    elif args.format in ("onnx", "openvino"):
        path = (export_onnx if args.format == "onnx" else export_openvino)(
            bundle, args.out, overwrite=args.overwrite
        )
        sidecar = (
            path.with_suffix(path.suffix + ".json")
            if args.format == "onnx"
            else path.with_suffix(".json")
        )
        print(
            f"wrote {args.format} model to {path} (network only: float32 image [B,H,W,3] -> raw "
            "semantic_logits, center_heatmap, offsets; post-processing runs after it, see "
            f"{sidecar}; run it with `pdl predict --model {args.model} --backend {args.format} "
            f"--engine-file {path}`)"
        )
    else:
        if bundle.config.model.backbone not in ("mobilenet_v3_large", "mobilenet_v3_small"):
            print(
                "note: TFLite is meant for the MobileNetV3 models; this bundle uses "
                f"{bundle.config.model.backbone}."
            )
        path = export_tflite(
            bundle,
            args.out,
            input_size=tuple(args.input_size) if args.input_size else None,
            overwrite=args.overwrite,
        )
        print(
            f"wrote TFLite model to {path} (network only: raw semantic_logits, center_heatmap, "
            f"offsets; see {path}.json for the input size and post-processing settings)"
        )
    return 0
