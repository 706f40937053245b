"""Evaluating a model on a data set split: the one function behind ``pdl evaluate`` and
``pdl train --eval-split`` (:func:`evaluate_split`), so the two give the same numbers by
construction. Both hand it a :class:`~panoptic_deeplab.inference.Predictor` (``pdl evaluate``: of a
saved bundle; training: of the network being trained, see :func:`network_predictor`); it reads the
split's images (``prediction_io.iter_predictions``, unreadable ones skipped) and labels, predicts
with the Predictor's resize / pad / post-processing / undo rules and accumulates every metric:
PQ / SQ / RQ (all, things, stuff, per class; panopticapi semantics), mIoU with the confusion
matrix, instance AP (COCO and Cityscapes style), the PQ points lost per error type, per-image
records with per-segment match details and error types for the app, and optionally the oracles
(docs/error-analysis.md). :func:`evaluate_predictions` computes the same for a prediction set (any
model's predictions read from files), and :func:`evaluate` is the library call for either. The
result is an :class:`~.results.EvaluationResult` (its ``to_json`` is ``pdl evaluate --out``).

Predictions stream through: label maps are kept for AP only, compressed (a few tens of kB per
image), so a Cityscapes-sized split fits in memory. No TensorFlow is imported here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .results import (
    ErrorBreakdown,
    EvaluationResult,
    ImageResult,
    InstanceAP,
    OracleResult,
    PanopticScores,
    SemanticScores,
    SkippedImage,
)


def evaluate_split(
    predictor,
    reader,
    *,
    limit: int | None = None,
    ap: str = "both",
    oracles: dict[str, tuple[str, ...]] | None = None,
    where: str = "the split",
    on_skip: Callable | None = None,
    on_prediction: Callable | None = None,
    on_phase: Callable | None = None,
) -> EvaluationResult:
    """Every metric of ``predictor`` on the first ``limit`` images of ``reader`` (all when None).

    ``ap``: both | coco | cityscapes | none. ``oracles``: ``evaluation.oracles.parse_oracles``'s
    result, evaluated with the Predictor's own post-processing options. ``on_skip(source, reason)``
    hears of every unreadable image (also listed under ``skipped``), ``on_prediction(source, image,
    prediction)`` of every prediction (e.g. to save it), ``on_phase(text)`` of the work after the
    images (AP, oracles). ``where`` names the split in the error raised when no image could be
    read."""
    from ..prediction_io import iter_predictions, sources_from_dataset

    sources = sources_from_dataset(reader)
    index_of = {s.path: i for i, s in enumerate(sources)}
    if limit is not None:
        sources = sources[: max(0, limit)]
    spec = predictor.spec
    oracle_eval = None
    if oracles is not None:
        oracle_eval = OracleEvaluation(
            spec, oracles, predictor.pipeline.postprocess, predictor.config.dataset.sigma
        )
    evaluation = Evaluation(spec, ap=ap)
    skipped: list[SkippedImage] = []

    def skip(source, reason):
        skipped.append(SkippedImage(source.image_id, str(source.path), reason))
        if on_skip:
            on_skip(source, reason)

    for source, image, prediction in iter_predictions(
        predictor, sources, on_skip=skip, return_raw=oracle_eval is not None
    ):
        gt = reader.load_panoptic(index_of[source.path])
        record = evaluation.add(source.image_id, source.path.name, gt, prediction)
        if oracle_eval is not None:
            oracle_eval.add(record, gt, prediction)
        if on_prediction:
            on_prediction(source, image, prediction)
    if not evaluation.per_image:
        from ..errors import DatasetError

        raise DatasetError(
            f"{where}: none of the {len(sources)} images could be read; nothing to evaluate."
        )
    if on_phase:
        on_phase(_FINAL_PHASE)
    result = evaluation.result()
    result.skipped = skipped
    if oracle_eval is not None:
        result.oracles = oracle_eval.result()
    return result


def evaluate_predictions(
    predictions,
    reader,
    *,
    limit: int | None = None,
    ap: str = "both",
    where: str | None = None,
    on_image: Callable | None = None,
    on_phase: Callable | None = None,
) -> EvaluationResult:
    """Every metric of a :class:`~panoptic_deeplab.prediction_sets.PredictionSet` on the first
    ``limit`` images of ``reader``, as :func:`evaluate_split` computes them for a model (the same
    result type and JSON; no oracles, and AP only when every thing segment carries a ``score``).

    The set is checked first (images without a prediction, predictions of images not in the
    split, the JSON's structure); each image's own problems (its PNG, its segments) are gathered
    while evaluating. Any problem raises a DatasetError listing them all, each with its file, the
    segment and the fix. ``on_image(example, prediction)`` hears of every image evaluated,
    ``on_phase(text)`` of the work after the images."""
    from ..prediction_sets import require_valid

    where = where or f"prediction set {predictions.name!r}"
    pairs, problems = predictions.match(reader, limit)
    require_valid(problems, where)
    if not pairs:
        from ..errors import DatasetError

        raise DatasetError(f"{where}: split '{reader.split}' has no images; nothing to evaluate.")
    if ap != "none" and not predictions.has_scores:
        ap = "none"  # AP ranks segments by their score: without one there is no AP
    evaluation = Evaluation(reader.spec, ap=ap)
    for index, entry in pairs:
        example = reader[index]
        gt = reader.load_panoptic(index)
        prediction, image_problems = predictions.read(entry, example.image_id, gt.shape)
        if image_problems:
            problems += image_problems
            continue
        if not problems:  # once one image is broken only the problems are gathered
            evaluation.add(example.image_id, Path(example.image_path).name, gt, prediction)
        if on_image:
            on_image(example, prediction)
    require_valid(problems, where)
    if on_phase:
        on_phase(_FINAL_PHASE)
    result = evaluation.result()
    result.predictions = predictions.source()
    return result


def evaluate(
    source,
    dataset,
    split: str = "val",
    *,
    limit: int | None = None,
    ap: str = "both",
    oracles: str | None = None,
    check_dataset: bool = True,
) -> EvaluationResult:
    """Evaluate a model or a prediction set on a data set split: the library call behind
    ``pdl evaluate`` (which adds progress, saving and the predictor's command-line options).

    ``source``: a bundle directory, a :class:`~panoptic_deeplab.bundle.Bundle` or a
    :class:`~panoptic_deeplab.inference.Predictor` (a model), a
    :class:`~panoptic_deeplab.prediction_sets.PredictionSet`, or the path of a COCO-panoptic
    predictions JSON (its PNG folder beside it). ``dataset``: the data set root. ``oracles``:
    e.g. ``"semantic,center,offset,all"`` (models only). ``check_dataset``: first run the checks
    of ``pdl check-dataset`` on the split (a pass is remembered)."""
    from ..datasets.readers import open_dataset
    from ..errors import UserError
    from ..prediction_sets import PredictionSet

    if check_dataset:
        from ..datasets.checks import require_valid_dataset

        require_valid_dataset(dataset, split, allow_image_problems=True)
    if isinstance(source, (str, Path)) and Path(source).suffix == ".json":
        reader = open_dataset(dataset, split)
        source = PredictionSet.open(reader.spec, predictions=source)
    if isinstance(source, PredictionSet):
        if oracles:
            raise UserError(ORACLES_NEED_A_MODEL)
        reader = open_dataset(dataset, split, spec=source.spec)
        result = evaluate_predictions(source, reader, limit=limit, ap=ap)
    else:
        from ..datasets.class_check import require_matching_classes
        from ..inference import Predictor

        predictor = source if isinstance(source, Predictor) else Predictor(source)
        model = str(predictor.bundle.path or "the model")
        require_matching_classes(predictor.spec, dataset, split, model)
        reader = open_dataset(dataset, split, spec=predictor.spec)
        parsed = None
        if oracles:
            from .oracles import parse_oracles

            parsed = parse_oracles(oracles)
        result = evaluate_split(
            predictor, reader, limit=limit, ap=ap, oracles=parsed, where=str(dataset)
        )
        result.model = model
    result.dataset, result.split = str(dataset), split
    return result


_FINAL_PHASE = "computing AP and the error breakdown"
ORACLES_NEED_A_MODEL = (
    "--oracle replaces a model's heads (semantic, center, offset) by ground truth and fuses "
    "again; a prediction set has only its panoptic maps, no heads. Drop --oracle, or evaluate "
    "the model itself (--model BUNDLE)."
)


def network_predictor(network, config, spec):
    """The Predictor ``pdl evaluate`` would build for a bundle of ``network`` (built from
    ``config``) with its default options: training's periodic evaluation predicts through it."""
    from ..bundle import Bundle
    from ..inference import Predictor

    return Predictor(Bundle(None, config, spec, network))


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
        from . import ConfusionMatrix, PQStat
        from .coco_io import spec_categories
        from .error_breakdown import ErrorStat

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
        from . import SegmentTable, match_image, segment_details
        from .coco_io import label_map_segments
        from .panoptic_quality import image_pq

        spec = self.spec
        if gt_panoptic.shape != prediction.panoptic.shape:
            raise DatasetError(
                f"{file_name}: label size {gt_panoptic.shape} differs from the image size "
                f"{prediction.panoptic.shape}; the label does not belong to this image."
            )
        gmap, gt = label_map_segments(
            gt_panoptic, spec.label_divisor, spec.ignore_label, spec.thing_class_ids, True
        )
        pmap, pred = label_map_segments(
            prediction.panoptic, spec.label_divisor, spec.ignore_label, spec.thing_class_ids, False
        )
        match = match_image(gmap, gt, pmap, pred, self.index)
        self.pq.add(match)
        gt_sem = np.asarray(gt_panoptic) // spec.label_divisor
        self.confusion.update(gt_sem, prediction.semantic)
        scores = {s.id: s.score for s in prediction.segments if s.isthing and s.score is not None}
        if self.ap != "none":
            self._gt.append(_Packed(np.asarray(gt_panoptic, np.int64)))
            self._pred.append(_Packed(prediction.panoptic.astype(np.int64)))
            self._scores.append(scores)
        # Segment ids back to panoptic values (label_map_segments shifts them by one).
        unshift = lambda t: SegmentTable(t.ids - 1, t.category_ids, t.iscrowd, t.areas)  # noqa: E731
        record = {
            "image_id": image_id,
            "file_name": file_name,
            **image_pq(match, self.categories),
            **segment_details(match, unshift(gt), unshift(pred)),
            "scores": {str(k): v for k, v in scores.items()},
        }
        mark_stuff_dropped_by_area_limit(record["gt_segments"], gt_panoptic, prediction, spec)
        self._add_errors(record, match, gt, pred)
        self.per_image.append(record)
        return record

    def _add_errors(self, record: dict, match, gt, pred) -> None:
        """Error type (docs/error-analysis.md) of every FN and FP, on the records and the sums."""
        from .error_breakdown import classify_errors

        limited = np.array(
            [s.get("reason") == "stuff_area_limit" for s in record["gt_segments"]], bool
        )
        gt_errors, pred_errors = classify_errors(match, gt, pred, limited)
        for seg, error in zip(record["gt_segments"], gt_errors):
            seg["error"] = error
        for seg, error in zip(record["pred_segments"], pred_errors):
            seg["error"] = error
        self.errors.add(gt, pred, gt_errors, pred_errors)

    def result(self) -> EvaluationResult:
        """The metrics so far (``per_image`` included) as an :class:`EvaluationResult`."""
        from . import cityscapes_instance_ap, coco_instance_ap

        panoptic = self.pq.summary()
        instance = {}
        kwargs = dict(
            thing_class_ids=self.spec.thing_class_ids,
            label_divisor=self.spec.label_divisor,
            ignore_label=self.spec.ignore_label,
        )
        styles = {"coco": coco_instance_ap, "cityscapes": cityscapes_instance_ap}
        for style, compute in styles.items():
            if self.ap in ("both", style):
                maps = self._maps(self._gt), self._maps(self._pred)
                instance[style] = InstanceAP.from_library(compute(*maps, self._scores, **kwargs))
        return EvaluationResult(
            num_images=len(self.per_image),
            panoptic=PanopticScores.from_json(panoptic),
            errors=ErrorBreakdown.from_json(self.errors.breakdown(panoptic)),
            semantic=SemanticScores.from_json(self.confusion.result()),
            instance=instance,
            per_image=[ImageResult.from_json(r) for r in self.per_image],
        )

    @staticmethod
    def _maps(packed):
        return (p.unpack() for p in packed)


class OracleEvaluation:
    """One :class:`Evaluation` (PQ and error breakdown, no AP) per oracle (oracles.py)."""

    def __init__(self, spec, oracles: dict[str, tuple[str, ...]], options, sigma: float):
        from .oracles import OracleRunner

        self.oracles = oracles
        self.runner = OracleRunner(spec, options, sigma)
        self.evaluations = {name: Evaluation(spec, ap="none") for name in oracles}
        self.centers = {
            name: {"instances": 0, "shared_center": 0, "center_not_found": 0} for name in oracles
        }
        self.crowd_segments = 0
        self.spec = spec

    def add(self, record: dict, gt_panoptic: np.ndarray, prediction) -> None:
        """Evaluate every oracle on one image; their PQ goes on the model's per-image ``record``."""
        from .oracles import center_accounting

        targets = self.runner.targets(gt_panoptic)
        self.crowd_segments += sum(s["status"] == "crowd" for s in record["gt_segments"])
        record["oracle_pq"] = {}
        for name, heads in self.oracles.items():
            out = self.runner.run(prediction, targets, heads)
            one = self.evaluations[name].add(
                record["image_id"], record["file_name"], gt_panoptic, out
            )
            record["oracle_pq"][name] = one.get("pq")
            self.evaluations[name].per_image.clear()  # only the sums are reported per oracle
            for key, value in center_accounting(gt_panoptic, out.center_points, self.spec).items():
                self.centers[name][key] += value

    def result(self) -> dict[str, OracleResult]:
        from .oracles import shortfall

        out = {}
        for name, evaluation in self.evaluations.items():
            panoptic = evaluation.pq.summary()
            errors = evaluation.errors.breakdown(panoptic)
            centers = self.centers[name]
            why = shortfall(
                {"errors": errors},
                centers if "center" in self.oracles[name] else {},
                self.crowd_segments,
            )
            out[name] = OracleResult(
                heads=tuple(self.oracles[name]),
                panoptic=PanopticScores.from_json(panoptic),
                errors=ErrorBreakdown.from_json(errors),
                centers=dict(centers),
                why_below_100=why,
            )
        return out


def mark_stuff_dropped_by_area_limit(
    gt_segments: list[dict], gt_panoptic, prediction, spec
) -> None:
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
