"""``pdl evaluate``: predict a data set split with a bundle and compute every metric: PQ / SQ / RQ
(all, things, stuff, per class; panopticapi semantics), mIoU with the confusion matrix, instance AP
(COCO style with pycocotools and Cityscapes style), the PQ points lost per error type, plus
per-image records with per-segment match details and error types for the app. ``--oracle`` adds
the same PQ with ground truth in place of heads (docs/error-analysis.md). Tables are printed with
pandas; ``--out R.json`` keeps everything.

Predictions stream through: label maps are kept for AP only, compressed (a few tens of kB per
image), so a Cityscapes-sized split fits in memory.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from .predict import add_predictor_arguments, make_predictor, open_matching_dataset


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model bundle directory (holds bundle.json)")
    parser.add_argument("--dataset", required=True, help="data set root (COCO-panoptic, Cityscapes or Mapillary Vistas layout)")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--out", default=None, help="write all results to this JSON file")
    parser.add_argument("--save-predictions", default=None, metavar="DIR",
                        help="also write the predictions as COCO-panoptic files (like pdl predict)")
    parser.add_argument("--ap", choices=("both", "coco", "cityscapes", "none"), default="both",
                        help="instance AP styles to compute (default: both)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--skip-dataset-check", action="store_true",
                        help="start without the `pdl check-dataset` pass over the split (large data sets checked before)")
    parser.add_argument("--oracle", default=None, metavar="LIST",
                        help="also evaluate with ground truth in place of heads: comma-separated semantic, center, "
                             "offset, all (the three), none (raw maps fused again), or combinations like "
                             "semantic+center (docs/error-analysis.md)")
    add_predictor_arguments(parser)


class _Packed:
    """A label map stored compactly: its distinct values and a zlib-compressed index map."""

    def __init__(self, label_map: np.ndarray):
        values, inverse = np.unique(label_map, return_inverse=True)
        dtype = np.uint16 if len(values) < 65536 else np.int32
        self.values, self.shape, self.dtype = values, label_map.shape, dtype
        self.data = zlib.compress(inverse.astype(dtype).tobytes(), 1)

    def unpack(self) -> np.ndarray:
        inverse = np.frombuffer(zlib.decompress(self.data), self.dtype).reshape(self.shape)
        return self.values[inverse]


class Evaluation:
    """Streaming accumulation of PQ, the confusion matrix and (packed) maps for AP."""

    def __init__(self, spec, ap: str = "both"):
        from ..evaluation import ConfusionMatrix, PQStat
        from ..evaluation.coco_io import spec_categories
        from ..evaluation.error_breakdown import ErrorStat

        self.spec = spec
        self.ap = ap
        self.categories = spec_categories(spec)
        self.index = {c["id"]: i for i, c in enumerate(self.categories)}
        self.pq = PQStat(self.categories)
        self.errors = ErrorStat(self.categories)
        self.confusion = ConfusionMatrix(spec.num_classes, spec.ignore_label)
        self.per_image: list[dict] = []
        self._gt: list[_Packed] = []
        self._pred: list[_Packed] = []
        self._scores: list[dict] = []

    def add(self, image_id, file_name: str, gt_panoptic: np.ndarray, prediction) -> dict:
        from ..errors import DatasetError
        from ..evaluation import SegmentTable, match_image, segment_details
        from ..evaluation.coco_io import label_map_segments
        from ..evaluation.panoptic_quality import image_pq

        spec = self.spec
        if gt_panoptic.shape != prediction.panoptic.shape:
            raise DatasetError(f"{file_name}: label size {gt_panoptic.shape} differs from the image size "
                               f"{prediction.panoptic.shape}; the label does not belong to this image.")
        gmap, gt = label_map_segments(gt_panoptic, spec.label_divisor, spec.ignore_label, spec.thing_class_ids, True)
        pmap, pred = label_map_segments(prediction.panoptic, spec.label_divisor, spec.ignore_label,
                                        spec.thing_class_ids, False)
        match = match_image(gmap, gt, pmap, pred, self.index)
        self.pq.add(match)
        gt_sem = np.asarray(gt_panoptic) // spec.label_divisor
        self.confusion.update(gt_sem, prediction.semantic)
        scores = {s.id: s.score for s in prediction.segments if s.isthing}
        if self.ap != "none":
            self._gt.append(_Packed(np.asarray(gt_panoptic, np.int64)))
            self._pred.append(_Packed(prediction.panoptic.astype(np.int64)))
            self._scores.append(scores)
        # Segment ids back to panoptic values (label_map_segments shifts them by one).
        unshift = lambda t: SegmentTable(t.ids - 1, t.category_ids, t.iscrowd, t.areas)  # noqa: E731
        record = {"image_id": image_id, "file_name": file_name, **image_pq(match, self.categories),
                  **segment_details(match, unshift(gt), unshift(pred)),
                  "scores": {str(k): v for k, v in scores.items()}}
        mark_stuff_dropped_by_area_limit(record["gt_segments"], gt_panoptic, prediction, spec)
        self._add_errors(record, match, gt, pred)
        self.per_image.append(record)
        return record

    def _add_errors(self, record: dict, match, gt, pred) -> None:
        """Error type (docs/error-analysis.md) of every FN and FP, on the records and in the sums."""
        from ..evaluation.error_breakdown import classify_errors

        limited = np.array([s.get("reason") == "stuff_area_limit" for s in record["gt_segments"]], bool)
        gt_errors, pred_errors = classify_errors(match, gt, pred, limited)
        for seg, error in zip(record["gt_segments"], gt_errors):
            seg["error"] = error
        for seg, error in zip(record["pred_segments"], pred_errors):
            seg["error"] = error
        self.errors.add(gt, pred, gt_errors, pred_errors)

    def result(self) -> dict:
        from ..evaluation import cityscapes_instance_ap, coco_instance_ap

        panoptic = self.pq.summary()
        out = {"panoptic": panoptic, "errors": self.errors.breakdown(panoptic), "semantic": self.confusion.result(),
               "instance": {}}
        kwargs = dict(thing_class_ids=self.spec.thing_class_ids, label_divisor=self.spec.label_divisor,
                      ignore_label=self.spec.ignore_label)
        if self.ap in ("both", "coco"):
            out["instance"]["coco"] = coco_instance_ap(self._maps(self._gt), self._maps(self._pred), self._scores, **kwargs)
        if self.ap in ("both", "cityscapes"):
            out["instance"]["cityscapes"] = cityscapes_instance_ap(self._maps(self._gt), self._maps(self._pred),
                                                                   self._scores, **kwargs)
        out["per_image"] = self.per_image
        return out

    @staticmethod
    def _maps(packed):
        return (p.unpack() for p in packed)


class OracleEvaluation:
    """One :class:`Evaluation` (PQ and error breakdown, no AP) per oracle (evaluation/oracles.py)."""

    def __init__(self, spec, oracles: dict[str, tuple[str, ...]], options, sigma: float):
        from ..evaluation.oracles import OracleRunner

        self.oracles = oracles
        self.runner = OracleRunner(spec, options, sigma)
        self.evaluations = {name: Evaluation(spec, ap="none") for name in oracles}
        self.centers = {name: {"instances": 0, "shared_center": 0, "center_not_found": 0} for name in oracles}
        self.crowd_segments = 0
        self.spec = spec

    def add(self, record: dict, gt_panoptic: np.ndarray, prediction) -> None:
        """Evaluate every oracle on one image; their PQ goes on the model's per-image ``record``."""
        from ..evaluation.oracles import center_accounting

        targets = self.runner.targets(gt_panoptic)
        self.crowd_segments += sum(s["status"] == "crowd" for s in record["gt_segments"])
        record["oracle_pq"] = {}
        for name, heads in self.oracles.items():
            out = self.runner.run(prediction, targets, heads)
            one = self.evaluations[name].add(record["image_id"], record["file_name"], gt_panoptic, out)
            record["oracle_pq"][name] = one.get("pq")
            self.evaluations[name].per_image.clear()  # only the sums are reported per oracle
            for key, value in center_accounting(gt_panoptic, out.center_points, self.spec).items():
                self.centers[name][key] += value

    def result(self) -> dict:
        from ..evaluation.oracles import shortfall

        out = {}
        for name, evaluation in self.evaluations.items():
            panoptic = evaluation.pq.summary()
            entry = {"heads": list(self.oracles[name]), **panoptic, "errors": evaluation.errors.breakdown(panoptic),
                     "centers": self.centers[name]}
            entry["why_below_100"] = shortfall(entry, self.centers[name] if "center" in self.oracles[name] else {},
                                               self.crowd_segments)
            out[name] = entry
        return out


