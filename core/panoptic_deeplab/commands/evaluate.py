"""``pdl evaluate``: predict a data set split with a bundle and compute every metric (the library's
``evaluation.evaluate_split``, which ``pdl train --eval-split`` runs too): PQ / SQ / RQ (all,
things, stuff, per class; panopticapi semantics), mIoU with the confusion matrix, instance AP
(COCO style with pycocotools and Cityscapes style), the PQ points lost per error type, plus
per-image records with per-segment match details and error types for the app. ``--oracle`` adds
the same PQ with ground truth in place of heads (docs/error-analysis.md). Tables are printed with
pandas; ``--out R.json`` keeps everything. This module is the command line: options, printing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .predict import add_predictor_arguments, make_predictor, open_matching_dataset


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model bundle directory (holds bundle.json)")
    parser.add_argument(
        "--dataset",
        required=True,
        help="data set root (COCO-panoptic, Cityscapes or Mapillary Vistas layout)",
    )
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--out", default=None, help="write all results to this JSON file")
    parser.add_argument(
        "--save-predictions",
        default=None,
        metavar="DIR",
        help="also write the predictions as COCO-panoptic files (like pdl predict)",
    )
    parser.add_argument(
        "--ap",
        choices=("both", "coco", "cityscapes", "none"),
        default="both",
        help="instance AP styles to compute (default: both)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument(
        "--skip-dataset-check",
        action="store_true",
        help="start without the `pdl check-dataset` pass over the split (large data sets checked before)",
    )
    parser.add_argument(
        "--oracle",
        default=None,
        metavar="LIST",
        help="also evaluate with ground truth in place of heads: comma-separated semantic, center, "
        "offset, all (the three), none (raw maps fused again), or combinations like "
        "semantic+center (docs/error-analysis.md)",
    )
    add_predictor_arguments(parser)


def print_report(result: dict, spec, file=None) -> None:
    import pandas as pd

    from ..evaluation.report import miou_table, percent, pq_class_table, pq_summary_table

    file = (
        file or sys.stdout
    )  # looked up at call time: a default bound at import goes stale under capture
    with pd.option_context("display.max_rows", 500, "display.width", 120):
        print("\nPanoptic quality (%)", file=file)
        print(pq_summary_table(result["panoptic"]).to_string(), file=file)
        print("\nPer class", file=file)
        print(pq_class_table(result["panoptic"]).to_string(), file=file)
        sem = result["semantic"]
        print(
            f"\nmIoU: {percent(sem['miou'])} %  (pixel accuracy {percent(sem['pixel_accuracy'])} %)",
            file=file,
        )
        print(miou_table(sem, spec.class_names).to_string(), file=file)
        print_errors(result, file)
        if result.get("oracles"):
            print_oracles(result, file)
        rows = []
        for style, r in result["instance"].items():
            rows.append(
                {"style": style, "AP": percent(r.get("ap")), "AP50": percent(r.get("ap50"))}
            )
        if rows:
            print("\nInstance AP (%)", file=file)
            print(pd.DataFrame(rows).set_index("style").to_string(), file=file)


def print_errors(result: dict, file) -> None:
    from ..evaluation.report import error_table

    print(
        "\nPQ points lost per error type (with PQ they add up to 100; docs/error-analysis.md)",
        file=file,
    )
    print(error_table(result["errors"]).to_string(), file=file)


def print_oracles(result: dict, file) -> None:
    from ..evaluation.report import oracle_class_table, oracle_summary_table

    print(
        "\nOracles: ground truth in place of heads, same post-processing (PQ / SQ / RQ, %)",
        file=file,
    )
    print(oracle_summary_table(result).to_string(), file=file)
    print("\nOracle PQ per class (largest gain: the head that costs the class most)", file=file)
    print(oracle_class_table(result).to_string(), file=file)
    for name, entry in result["oracles"].items():
        if set(entry["heads"]) == {"semantic", "center", "offset"} and entry.get("why_below_100"):
            print(f"\nWhy the full oracle ({name}) is not 100:", file=file)
            print("\n".join(entry["why_below_100"]), file=file)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bundle import load_bundle
    from ..evaluation.evaluate_split import evaluate_split, to_json
    from ..prediction_io import PanopticWriter

    started = time.time()
    oracle_names = None
    if args.oracle:  # a misspelt oracle fails before any work
        from ..evaluation.oracles import parse_oracles

        oracle_names = parse_oracles(args.oracle)
    if not args.skip_dataset_check:
        # Wrong labels fail now, with check-dataset's messages; unreadable images are skipped and reported.
        from ..datasets.checks import require_valid_dataset

        require_valid_dataset(args.dataset, args.split, allow_image_problems=True)
    # The classes before the network is built: a mismatch is reported in a second, not after TF starts.
    from ..bundle import read_bundle_metadata
    from ..datasets.class_check import require_matching_classes

    require_matching_classes(
        read_bundle_metadata(args.model)[1], args.dataset, args.split, args.model
    )
    bundle = load_bundle(args.model, precision=args.precision)
    reader = open_matching_dataset(args.dataset, args.split, bundle.spec, args.model)
    predictor = make_predictor(bundle, args)
    writer = PanopticWriter(args.save_predictions, bundle.spec) if args.save_predictions else None
    total = len(reader) if args.limit is None else min(len(reader), max(0, args.limit))
    progress = tqdm(total=total, unit="img", desc="evaluate", file=sys.stderr)

    def skip(source, reason):
        if writer:
            writer.skip(source, reason)
        progress.update(1)
        tqdm.write(f"skipped: {reason}", file=sys.stderr)

    def predicted(source, image, prediction):
        if writer:
            writer.add(source, image, prediction)
        progress.update(1)

    try:
        result = evaluate_split(
            predictor,
            reader,
            limit=args.limit,
            ap=args.ap,
            oracles=oracle_names,
            where=str(args.dataset),
            on_skip=skip,
            on_prediction=predicted,
        )
    finally:
        progress.close()
        if writer:
            writer.close()
    result = {
        "model": str(args.model),
        "dataset": str(args.dataset),
        "split": args.split,
        "num_images": result["num_images"],
        "skipped": result["skipped"],
        "settings": {
            "scales": list(args.scales),
            "flip": bool(args.flip),
            "pad_to": args.pad_to,
            "backend": predictor.backend,
            "precision": predictor.precision.name,
            "max_side": predictor.pipeline.max_side,
            "postprocess": predictor.pipeline.postprocess.to_dict(),
            "oracles": {name: list(heads) for name, heads in (oracle_names or {}).items()},
        },
        "seconds": round(time.time() - started, 1),
        **result,
    }
    print_report(result, bundle.spec)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(to_json(result)))
        print(f"\nwrote {out}")
    return 0
