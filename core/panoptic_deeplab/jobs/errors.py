"""The error of the jobs package: a job cannot be launched, found or changed as asked."""

from __future__ import annotations

from ..errors import UserError


class JobError(UserError):
    """A job cannot be launched, found or changed as asked."""