def mark_stuff_dropped_by_area_limit(gt_segments: list[dict], gt_panoptic, prediction, spec) -> None:
    """Re-label missed stuff segments whose class the network did predict but post-processing
    voided (a stuff class with total area <= ``stuff_area_limit`` becomes void): reason
    ``stuff_area_limit``. Only that rule makes void out of a stuff label, so a GT segment that is
    mostly "semantic says its class, panoptic says void" was dropped by the limit."""
    void_value = spec.ignore_label * spec.label_divisor
    things = set(spec.thing_class_ids)
    voided = np.asarray(prediction.panoptic) == void_value
    semantic = np.asarray(prediction.semantic)
    for seg in gt_segments:
        if seg["status"] != "missed" or seg["category_id"] in things:
            continue
        mask = np.asarray(gt_panoptic) == seg["id"]
        dropped = np.count_nonzero(mask & voided & (semantic == seg["category_id"]))
        if dropped > 0.5 * max(seg["area"], 1):
            seg["reason"] = "stuff_area_limit"


def print_report(result: dict, spec, file=None) -> None:
    import pandas as pd

    from ..evaluation.report import miou_table, pq_class_table, pq_summary_table

    file = file or sys.stdout  # looked up at call time: a default bound at import goes stale under capture
    with pd.option_context("display.max_rows", 500, "display.width", 120):
        print("\nPanoptic quality (%)", file=file)
        print(pq_summary_table(result["panoptic"]).to_string(), file=file)
        print("\nPer class", file=file)
        print(pq_class_table(result["panoptic"]).to_string(), file=file)
        sem = result["semantic"]
        print(f"\nmIoU: {_pct(sem['miou'])} %  (pixel accuracy {_pct(sem['pixel_accuracy'])} %)", file=file)
        print(miou_table(sem, spec.class_names).to_string(), file=file)
        print_errors(result, file)
        if result.get("oracles"):
            print_oracles(result, file)
        rows = []
        for style, r in result["instance"].items():
            rows.append({"style": style, "AP": _pct(r.get("ap")), "AP50": _pct(r.get("ap50"))})
        if rows:
            print("\nInstance AP (%)", file=file)
            print(pd.DataFrame(rows).set_index("style").to_string(), file=file)


