"""``pdl evaluate``: predict a data set split with a bundle and compute every metric (the library's
``evaluation.evaluate_split``, which ``pdl train --eval-split`` runs too): PQ / SQ / RQ (all,
things, stuff, per class; panopticapi semantics), mIoU with the confusion matrix, instance AP
(COCO style with pycocotools and Cityscapes style), the PQ points lost per error type, plus
per-image records with per-segment match details and error types for the app. ``--oracle`` adds
the same PQ with ground truth in place of heads (docs/error-analysis.md). With ``--predictions`` /
``--pred-folder`` a prediction set (any model's predictions, read from files) is evaluated instead
of a bundle, with the same report and results (``evaluation.evaluate_predictions``). Tables are
printed with pandas; ``--out R.json`` keeps everything (``EvaluationResult.to_json``). This module
is the command line: options, phases, printing.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..prediction_sets import FORMATS
from .predict import add_predictor_arguments, make_predictor, open_matching_dataset


def configure_parser(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to evaluate (a model, or a prediction set)")
    what.add_argument("--model", default=None, help="model bundle directory (holds bundle.json)")
    what.add_argument(
        "--predictions",
        default=None,
        metavar="PRED_JSON",
        help="a prediction set instead of a model: its COCO-panoptic predictions JSON (as "
        "panopticapi, detectron2 or `pdl predict` write it; optional per-segment 'score')",
    )
    what.add_argument(
        "--pred-folder",
        default=None,
        metavar="DIR",
        help="the prediction set's PNG folder (default: PRED_JSON without .json)",
    )
    what.add_argument(
        "--pred-format",
        choices=FORMATS,
        default="coco_panoptic",
        help="coco_panoptic (default), or deeplab2's raw PNGs two_channel_png / "
        "three_channel_png (with --pred-folder and --class-table)",
    )
    what.add_argument(
        "--class-table",
        default=None,
        metavar="T",
        help="raw PNGs: what their R channel means: train_ids (default: the data set's train "
        'ids) or a JSON file {"<value>": <category id> or null for void}',
    )
    what.add_argument(
        "--name", default=None, help="the prediction set's name (default: from its folder)"
    )
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
        help="start without the `pdl check-dataset` pass over the split (large data sets "
        "checked before)",
    )
    parser.add_argument(
        "--oracle",
        default=None,
        metavar="LIST",
        help="also evaluate with ground truth in place of heads: comma-separated semantic, center, "
        "offset, all (the three), none (raw maps fused again), or combinations like "
        "semantic+center (docs/error-analysis.md); models only",
    )
    add_predictor_arguments(parser)


def print_report(result, spec, file=None) -> None:
    """The tables of an :class:`~panoptic_deeplab.evaluation.results.EvaluationResult`."""
    import pandas as pd

    from ..evaluation.report import miou_table, percent, pq_class_table, pq_summary_table

    file = (
        file or sys.stdout
    )  # looked up at call time: a default bound at import goes stale under capture
    with pd.option_context("display.max_rows", 500, "display.width", 120):
        print("\nPanoptic quality (%)", file=file)
        print(pq_summary_table(result.panoptic).to_string(), file=file)
        print("\nPer class", file=file)
        print(pq_class_table(result.panoptic).to_string(), file=file)
        sem = result.semantic
        print(
            f"\nmIoU: {percent(sem.miou)} %  (pixel accuracy {percent(sem.pixel_accuracy)} %)",
            file=file,
        )
        print(miou_table(sem, spec.class_names).to_string(), file=file)
        print_errors(result, file)
        if result.oracles:
            print_oracles(result, file)
        rows = [
            {"style": style, "AP": percent(r.ap), "AP50": percent(r.ap50)}
            for style, r in result.instance.items()
        ]
        if rows:
            print("\nInstance AP (%)", file=file)
            print(pd.DataFrame(rows).set_index("style").to_string(), file=file)
        elif result.kind == "predictions":
            print("\nInstance AP: none (AP needs a 'score' on every thing segment)", file=file)


def print_errors(result, file) -> None:
    from ..evaluation.report import error_table

    print(
        "\nPQ points lost per error type (with PQ they add up to 100; docs/error-analysis.md)",
        file=file,
    )
    print(error_table(result.errors).to_string(), file=file)


def print_oracles(result, file) -> None:
    from ..evaluation.report import oracle_class_table, oracle_summary_table

    print(
        "\nOracles: ground truth in place of heads, same post-processing (PQ / SQ / RQ, %)",
        file=file,
    )
    print(oracle_summary_table(result).to_string(), file=file)
    print("\nOracle PQ per class (largest gain: the head that costs the class most)", file=file)
    print(oracle_class_table(result).to_string(), file=file)
    for name, entry in result.oracles.items():
        if set(entry.heads) == {"semantic", "center", "offset"} and entry.why_below_100:
            print(f"\nWhy the full oracle ({name}) is not 100:", file=file)
            print("\n".join(entry.why_below_100), file=file)


def announce_phase(phase: str, out=None) -> None:
    """A ``phase: ...`` line, as training's run files write them (``training.run_files``, whose
    package imports TensorFlow): the app shows the phase a job is in."""
    print(f"phase: {phase}", file=out or sys.stderr, flush=True)


def uses_tensorflow(args) -> bool:
    """A prediction set is evaluated without TensorFlow (it starts in a second)."""
    return bool(args.model)


def _source_arguments(args) -> None:
    """One of --model and a prediction set; model-only options refused for a prediction set."""
    from ..errors import UserError

    predictions = args.predictions or args.pred_folder
    if bool(args.model) == bool(predictions):
        raise UserError(
            "pdl evaluate: give either --model BUNDLE, or a prediction set "
            "(--predictions PRED_JSON [--pred-folder DIR], or --pred-folder DIR --pred-format ...)"
        )
    if predictions and args.oracle:
        from ..evaluation.evaluate_split import ORACLES_NEED_A_MODEL

        raise UserError(ORACLES_NEED_A_MODEL)
    if predictions and args.save_predictions:
        raise UserError(
            "--save-predictions writes a model's predictions; a prediction set is already files. "
            "Drop --save-predictions."
        )


def run(args: argparse.Namespace) -> int:
    _source_arguments(args)
    started = time.time()
    oracle_names = None
    if args.oracle:  # a misspelt oracle fails before any work
        from ..evaluation.oracles import parse_oracles

        oracle_names = parse_oracles(args.oracle)
    if not args.skip_dataset_check:
        # Wrong labels fail now, with check-dataset's messages; unreadable images are skipped and
        # reported.
        from ..datasets.checks import require_valid_dataset

        announce_phase("checking the data set", sys.stderr)
        require_valid_dataset(args.dataset, args.split, allow_image_problems=True)
    if args.model:
        result, spec = _evaluate_model(args, oracle_names)
    else:
        result, spec = _evaluate_predictions(args)
    result.dataset, result.split = str(args.dataset), args.split
    result.seconds = round(time.time() - started, 1)
    if args.out:
        announce_phase("writing the results", sys.stderr)
        out = result.save(args.out)
    print_report(result, spec)
    if args.out:
        print(f"\nwrote {out}")
    return 0


def _progress(total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc=what, file=sys.stderr)


def _evaluate_model(args, oracle_names):
    from ..bundle import load_bundle, read_bundle_metadata
    from ..datasets.class_check import require_matching_classes
    from ..evaluation.evaluate_split import evaluate_split
    from ..prediction_io import PanopticWriter

    # The classes before the network is built: a mismatch is reported in a second, not after
    # TensorFlow starts.
    require_matching_classes(
        read_bundle_metadata(args.model)[1], args.dataset, args.split, args.model
    )
    announce_phase("loading TensorFlow and the model", sys.stderr)
    bundle = load_bundle(args.model, precision=args.precision)
    reader = open_matching_dataset(args.dataset, args.split, bundle.spec, args.model)
    predictor = make_predictor(bundle, args)
    writer = PanopticWriter(args.save_predictions, bundle.spec) if args.save_predictions else None
    total = len(reader) if args.limit is None else min(len(reader), max(0, args.limit))
    announce_phase("predicting", sys.stderr)
    progress = _progress(total, "images")

    def skip(source, reason):
        if writer:
            writer.skip(source, reason)
        progress.update(1)
        progress.write(f"skipped: {reason}", file=sys.stderr)

    def predicted(source, image, prediction):
        if writer:
            writer.add(source, image, prediction)
        progress.update(1)

    def phase(text):
        progress.close()
        announce_phase(text, sys.stderr)

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
            on_phase=phase,
        )
    finally:
        progress.close()
        if writer:
            writer.close()
    result.model = str(args.model)
    result.settings = {
        "scales": list(args.scales),
        "flip": bool(args.flip),
        "pad_to": args.pad_to,
        "backend": predictor.backend,
        "precision": predictor.precision.name,
        "max_side": predictor.pipeline.max_side,
        "postprocess": predictor.pipeline.postprocess.to_dict(),
        "oracles": {name: list(heads) for name, heads in (oracle_names or {}).items()},
    }
    return result, bundle.spec


def _evaluate_predictions(args):
    from ..datasets.readers import open_dataset
    from ..evaluation.evaluate_split import evaluate_predictions
    from ..prediction_sets import PredictionSet

    reader = open_dataset(args.dataset, args.split)
    predictions = PredictionSet.open(
        reader.spec,
        predictions=args.predictions,
        folder=args.pred_folder,
        format=args.pred_format,
        class_table=args.class_table,
        name=args.name,
    )
    total = len(reader) if args.limit is None else min(len(reader), max(0, args.limit))
    announce_phase("reading the predictions", sys.stderr)
    progress = _progress(total, "images")

    def phase(text):
        progress.close()
        announce_phase(text, sys.stderr)

    try:
        result = evaluate_predictions(
            predictions,
            reader,
            limit=args.limit,
            ap=args.ap,
            on_image=lambda example, prediction: progress.update(1),
            on_phase=phase,
        )
    finally:
        progress.close()
    result.settings = {"ap": "none" if not result.instance else args.ap}
    return result, reader.spec
