"""Annotation review, where predictions come from and how they are kept.

A *source* gives one image's :class:`~.scoring.Prediction` in the data set's category ids:

- :class:`ModelSource`: a model bundle, run once per image when the split is scored;
- :class:`PredictionFilesSource`: a COCO-panoptic prediction set (a JSON and its PNG folder, as
  ``pdl predict``, panopticapi or detectron2 write them; a segment's ``score`` is its confidence);
- :class:`CallableSource`: any function ``predict(image, image_id) -> Prediction`` (tests, the app).

Each has a ``key`` naming its scores in the store. What review needs later (the panoptic map, the
per-pixel class and confidence, the segments) is written once per image as a compressed ``.npz``
(:func:`save_prediction`), so no later decision, edit or page change runs the network again.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .errors import ReviewError
from .scoring import Prediction, category_mapping, prediction_from_model, prediction_from_panoptic

CONFIDENCE_LEVELS = 100  # confidences are kept to 0.01: plenty for ranking, and compresses well


# -- the per-image arrays ------------------------------------------------------------------------


def save_prediction(path: str | os.PathLike, pred: Prediction) -> None:
    """Write ``pred`` as a compressed ``.npz`` (atomically: a reader sees all of it or none)."""
    from ..safe_files import write_atomic

    arrays: dict[str, np.ndarray] = {}
    if pred.panoptic is not None:
        arrays["panoptic"] = np.asarray(pred.panoptic, np.int32)
        seg = pred.segments or {}
        keys = sorted(seg)
        arrays["segment_ids"] = np.array(keys, np.int64)
        arrays["segment_categories"] = np.array([seg[k] for k in keys], np.int64)
        if pred.scores:
            arrays["segment_scores"] = np.array(
                [pred.scores.get(k, np.nan) for k in keys], np.float64
            )
    if pred.semantic is not None:
        arrays["semantic"] = np.asarray(pred.semantic, np.int32)
    if pred.confidence is not None:
        conf = np.clip(np.asarray(pred.confidence, np.float32), 0, 1)
        arrays["confidence"] = np.round(conf * CONFIDENCE_LEVELS).astype(np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def load_prediction(path: str | os.PathLike) -> Prediction:
    """Read what :func:`save_prediction` wrote."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ReviewError(
            f"{path}: the stored prediction of this image is missing; score the split again "
            "(pdl review score)"
        ) from None
    except (OSError, ValueError) as err:
        raise ReviewError(
            f"{path}: the stored prediction is damaged ({err}); delete it and score the split "
            "again (pdl review score)"
        ) from None
    segments = scores = None
    if "segment_ids" in arrays:
        keys = arrays["segment_ids"].tolist()
        segments = dict(zip(keys, arrays["segment_categories"].tolist()))
        if "segment_scores" in arrays:
            scores = {
                k: float(v)
                for k, v in zip(keys, arrays["segment_scores"].tolist())
                if not np.isnan(v)
            }
    confidence = arrays.get("confidence")
    if confidence is not None:
        confidence = confidence.astype(np.float32) / CONFIDENCE_LEVELS
    return Prediction(
        semantic=arrays.get("semantic"),
        confidence=confidence,
        panoptic=arrays.get("panoptic"),
        segments=segments,
        scores=scores or None,
    )


def file_key(image_id: str) -> str:
    """A file name for an image id: the id itself when it is plain, else a digest."""
    text = str(image_id)
    plain = text.replace("-", "").replace("_", "").replace(".", "")
    if plain.isalnum() and text.isascii() and len(text) <= 80 and not text.startswith("."):
        return text
    return "id-" + hashlib.sha1(text.encode()).hexdigest()[:16]


# -- sources ------------------------------------------------------------------------------------


def model_source_key(bundle: str | os.PathLike) -> str:
    """Names a model's scores: its folder and the time its weights were written (a retrained bundle
    in the same folder is scored anew)."""
    path = Path(bundle).expanduser().resolve()
    weights = path / "model.weights.h5"
    stamp = int(weights.stat().st_mtime) if weights.is_file() else 0
    return f"{path}@{stamp}"