def print_errors(result: dict, file) -> None:
    from ..evaluation.report import error_table

    print("\nPQ points lost per error type (with PQ they add up to 100; docs/error-analysis.md)", file=file)
    print(error_table(result["errors"]).to_string(), file=file)


def print_oracles(result: dict, file) -> None:
    from ..evaluation.report import oracle_class_table, oracle_summary_table

    print("\nOracles: ground truth in place of heads, same post-processing (PQ / SQ / RQ, %)", file=file)
    print(oracle_summary_table(result).to_string(), file=file)
    print("\nOracle PQ per class (largest gain: the head that costs the class most)", file=file)
    print(oracle_class_table(result).to_string(), file=file)
    for name, entry in result["oracles"].items():
        if set(entry["heads"]) == {"semantic", "center", "offset"} and entry.get("why_below_100"):
            print(f"\nWhy the full oracle ({name}) is not 100:", file=file)
            print("\n".join(entry["why_below_100"]), file=file)


def _pct(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100.0 * x, 2)


def to_json(value):
    """Plain JSON: numpy -> lists/numbers, NaN -> null, keys -> strings."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bundle import load_bundle
    from ..prediction_io import PanopticWriter, iter_predictions, sources_from_dataset

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

    require_matching_classes(read_bundle_metadata(args.model)[1], args.dataset, args.split, args.model)
    bundle = load_bundle(args.model, precision=args.precision)
    reader = open_matching_dataset(args.dataset, args.split, bundle.spec, args.model)
    sources = sources_from_dataset(reader)
    index_of = {s.path: i for i, s in enumerate(sources)}
    if args.limit is not None:
        sources = sources[: max(0, args.limit)]
    predictor = make_predictor(bundle, args)
    oracles = None
    if oracle_names is not None:  # with the evaluated model's own post-processing settings
        oracles = OracleEvaluation(bundle.spec, oracle_names, predictor.pipeline.postprocess,
                                   bundle.config.dataset.sigma)
    evaluation = Evaluation(bundle.spec, ap=args.ap)
    writer = PanopticWriter(args.save_predictions, bundle.spec) if args.save_predictions else None
    skipped = []
    progress = tqdm(total=len(sources), unit="img", desc="evaluate", file=sys.stderr)

    def skip(source, reason):
        skipped.append({"image_id": source.image_id, "path": str(source.path), "reason": reason})
        if writer:
            writer.skip(source, reason)
        progress.update(1)
        tqdm.write(f"skipped: {reason}", file=sys.stderr)

    try:
        for source, image, prediction in iter_predictions(predictor, sources, on_skip=skip,
                                                          return_raw=oracles is not None):
            gt = reader.load_panoptic(index_of[source.path])
            record = evaluation.add(source.image_id, source.path.name, gt, prediction)
            if oracles is not None:
                oracles.add(record, gt, prediction)
            if writer:
                writer.add(source, image, prediction)
            progress.update(1)
    finally:
        progress.close()
        if writer:
            writer.close()
    if not evaluation.per_image:
        from ..errors import DatasetError

        raise DatasetError(f"{args.dataset}: none of the {len(sources)} images could be read; nothing to evaluate.")
    result = evaluation.result()
    if oracles is not None:
        result["oracles"] = oracles.result()
    result = {
        "model": str(args.model), "dataset": str(args.dataset), "split": args.split,
        "num_images": len(evaluation.per_image), "skipped": skipped,
        "settings": {"scales": list(args.scales), "flip": bool(args.flip), "pad_to": args.pad_to,
                     "backend": predictor.backend, "precision": predictor.precision.name,
                     "max_side": predictor.pipeline.max_side, "postprocess": predictor.pipeline.postprocess.to_dict(),
                     "oracles": {name: list(heads) for name, heads in (oracle_names or {}).items()}},
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
