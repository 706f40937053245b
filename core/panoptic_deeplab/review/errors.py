"""The errors of the annotation review (scoring, the store and the export raise them)."""

from __future__ import annotations

from ..errors import UserError


class ReviewError(UserError):
    """A review decision, edit or export cannot be done as asked."""


class DecisionConflict(ReviewError):
    """A segment already carries another decision; ``existing`` is it (a ``Decision``)."""

    def __init__(self, message: str, existing):
        super().__init__(message)
        self.existing = existing


class StaleSegment(DecisionConflict):
    """Someone changed the segment since it was shown: ``changed_by`` at ``changed_at`` (ISO 8601),
    now at ``version``. Nothing was written; show the segment again and redo the change."""

    def __init__(
        self,
        message: str,
        existing,
        *,
        image_id: str,
        segment_id: int | None,
        changed_by: str,
        changed_at: str,
        version: int,
    ):
        super().__init__(message, existing)
        self.image_id = image_id
        self.segment_id = segment_id
        self.changed_by = changed_by
        self.changed_at = changed_at
        self.version = version
