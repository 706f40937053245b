"""AppTest suite for a damaged jobs.sqlite or review.sqlite (issue 24): the page names the file and
offers a button that runs the library's repair (what `pdl jobs --repair` runs); the damaged file is
kept aside byte for byte, the page says where and goes on with a fresh store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from panoptic_deeplab.jobs import JobStore
from panoptic_deeplab.review import ReviewStore, default_review_dir
from tests.app import apptest_utils as u
from tests.app.test_review_page import _make_data


def _damage(db: Path) -> str:
    """Overwrite the SQLite header (``file is not a database``); return the file's md5."""
    with open(db, "r+b") as f:
        f.write(b"this is no SQLite header")
    return hashlib.md5(db.read_bytes()).hexdigest()


def _texts(at: AppTest, kind: str) -> str:
    return " ".join(e.value for e in getattr(at, kind))


def _kept(db: Path) -> Path:
    kept = sorted(db.parent.glob(db.name + ".damaged-*"))
    assert len(kept) == 1, kept
    return kept[0]


def _repair(at: AppTest, db: Path, md5: str, button: str) -> Path:
    """The error names the file; the click keeps it aside (unchanged) and says where."""
    assert not at.exception, at.exception[0].stack_trace if at.exception else ""
    assert str(db) in _texts(at, "error") and "damaged" in _texts(at, "error")
    at.button(key=button).click().run()
    assert not at.exception, at.exception[0].stack_trace if at.exception else ""
    kept = _kept(db)
    assert hashlib.md5(kept.read_bytes()).hexdigest() == md5  # set aside, never changed
    assert f"kept as `{kept}`" in _texts(at, "success")
    assert not at.error, _texts(at, "error")
    return kept


@pytest.fixture
def work(monkeypatch, tmp_path) -> Path:
    u.set_app_env(monkeypatch, tmp_path, data=_make_data(tmp_path / "data", second_car="person"))
    return tmp_path / "work"


def test_train_page_repairs_a_damaged_job_store(work):
    md5 = _damage(JobStore(work).db_path)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/train.py").run()
    assert "Fine-tunes" not in [h.value for h in at.subheader]  # stopped at the error
    _repair(at, work / "jobs.sqlite", md5, "repair_jobs")
    assert "Fine-tunes" in [h.value for h in at.subheader]  # the page goes on
    assert JobStore(work).list() == []  # a fresh store, readable
    at.run()
    assert not at.success and not at.error  # the report is shown once, the page goes on
    assert "Fine-tunes" in [h.value for h in at.subheader]


def test_evaluate_page_repairs_a_damaged_job_store(work):
    md5 = _damage(JobStore(work).db_path)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.switch_page("pages/evaluate.py").run()
    _repair(at, work / "jobs.sqlite", md5, "repair_jobs")
    assert any("No evaluation yet" in i.value for i in at.info)  # the page goes on


def test_review_page_repairs_a_damaged_review_store(work, tmp_path):
    data = tmp_path / "data"
    db = ReviewStore(data, "val", default_review_dir(data, "val", work)).db_path
    md5 = _damage(db)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "tester"
    at.switch_page("pages/review.py").run()
    _repair(at, db, md5, "repair_review")
    assert f"review store `{db}`" in _texts(at, "caption")  # the review goes on
    assert ReviewStore(data, "val", db.parent).revision() >= 0


def test_review_page_repairs_a_damaged_job_store_and_works_on(work, tmp_path, monkeypatch):
    from panoptic_deeplab.app.components import model_io
    from tests.app.fakes import FakePredictor

    model_dir = tmp_path / "fake-model"  # with a model, the page lists its scoring jobs
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir, data=tmp_path / "data")
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    md5 = _damage(JobStore(work).db_path)
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT)
    at.session_state["review_reviewer"] = "tester"
    at.switch_page("pages/review.py").run()
    assert "review store" in _texts(at, "caption")  # the review itself works meanwhile
    _repair(at, work / "jobs.sqlite", md5, "repair_jobs")
    assert "score" in [b.key for b in at.button]  # scoring can start again
