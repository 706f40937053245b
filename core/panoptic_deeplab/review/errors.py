"""The errors of the annotation review (scoring, the store and the export raise them)."""

from __future__ import annotations

from ..errors import UserError


class ReviewError(UserError):
    """A review decision or export cannot be done as asked."""


class DecisionConflict(ReviewError):
    """A segment already carries another decision; ``existing`` is it."""

    def __init__(self, message: str, existing):
        super().__init__(message)
        self.existing = existing