class CallableSource:
    """``predict(image, image_id) -> Prediction`` under the name ``key``."""

    kind = "callable"
    needs_image = True

    def __init__(self, key: str, predict: Callable, name: str | None = None):
        self.key, self.name, self.path = key, name or key, ""
        self._predict = predict

    def predict(self, image_id: str, image: np.ndarray | None) -> Prediction:
        return self._predict(image, image_id)


class ModelSource:
    """A model bundle. It is loaded on the first prediction (TensorFlow only then), and its classes
    are mapped onto the data set's by name (:func:`~.scoring.category_mapping`)."""

    kind = "model"
    needs_image = True

    def __init__(self, bundle: str | os.PathLike, categories: list[dict], **predictor_options):
        self.path = str(Path(bundle).expanduser().resolve())
        if not (Path(self.path) / "bundle.json").is_file():
            raise ReviewError(
                f"{self.path}: not a model bundle (no bundle.json); give a folder written by "
                "`pdl train` or `pdl import`"
            )
        self.key = model_source_key(self.path)
        self.name = Path(self.path).name
        self._categories = categories
        self._options = predictor_options
        self._predictor = None
        self._mapping = None

    def _load(self):
        from ..inference import Predictor

        self._predictor = Predictor(self.path, **self._options)
        spec = self._predictor.spec
        self._mapping = category_mapping(spec, self._categories)
        if (self._mapping < 0).all():
            raise ReviewError(
                f"the model's classes ({', '.join(spec.class_names)}) share none with this data "
                "set's categories; choose a model trained on these classes"
            )

    def predict(self, image_id: str, image: np.ndarray | None) -> Prediction:
        if self._predictor is None:
            self._load()
        out = self._predictor(image, return_raw=True)
        return prediction_from_model(out, self._predictor.spec, self._mapping)


class PredictionFilesSource:
    """A COCO-panoptic prediction set: ``json_path`` (its ``annotations`` by ``image_id``, each with
    ``file_name`` and ``segments_info``, optionally a ``score`` per segment) and the folder of its
    PNGs (default: the JSON's path without ``.json``)."""

    kind = "predictions"
    needs_image = False

    def __init__(self, json_path: str | os.PathLike, png_dir: str | os.PathLike | None = None):
        from ..datasets.json_file import load_json

        self.path = str(Path(json_path).expanduser().resolve())
        self.png_dir = Path(png_dir).expanduser() if png_dir else Path(self.path).with_suffix("")
        data = load_json(self.path, "prediction")
        anns = data.get("annotations")
        if not isinstance(anns, list):
            raise DatasetError(
                f"{self.path}: no 'annotations' list; a COCO-panoptic predictions file has one "
                "entry per image with 'image_id', 'file_name' and 'segments_info'"
            )
        self._by_image = {}
        for k, ann in enumerate(anns):
            if not isinstance(ann, dict) or not {"image_id", "file_name", "segments_info"} <= set(
                ann
            ):
                raise DatasetError(
                    f"{self.path}: annotation {k} needs 'image_id', 'file_name' and "
                    "'segments_info'; fix or regenerate the predictions file"
                )
            self._by_image[str(ann["image_id"])] = ann
        stamp = int(Path(self.path).stat().st_mtime)
        self.key = f"predictions:{self.path}@{stamp}"
        self.name = Path(self.path).stem

    def predict(self, image_id: str, image: np.ndarray | None) -> Prediction:
        from ..datasets.png_ids import read_segment_ids

        ann = self._by_image.get(str(image_id))
        if ann is None:
            raise DatasetError(
                f"{self.path}: no prediction for image id {image_id}; predict every image of the "
                "split, or review a split the predictions cover"
            )
        ids = read_segment_ids(self.png_dir / ann["file_name"]).astype(np.int64)
        return prediction_from_panoptic(ids, ann["segments_info"])
