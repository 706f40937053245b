"""Evaluating a model on a data set split: the one function behind ``pdl evaluate`` and
``pdl train --eval-split`` (:func:`evaluate_split`), so the two give the same numbers by
construction. Both hand it a :class:`~panoptic_deeplab.inference.Predictor` (``pdl evaluate``: of a
saved bundle; training: of the network being trained, see :func:`network_predictor`); it reads the
split's images (``prediction_io.iter_predictions``, unreadable ones skipped) and labels, predicts
with the Predictor's resize / pad / post-processing / undo rules and accumulates every metric:
PQ / SQ / RQ (all, things, stuff, per class; panopticapi semantics), mIoU with the confusion
matrix, instance AP (COCO and Cityscapes style), the PQ points lost per error type, per-image
records with per-segment match details and error types for the app, and optionally the oracles
(docs/error-analysis.md). :func:`to_json` makes the result plain JSON (``pdl evaluate --out``).

Predictions stream through: label maps are kept for AP only, compressed (a few tens of kB per
image), so a Cityscapes-sized split fits in memory. No TensorFlow is imported here.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np


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
) -> dict:
    """Every metric of ``predictor`` on the first ``limit`` images of ``reader`` (all when None):
    ``{num_images, skipped, panoptic, errors, semantic, instance, per_image[, oracles]}``.

    ``ap``: both | coco | cityscapes | none. ``oracles``: ``evaluation.oracles.parse_oracles``'s
    result, evaluated with the Predictor's own post-processing options. ``on_skip(source, reason)``
    hears of every unreadable image (also listed under ``skipped``), ``on_prediction(source, image,
    prediction)`` of every prediction (e.g. to save it). ``where`` names the split in the error
    raised when no image could be read."""
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
    skipped: list[dict] = []

    def skip(source, reason):
        skipped.append({"image_id": source.image_id, "path": str(source.path), "reason": reason})
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
    result = {"num_images": len(evaluation.per_image), "skipped": skipped, **evaluation.result()}
    if oracle_eval is not None:
        result["oracles"] = oracle_eval.result()
    return result


def network_predictor(network, config, spec):
    """The Predictor ``pdl evaluate`` would build for a bundle of ``network`` (built from
    ``config``) with its default options: training's periodic evaluation predicts through it."""
    from ..bundle import Bundle
    from ..inference import Predictor

    return Predictor(Bundle(None, config, spec, network))


def summary(result: dict) -> dict:
    """The headline numbers of an :func:`evaluate_split` result (fractions; periodic evaluation's
    scalars): ``{pq, sq, rq, miou, pq_things, pq_stuff, images}``."""
    pq = result["panoptic"]
    return {
        "pq": pq["All"]["pq"],
        "sq": pq["All"]["sq"],
        "rq": pq["All"]["rq"],
        "miou": result["semantic"]["miou"],
        "pq_things": pq["Things"]["pq"],
        "pq_stuff": pq["Stuff"]["pq"],
        "images": result["num_images"],
    }


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
        scores = {s.id: s.score for s in prediction.segments if s.isthing}
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
        """Error type (docs/error-analysis.md) of every FN and FP, on the records and in the sums."""
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

    def result(self) -> dict:
        from . import cityscapes_instance_ap, coco_instance_ap

        panoptic = self.pq.summary()
        out = {
            "panoptic": panoptic,
            "errors": self.errors.breakdown(panoptic),
            "semantic": self.confusion.result(),
            "instance": {},
        }
        kwargs = dict(
            thing_class_ids=self.spec.thing_class_ids,
            label_divisor=self.spec.label_divisor,
            ignore_label=self.spec.ignore_label,
        )
        if self.ap in ("both", "coco"):
            out["instance"]["coco"] = coco_instance_ap(
                self._maps(self._gt), self._maps(self._pred), self._scores, **kwargs
            )
        if self.ap in ("both", "cityscapes"):
            out["instance"]["cityscapes"] = cityscapes_instance_ap(
                self._maps(self._gt), self._maps(self._pred), self._scores, **kwargs
            )
        out["per_image"] = self.per_image
        return out

    @staticmethod
    def _maps(packed):
        return (p.unpack() for p in packed)


class OracleEvaluation:
    """One :class:`Evaluation` (PQ and error breakdown, no AP) per oracle (evaluation/oracles.py)."""

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

    def result(self) -> dict:
        from .oracles import shortfall

        out = {}
        for name, evaluation in self.evaluations.items():
            panoptic = evaluation.pq.summary()
            entry = {
                "heads": list(self.oracles[name]),
                **panoptic,
                "errors": evaluation.errors.breakdown(panoptic),
                "centers": self.centers[name],
            }
            entry["why_below_100"] = shortfall(
                entry,
                self.centers[name] if "center" in self.oracles[name] else {},
                self.crowd_segments,
            )
            out[name] = entry
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
