"""The results of an evaluation as typed values, and their JSON (``pdl evaluate --out``).

:class:`EvaluationResult` is what :func:`~.evaluate_split.evaluate_split` returns and what the
report, the app and periodic evaluation read; ``to_json`` / ``from_json`` give and read the plain
JSON of ``pdl evaluate --out``, which carries ``schema_version``. Files written before the version
existed (version 0) load too: their only difference is the per-class COCO AP, a bare number there.
Fractions are 0..1 except the error breakdown, whose points are 0..100 (docs/error-analysis.md).
No TensorFlow, no pandas here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

SCHEMA_VERSION = 1
GROUPS = ("All", "Things", "Stuff")


class ResultsFileError(UserError):
    """A results file that cannot be read back (not JSON, not a result, or from a newer pdl)."""


def plain(value):
    """Plain JSON values: numpy -> lists/numbers, NaN and infinities -> null, keys -> strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value) -> float | None:
    """A float, or None for a missing or NaN one."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _by_id(table: dict | None, make) -> dict:
    """``{int id: make(entry)}`` from a JSON object keyed by id strings (or an in-memory dict)."""
    return {int(k): make(int(k), v) for k, v in (table or {}).items()}


# -- panoptic quality ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """PQ / SQ / RQ averaged over ``n`` classes (All, Things or Stuff); None when ``n`` is 0."""

    pq: float | None
    sq: float | None
    rq: float | None
    n: int

    @classmethod
    def from_json(cls, data: dict) -> Scores:
        return cls(_number(data["pq"]), _number(data["sq"]), _number(data["rq"]), int(data["n"]))

    def to_json(self) -> dict:
        return {"pq": self.pq, "sq": self.sq, "rq": self.rq, "n": self.n}


@dataclass(frozen=True)
class ClassScores:
    """One category's sums over the data set; scores None when it is not ``evaluated``
    (TP + FP + FN = 0)."""

    id: int
    name: str
    isthing: bool
    evaluated: bool
    pq: float | None
    sq: float | None
    rq: float | None
    tp: int
    fp: int
    fn: int
    iou_sum: float

    @classmethod
    def from_json(cls, cid: int, data: dict) -> ClassScores:
        return cls(
            id=cid,
            name=str(data.get("name", cid)),
            isthing=bool(data.get("isthing", False)),
            evaluated=bool(data["evaluated"]),
            pq=_number(data["pq"]),
            sq=_number(data["sq"]),
            rq=_number(data["rq"]),
            tp=int(data["tp"]),
            fp=int(data["fp"]),
            fn=int(data["fn"]),
            iou_sum=float(data["iou_sum"]),
        )

    def to_json(self) -> dict:
        keys = ("pq", "sq", "rq", "tp", "fp", "fn", "iou_sum", "evaluated", "isthing", "name")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class PanopticScores:
    """PQ / SQ / RQ for All, Things and Stuff, and per category (panopticapi semantics)."""

    all: Scores
    things: Scores
    stuff: Scores
    per_class: dict[int, ClassScores]

    def group(self, name: str) -> Scores:
        """``"All"``, ``"Things"`` or ``"Stuff"``."""
        return {"All": self.all, "Things": self.things, "Stuff": self.stuff}[name]

    @classmethod
    def from_json(cls, data: dict) -> PanopticScores:
        """From the JSON or from ``PQStat.summary()`` (the same shape)."""
        return cls(
            *(Scores.from_json(data[g]) for g in GROUPS),
            per_class=_by_id(data["per_class"], ClassScores.from_json),
        )

    def to_json(self) -> dict:
        out = {g: self.group(g).to_json() for g in GROUPS}
        out["per_class"] = {str(k): v.to_json() for k, v in self.per_class.items()}
        return out


# -- error breakdown -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRow:
    """Where the PQ of a class (``name``, ``isthing``) or of a group (``n`` classes averaged) goes:
    PQ and the points lost per error type (with PQ they add up to 100), the PQ with one type fixed,
    and the count of each type."""

    pq: float
    points: dict[str, float]
    pq_if_fixed: dict[str, float]
    counts: dict[str, int]
    name: str | None = None
    isthing: bool | None = None
    n: int | None = None

    @classmethod
    def from_json(cls, data: dict) -> ErrorRow:
        return cls(
            pq=float(data["pq"]),
            points={k: float(v) for k, v in data["points"].items()},
            pq_if_fixed={k: float(v) for k, v in data["pq_if_fixed"].items()},
            counts={k: int(v) for k, v in data["counts"].items()},
            name=data.get("name"),
            isthing=data.get("isthing"),
            n=data.get("n"),
        )

    def to_json(self) -> dict:
        out = {"name": self.name, "isthing": self.isthing, "n": self.n}
        out = {k: v for k, v in out.items() if v is not None}
        return {
            **out,
            "pq": self.pq,
            "points": dict(self.points),
            "pq_if_fixed": dict(self.pq_if_fixed),
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class ErrorBreakdown:
    """The PQ points lost per error type, per evaluated class and for All / Things / Stuff (None
    for a group without evaluated classes)."""

    per_class: dict[int, ErrorRow] = field(default_factory=dict)
    all: ErrorRow | None = None
    things: ErrorRow | None = None
    stuff: ErrorRow | None = None

    def group(self, name: str) -> ErrorRow | None:
        return {"All": self.all, "Things": self.things, "Stuff": self.stuff}[name]

    @classmethod
    def from_json(cls, data: dict | None) -> ErrorBreakdown:
        """From the JSON or ``ErrorStat.breakdown()``; empty when absent (very old result files)."""
        data = data or {}
        groups = [ErrorRow.from_json(data[g]) if data.get(g) else None for g in GROUPS]
        return cls(_by_id(data.get("per_class"), lambda _, v: ErrorRow.from_json(v)), *groups)

    def to_json(self) -> dict:
        out = {"per_class": {str(k): v.to_json() for k, v in self.per_class.items()}}
        for g in GROUPS:
            row = self.group(g)
            out[g] = row.to_json() if row else None
        return out


# -- mIoU and AP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SemanticScores:
    """mIoU with the confusion matrix (rows GT, columns prediction; ``pred_void``: GT pixels
    predicted as void, per GT class). ``per_class_iou`` is indexed by train id."""

    miou: float | None
    per_class_iou: list[float | None]
    pixel_accuracy: float | None
    n: int
    confusion: list[list[int]]
    pred_void: list[int]

    @classmethod
    def from_json(cls, data: dict) -> SemanticScores:
        return cls(
            miou=_number(data["miou"]),
            per_class_iou=[_number(v) for v in data["per_class_iou"]],
            pixel_accuracy=_number(data.get("pixel_accuracy")),
            n=int(data.get("n", 0)),
            confusion=[[int(x) for x in row] for row in data["confusion"]],
            pred_void=[int(x) for x in data.get("pred_void", [])],
        )

    def to_json(self) -> dict:
        return {
            "miou": self.miou,
            "per_class_iou": list(self.per_class_iou),
            "pixel_accuracy": self.pixel_accuracy,
            "n": self.n,
            "confusion": self.confusion,
            "pred_void": self.pred_void,
        }


@dataclass(frozen=True)
class ClassAP:
    ap: float | None
    ap50: float | None = None


@dataclass(frozen=True)
class InstanceAP:
    """Instance AP of one style (``coco`` or ``cityscapes``): AP, AP50 and per thing class (train
    id); ``stats``: COCOeval's 12 numbers (COCO style); ``ap_table``: AP per class and IoU
    threshold (Cityscapes style)."""

    ap: float | None
    ap50: float | None
    per_class: dict[int, ClassAP]
    stats: list[float] = field(default_factory=list)
    ap_table: list[list[float | None]] | None = None

    @classmethod
    def from_library(cls, data: dict) -> InstanceAP:
        """From ``coco_instance_ap`` / ``cityscapes_instance_ap`` (or a version-0 file), whose
        per-class entries are a bare AP (COCO) or ``{"ap", "ap50"}`` (Cityscapes)."""

        def one(_, value):
            if isinstance(value, dict):
                return ClassAP(_number(value.get("ap")), _number(value.get("ap50")))
            return ClassAP(_number(value))

        table = data.get("ap_table")
        return cls(
            ap=_number(data.get("ap")),
            ap50=_number(data.get("ap50")),
            per_class=_by_id(data.get("per_class"), one),
            stats=[float(x) for x in data.get("stats", [])],
            ap_table=None if table is None else plain(table),
        )

    from_json = from_library  # the JSON's per-class entries are {"ap", "ap50"}, read the same way

    def to_json(self) -> dict:
        out = {
            "ap": self.ap,
            "ap50": self.ap50,
            "per_class": {str(k): {"ap": v.ap, "ap50": v.ap50} for k, v in self.per_class.items()},
        }
        if self.stats:
            out["stats"] = list(self.stats)
        if self.ap_table is not None:
            out["ap_table"] = self.ap_table
        return out


# -- per image -------------------------------------------------------------------------------------


@dataclass
class GTSegment:
    """A ground-truth segment of one image (``id``: its panoptic value) and what became of it:
    ``status`` matched | missed | crowd; a miss has a ``reason`` (segment_details) and an ``error``
    type (error_breakdown)."""

    id: int
    category_id: int
    iscrowd: bool
    area: int
    status: str
    reason: str | None = None
    error: str | None = None
    matched_pred: int | None = None
    iou: float = 0.0
    best_pred: int | None = None
    best_pred_category: int | None = None
    best_pred_iou: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> GTSegment:
        return cls(**{k: data.get(k) for k in _GT_KEYS if k in data})

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in _GT_KEYS}


@dataclass
class PredSegment:
    """A predicted segment of one image and what became of it: ``status`` matched |
    false_positive | ignored (on void or crowd); a false positive has a ``reason`` and an
    ``error`` type."""

    id: int
    category_id: int
    area: int
    status: str
    reason: str | None = None
    error: str | None = None
    matched_gt: int | None = None
    iou: float = 0.0
    best_gt: int | None = None

    @classmethod
    def from_json(cls, data: dict) -> PredSegment:
        return cls(**{k: data.get(k) for k in _PRED_KEYS if k in data})

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in _PRED_KEYS}


_GT_KEYS = tuple(GTSegment.__dataclass_fields__)
_PRED_KEYS = tuple(PredSegment.__dataclass_fields__)


@dataclass
class ImageResult:
    """One image: its own PQ (its classes averaged), TP / FP / FN and every segment's fate;
    ``scores``: the AP score of each predicted thing segment; ``oracle_pq``: its PQ per oracle."""

    image_id: int | str
    file_name: str
    pq: float | None
    sq: float | None
    rq: float | None
    n: int
    tp: int
    fp: int
    fn: int
    gt_segments: list[GTSegment]
    pred_segments: list[PredSegment]
    scores: dict[int, float] = field(default_factory=dict)
    oracle_pq: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> ImageResult:
        return cls(
            image_id=data["image_id"],
            file_name=data["file_name"],
            pq=_number(data.get("pq")),
            sq=_number(data.get("sq")),
            rq=_number(data.get("rq")),
            n=int(data.get("n", 0)),
            tp=int(data.get("tp", 0)),
            fp=int(data.get("fp", 0)),
            fn=int(data.get("fn", 0)),
            gt_segments=[GTSegment.from_json(s) for s in data["gt_segments"]],
            pred_segments=[PredSegment.from_json(s) for s in data["pred_segments"]],
            scores={int(k): float(v) for k, v in (data.get("scores") or {}).items()},
            oracle_pq={k: _number(v) for k, v in (data.get("oracle_pq") or {}).items()},
        )

    def to_json(self) -> dict:
        out = {
            "image_id": self.image_id,
            "file_name": self.file_name,
            "pq": self.pq,
            "sq": self.sq,
            "rq": self.rq,
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "gt_segments": [s.to_json() for s in self.gt_segments],
            "pred_segments": [s.to_json() for s in self.pred_segments],
            "scores": {str(k): v for k, v in self.scores.items()},
        }
        if self.oracle_pq:
            out["oracle_pq"] = dict(self.oracle_pq)
        return out


# -- oracles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleResult:
    """PQ with ground truth in place of ``heads`` (evaluation/oracles.py), its error breakdown,
    how the GT centers fared, and why it is below 100 (sentences)."""

    heads: tuple[str, ...]
    panoptic: PanopticScores
    errors: ErrorBreakdown
    centers: dict[str, int]
    why_below_100: list[str]

    @classmethod
    def from_json(cls, data: dict) -> OracleResult:
        return cls(
            heads=tuple(data.get("heads", ())),
            panoptic=PanopticScores.from_json(data),
            errors=ErrorBreakdown.from_json(data.get("errors")),
            centers={k: int(v) for k, v in (data.get("centers") or {}).items()},
            why_below_100=list(data.get("why_below_100") or []),
        )

    def to_json(self) -> dict:
        return {
            "heads": list(self.heads),
            **self.panoptic.to_json(),
            "errors": self.errors.to_json(),
            "centers": dict(self.centers),
            "why_below_100": list(self.why_below_100),
        }


# -- the whole result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedImage:
    image_id: int | str
    path: str
    reason: str


@dataclass(frozen=True)
class PredictionSource:
    """Where a prediction set came from (``pdl evaluate --predictions``): its ``name`` (editable,
    shown wherever results are listed), its format, its JSON (COCO panoptic) and PNG folder, and
    the class table of raw PNGs."""

    name: str
    format: str
    folder: str
    json: str | None = None
    class_table: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> PredictionSource:
        return cls(**{k: data.get(k) for k in ("name", "format", "folder", "json", "class_table")})

    def to_json(self) -> dict:
        return vars(self).copy()


@dataclass
class EvaluationResult:
    """Every metric of a model or a prediction set on a data set split.

    What was evaluated: ``model`` (a bundle path) or ``predictions`` (a prediction set); where:
    ``dataset`` and ``split``; how: ``settings`` (the run's options, free-form). Both kinds have
    the same metrics; a prediction set has no oracles, and AP only when its segments carry scores.
    """

    num_images: int
    panoptic: PanopticScores
    errors: ErrorBreakdown
    semantic: SemanticScores
    instance: dict[str, InstanceAP] = field(default_factory=dict)
    per_image: list[ImageResult] = field(default_factory=list)
    skipped: list[SkippedImage] = field(default_factory=list)
    oracles: dict[str, OracleResult] = field(default_factory=dict)
    model: str | None = None
    predictions: PredictionSource | None = None
    dataset: str | None = None
    split: str | None = None
    settings: dict = field(default_factory=dict)
    seconds: float | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def kind(self) -> str:
        """``"predictions"`` for a prediction set, else ``"model"``."""
        return "predictions" if self.predictions is not None else "model"

    @property
    def source(self) -> str:
        """The model path or the prediction set's folder ("" when unknown)."""
        if self.predictions is not None:
            return self.predictions.folder
        return self.model or ""

    def summary(self) -> dict:
        """The headline numbers (fractions; periodic evaluation's scalars):
        ``{pq, sq, rq, miou, pq_things, pq_stuff, images}``."""
        pq = self.panoptic
        return {
            "pq": pq.all.pq,
            "sq": pq.all.sq,
            "rq": pq.all.rq,
            "miou": self.semantic.miou,
            "pq_things": pq.things.pq,
            "pq_stuff": pq.stuff.pq,
            "images": self.num_images,
        }

    # -- JSON --------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Plain JSON (what ``pdl evaluate --out`` writes)."""
        out = {"schema_version": SCHEMA_VERSION}
        if self.model is not None:
            out["model"] = self.model
        if self.predictions is not None:
            out["predictions"] = self.predictions.to_json()
        for key in ("dataset", "split"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["num_images"] = self.num_images
        out["skipped"] = [vars(s).copy() for s in self.skipped]
        if self.settings:
            out["settings"] = self.settings
        if self.seconds is not None:
            out["seconds"] = self.seconds
        out["panoptic"] = self.panoptic.to_json()
        out["errors"] = self.errors.to_json()
        out["semantic"] = self.semantic.to_json()
        out["instance"] = {k: v.to_json() for k, v in self.instance.items()}
        out["per_image"] = [r.to_json() for r in self.per_image]
        if self.oracles:
            out["oracles"] = {k: v.to_json() for k, v in self.oracles.items()}
        return plain(out)

    @classmethod
    def from_json(cls, data, where: str = "the results") -> EvaluationResult:
        """Read :meth:`to_json`'s output back, or a file written before ``schema_version`` existed.
        A newer version, or something that is no result, raises :class:`ResultsFileError`."""
        if not isinstance(data, dict):
            raise ResultsFileError(f"{where}: not an evaluation result (a JSON object is expected)")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ResultsFileError(
                f"{where}: results schema version {version!r} is newer than this pdl reads "
                f"({SCHEMA_VERSION}); update panoptic-deeplab, or evaluate again with this one"
            )
        missing = [k for k in ("panoptic", "semantic") if k not in data]
        if missing:
            raise ResultsFileError(
                f"{where}: not an evaluation result of `pdl evaluate` (no {missing[0]!r}); "
                "evaluate again to make one"
            )
        try:
            predictions = data.get("predictions")
            return cls(
                num_images=int(data.get("num_images", len(data.get("per_image", [])))),
                panoptic=PanopticScores.from_json(data["panoptic"]),
                errors=ErrorBreakdown.from_json(data.get("errors")),
                semantic=SemanticScores.from_json(data["semantic"]),
                instance={
                    k: InstanceAP.from_json(v) for k, v in (data.get("instance") or {}).items()
                },
                per_image=[ImageResult.from_json(r) for r in data.get("per_image", [])],
                skipped=[SkippedImage(**s) for s in data.get("skipped", [])],
                oracles={
                    k: OracleResult.from_json(v) for k, v in (data.get("oracles") or {}).items()
                },
                model=data.get("model"),
                predictions=PredictionSource.from_json(predictions) if predictions else None,
                dataset=data.get("dataset"),
                split=data.get("split"),
                settings=dict(data.get("settings") or {}),
                seconds=data.get("seconds"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ResultsFileError(
                f"{where}: a malformed evaluation result ({type(err).__name__}: {err}); "
                "evaluate again to replace it"
            ) from None

    def save(self, path: str | Path) -> Path:
        """Write the JSON through a temporary file (a reader never sees half of it)."""
        from ..safe_files import write_atomic

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(self.to_json()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        """Read a results file; a file that is unreadable, not JSON or not a result raises
        :class:`ResultsFileError` naming it and the fix."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ResultsFileError(
                f"{path}: cannot read these results ({err}); delete the file and evaluate again"
            ) from None
        return cls.from_json(data, where=str(path))
