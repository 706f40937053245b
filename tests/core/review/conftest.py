"""The review tests' fixtures; the data they build and the helpers are in ``review_fixtures`` (a
module of its own name, as ``conftest`` is another module when the whole suite runs)."""

from tests.core.review.review_fixtures import dataset, scored  # noqa: F401 (fixtures for pytest)
