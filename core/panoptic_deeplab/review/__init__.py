"""Annotation review: rank ground-truth segments the model confidently disagrees with, record a
reviewer's decision on each, and export a corrected COCO-panoptic data set.

One module per job:
  scoring   the model's disagreement with each GT segment (:func:`score_segments`), class mappings
  store     :class:`ReviewStore`: the data set, scores and decisions (with undo) in SQLite
  export    the corrected data set and the review report (:meth:`ReviewStore.export`)
  errors    :class:`ReviewError`, :class:`DecisionConflict`

The names below are re-exported, so ``from panoptic_deeplab.review import ReviewStore`` works.
"""

from __future__ import annotations

from .errors import DecisionConflict, ReviewError
from .export import EXPORT_MARKER, ExportResult, export_corrected
from .scoring import (
    Prediction,
    SegmentScore,
    category_mapping,
    category_mapping_inverse,
    prediction_from_model,
    score_segments,
)
from .store import ACTIONS, Decision, ReviewStore, default_review_dir

__all__ = [
    "ACTIONS",
    "EXPORT_MARKER",
    "Decision",
    "DecisionConflict",
    "ExportResult",
    "Prediction",
    "ReviewError",
    "ReviewStore",
    "SegmentScore",
    "category_mapping",
    "category_mapping_inverse",
    "default_review_dir",
    "export_corrected",
    "prediction_from_model",
    "score_segments",
]
