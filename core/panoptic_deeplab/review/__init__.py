"""Annotation review: rank ground-truth segments (and objects nobody annotated) by how strongly a
model or a prediction set disagrees with them, fix them with decisions and edits (each one
undoable, recorded with its reviewer), and export a corrected COCO-panoptic data set with a report.

One module per job:
  scoring       a prediction against the labels of one image: the ranking items
  sources       where predictions come from (a model, prediction files) and their stored arrays
  dataset       the split under review (read only)
  store         :class:`ReviewStore`: decisions, changes, undo, the ranking, in SQLite; its
                edit tools (``tools``) and scoring (``scorer``) are mixins; ``records`` are what
                it hands out
  db            its schema and the migration from the first one
  edits, masks  what each edit does to the pixels; drawn shapes; pixel diffs
  smart_region  a region from a click or a box (GrabCut)
  ranking       the ranking table; report: the change report; export: the corrected data set
  errors        :class:`ReviewError`, :class:`DecisionConflict`, :class:`StaleSegment`

docs/review.md describes the whole; the names below are re-exported.
"""

from __future__ import annotations

from .errors import DecisionConflict, ReviewError, StaleSegment
from .export import (
    EXPORT_MARKER,
    ExportResult,
    clean_leftover_exports,
    export_corrected,
    finished_exports,
    leftover_exports,
)
from .masks import bbox_of, brush_mask, line_sides, polygon_mask
from .records import (
    Decision,
    EditResult,
    ImageState,
    ScoringProgress,
    Segment,
    UndoResult,
    default_reviewer,
)
from .scoring import (
    GT_SEGMENT,
    MISSING,
    Prediction,
    ReviewItem,
    SegmentScore,
    category_mapping,
    category_mapping_inverse,
    prediction_from_model,
    prediction_from_panoptic,
    score_image,
    score_segments,
)
from .sources import (
    CallableSource,
    ModelSource,
    PredictionFilesSource,
    model_source_key,
)
from .store import ACTIONS, EDIT_KINDS, ReviewStore, default_review_dir

__all__ = [
    "ACTIONS",
    "EDIT_KINDS",
    "EXPORT_MARKER",
    "GT_SEGMENT",
    "MISSING",
    "CallableSource",
    "Decision",
    "DecisionConflict",
    "EditResult",
    "ExportResult",
    "ImageState",
    "ModelSource",
    "Prediction",
    "PredictionFilesSource",
    "ReviewError",
    "ReviewItem",
    "ReviewStore",
    "ScoringProgress",
    "Segment",
    "SegmentScore",
    "StaleSegment",
    "UndoResult",
    "bbox_of",
    "brush_mask",
    "category_mapping",
    "category_mapping_inverse",
    "clean_leftover_exports",
    "default_review_dir",
    "default_reviewer",
    "export_corrected",
    "finished_exports",
    "leftover_exports",
    "line_sides",
    "model_source_key",
    "polygon_mask",
    "prediction_from_model",
    "prediction_from_panoptic",
    "score_image",
    "score_segments",
]
