"""The review store: decisions that persist and undo, reviewers and ISO times, two reviewers on one
database (a change on a segment changed since it was shown is refused; nothing is lost), the
ranking table and its cursor, and the migration of a first-schema review.sqlite."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import datetime

import numpy as np
import pytest

from panoptic_deeplab.errors import UserError
from panoptic_deeplab.review import (
    DecisionConflict,
    ReviewError,
    ReviewStore,
    StaleSegment,
    brush_mask,
)
from tests.core.review.review_fixtures import CAR, PERSON, ROAD, H, W, image_a, predictions

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_decisions_persist_across_reopen_and_undo_in_order(dataset, tmp_path):
    store = ReviewStore(dataset, "val", tmp_path / "review", reviewer="ann")
    store.decide(1, 20, "accept")
    store.decide(1, 20, "relabel", PERSON)
    store.comment(1, 20, "looks like a pedestrian")
    store.decide(2, 21, "crowd")
    with pytest.raises(ReviewError, match="stuff class"):
        store.decide(1, 10, "crowd")
    with pytest.raises(ReviewError, match="relabel needs a category"):
        store.decide(1, 10, "relabel", 999)
    with pytest.raises(ReviewError, match="no segment 99"):
        store.decide(1, 99, "accept")
    with pytest.raises(ReviewError, match="unknown action"):
        store.decide(1, 20, "approve")

    reopened = ReviewStore(dataset, "val", tmp_path / "review", reviewer="ann")  # a restart
    d = reopened.decision(1, 20)
    assert (d.action, d.category_id, d.comment, d.reviewer) == (
        "relabel",
        PERSON,
        "looks like a pedestrian",
        "ann",
    )
    assert ISO.match(d.updated_at) and datetime.fromisoformat(d.updated_at)
    assert reopened.history_size() == 4 and reopened.history_size("bob") == 0

    undone = reopened.undo()  # the crowd mark goes; the page moves back to that segment
    assert (undone.kind, undone.image_id, undone.segment_id) == ("crowd", "2", 21)
    assert reopened.decision(2, 21) is None
    reopened.undo()  # the comment goes, the relabel stays
    d = reopened.decision(1, 20)
    assert (d.action, d.comment) == ("relabel", "")
    assert reopened.undo().kind == "relabel" and reopened.decision(1, 20).action == "accept"
    assert reopened.undo().kind == "accept" and reopened.decision(1, 20) is None
    assert reopened.undo() is None


def test_a_decision_is_not_replaced_without_asking(dataset, tmp_path):
    first = ReviewStore(dataset, "val", tmp_path / "review", reviewer="ann")
    second = ReviewStore(dataset, "val", tmp_path / "review", reviewer="bob")
    first.decide(1, 20, "reject")
    with pytest.raises(DecisionConflict, match="already decided: 'reject'.*by ann") as caught:
        second.decide(1, 20, "accept", replace=False)
    assert caught.value.existing.action == "reject" and first.decision(1, 20).action == "reject"
    second.decide(1, 20, "reject", replace=False)  # the same decision again: nothing to ask
    second.decide(1, 20, "accept", replace=True)  # asked and confirmed
    assert first.decision(1, 20).action == "accept" and first.decision(1, 20).reviewer == "bob"


def test_two_reviewers_a_stale_change_is_refused_naming_who_and_nothing_is_lost(scored, dataset):
    ann = scored  # reviewer "ann"
    bob = ReviewStore(dataset, "val", ann.workdir, reviewer="bob")
    shown_to_ann = ann.segment(1, 20).version
    shown_to_bob = bob.segment(1, 20).version
    assert shown_to_ann == shown_to_bob == 0

    bob.decide(1, 20, "relabel", PERSON, version=shown_to_bob)
    stroke = brush_mask((H, W), [[0, 0]], radius=1)
    for attempt in (
        lambda: ann.decide(1, 20, "accept", version=shown_to_ann),
        lambda: ann.paint(1, 20, stroke, version=shown_to_ann),
        lambda: ann.take_model(1, 20, source="m", version=shown_to_ann),
        lambda: ann.merge(1, 20, 30, versions={20: shown_to_ann, 30: 0}),
    ):
        with pytest.raises(StaleSegment, match=r"changed by bob at .* \(relabel\)") as caught:
            attempt()
        assert caught.value.changed_by == "bob" and caught.value.version == 1
    # Nothing of ann's was written and bob's decision stands.
    assert ann.decision(1, 20).action == "relabel" and ann.history_size() == 0
    assert np.array_equal(ann.gt_ids(1), image_a()[0])
    # Shown again, ann's change goes through.
    ann.decide(1, 20, "accept", version=ann.segment(1, 20).version)
    assert [c["reviewer"] for c in ann.changes()] == ["bob", "ann"]
    # Bob cannot undo his relabel now: ann changed the segment after it.
    with pytest.raises(StaleSegment, match="changed by ann"):
        bob.undo()


def test_two_reviewers_editing_at_once_lose_nothing(scored, dataset):
    """Two sessions (threads, as the app's sessions are) paint 12 strokes each on one image, each
    on its own segment with the version it saw: every stroke is recorded and in the labels."""
    bob = ReviewStore(dataset, "val", scored.workdir, reviewer="bob")
    errors = []

    def work(store, segment_id, row):
        try:
            for col in range(12):
                version = store.segment(1, segment_id).version
                mask = np.zeros((H, W), bool)
                mask[row, col] = True
                store.paint(1, segment_id, mask, version=version)
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [
        threading.Thread(target=work, args=(scored, 20, 0)),
        threading.Thread(target=work, args=(bob, 30, 11)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = scored.gt_ids(1)
    assert (ids[0, :12] == 20).all() and (ids[11, :12] == 30).all()
    assert len(scored.changes()) == 24
    assert scored.segment(1, 20).area == 32 and scored.segment(1, 30).area == 20


def test_undo_is_per_reviewer(scored, dataset):
    bob = ReviewStore(dataset, "val", scored.workdir, reviewer="bob")
    scored.decide(1, 20, "accept")
    bob.decide(2, 21, "reject")
    assert scored.undo().image_id == "1"  # ann's own, not bob's later one
    assert bob.decision(2, 21).action == "reject"


def test_ranking_table_has_no_none_and_a_cursor(scored):
    df = scored.ranked("m")
    assert list(df["kind"].unique()) == ["gt_segment", "missing"] or set(df["kind"]) == {
        "gt_segment",
        "missing",
    }
    assert not (df.astype(str) == "None").any().any()
    assert df["status"].eq("").all() and df["decided_at"].eq("").all()
    first = scored.next_item("m")
    assert (first["image_id"], first["kind"]) == (df.iloc[0]["image_id"], df.iloc[0]["kind"])
    key = (first["image_id"], first["kind"], first["ref_id"])
    if first["kind"] == "gt_segment":
        scored.decide(first["image_id"], first["segment_id"], "accept")
    else:
        scored.dismiss_missing(first["image_id"], first["ref_id"], source="m")
    second = scored.next_item("m", after=key)
    assert (second["image_id"], second["kind"], second["ref_id"]) != key
    assert scored.next_item("m")["rank"] == second["rank"]  # the first still open
    decided = scored.ranked("m").iloc[0]
    assert decided["status"] in ("accepted", "dismissed") and ISO.match(decided["decided_at"])
    assert decided["reviewer"] == "ann"


def test_a_decision_updates_the_ranking_without_rebuilding_its_items(scored, monkeypatch):
    from panoptic_deeplab.review import cache, ranking

    scored.ranked("m")  # the items part is built once, then kept
    scored.decide(1, 20, "relabel", PERSON)
    scored.dismiss_missing(1, 4, source="m")
    scored.comment(2, 21, "two cars?")

    def rebuilt(*args):
        raise AssertionError("the items part was rebuilt for a decision")

    with monkeypatch.context() as patch:
        patch.setattr(ranking, "_items_table", rebuilt)
        updated = scored.ranked("m")
    cache.RANKINGS.clear()
    fresh = scored.ranked("m")  # built from scratch
    assert updated.equals(fresh)
    rows = updated.set_index(["image_id", "kind", "ref_id"])
    car = rows.loc[("1", "gt_segment", 20)]
    assert (car.status, car.new_category, car.version) == ("fixed", "person", 1)
    assert rows.loc[("1", "missing", 4)].status == "dismissed"
    assert rows.loc[("2", "gt_segment", 21)].comment == "two cars?"


def test_unscored_images_are_listed_in_file_order(dataset, tmp_path):
    store = ReviewStore(dataset, "val", tmp_path / "review")
    df = store.ranked()
    assert list(zip(df.image_id, df.segment_id)) == [
        ("1", 10),
        ("1", 20),
        ("1", 30),
        ("2", 11),
        ("2", 21),
    ]
    assert df["score"].isna().all() and (df["kind"] == "gt_segment").all()
    store.score_images("m", lambda image, image_id: predictions()[str(image_id)], image_ids=["2"])
    partial = store.ranked("m")
    assert set(partial[partial.score.notna()].image_id) == {"2"}
    assert list(partial[partial.score.isna()].segment_id) == [10, 20, 30]
    progress = store.scoring_progress("m")
    assert (progress.scored, progress.total, progress.state) == (1, 2, "finished")


def test_the_reviewer_defaults_to_the_environment(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("PDL_REVIEWER", "carla")
    store = ReviewStore(dataset, "val", tmp_path / "review")
    store.decide(1, 20, "accept")
    assert store.changes()[0]["reviewer"] == "carla"


def _v1_store(path, rows):
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE decisions (
            image_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
            action TEXT, category_id INTEGER, comment TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL, PRIMARY KEY (image_id, segment_id));
        CREATE TABLE history (seq INTEGER PRIMARY KEY AUTOINCREMENT, image_id TEXT NOT NULL,
            segment_id INTEGER NOT NULL, before TEXT, after TEXT, at REAL NOT NULL);
        CREATE TABLE scores (model_key TEXT NOT NULL, image_id TEXT NOT NULL,
            segment_id INTEGER NOT NULL, category_id INTEGER NOT NULL, iscrowd INTEGER NOT NULL,
            area INTEGER NOT NULL, disagreement REAL NOT NULL, suggested_category_id INTEGER,
            best_iou REAL, PRIMARY KEY (model_key, image_id, segment_id));
        """
    )
    db.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def test_a_first_schema_store_is_backed_up_then_migrated(dataset, tmp_path):
    folder = tmp_path / "review"
    folder.mkdir()
    rows = [
        ("1", 20, "relabel", PERSON, "a pedestrian", 1_780_000_000.0),
        ("1", 30, None, None, "check later", 1_780_000_100.0),
        ("2", 21, "reject", None, "", 1_780_000_200.0),
    ]
    _v1_store(folder / "review.sqlite", rows)
    notes = []
    store = ReviewStore(dataset, "val", folder, say=notes.append)
    backups = list(folder.glob("review.sqlite.v1-backup-*"))
    assert len(backups) == 1 and str(backups[0]) in notes[0]
    kept = sqlite3.connect(backups[0]).execute(
        "SELECT * FROM decisions ORDER BY image_id, segment_id"
    )
    assert [tuple(r) for r in kept] == rows  # the old decisions, untouched, in the backup

    d = store.decision(1, 20)
    assert (d.action, d.category_id, d.comment) == ("relabel", PERSON, "a pedestrian")
    assert d.updated_at == datetime.fromtimestamp(1_780_000_000).astimezone().isoformat()
    assert store.decision(1, 30).comment == "check later" and store.decision(1, 30).action is None
    assert store.decision(2, 21).action == "reject"
    assert [(c["image_id"], c["segment_id"], c["action"]) for c in store.changes()] == [
        ("1", 20, "relabel"),
        ("1", 30, "comment"),
        ("2", 21, "reject"),
    ]
    again = ReviewStore(dataset, "val", folder)  # opened again: no second backup or import
    assert len(list(folder.glob("review.sqlite.v1-backup-*"))) == 1 and len(again.changes()) == 3
    assert again.undo(reviewer="*") is not None  # migrated decisions (no reviewer) are undoable
    assert again.decision(2, 21) is None


def test_a_store_from_a_newer_version_is_refused(dataset, tmp_path):
    folder = tmp_path / "review"
    folder.mkdir()
    db = sqlite3.connect(folder / "review.sqlite")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(ReviewError, match="newer version"):
        ReviewStore(dataset, "val", folder)


@pytest.mark.parametrize("damage", ["random header", "cut in half"])
def test_a_damaged_review_database_gets_a_clear_message(dataset, tmp_path, damage):
    folder = tmp_path / "review"
    store = ReviewStore(dataset, "val", folder)
    store.decide(1, 20, "accept")
    path = store.db_path
    data = path.read_bytes()
    if damage == "random header":
        path.write_bytes(np.random.default_rng(0).bytes(100) + data[100:])
    else:
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=str(path)):
        ReviewStore(dataset, "val", folder).decisions()


def test_the_store_for_a_data_set_is_the_apps(dataset, tmp_path, monkeypatch):
    from panoptic_deeplab.review import default_review_dir

    monkeypatch.setenv("PDL_APP_WORKDIR", str(tmp_path / "work"))
    store = ReviewStore.open(dataset, "val")
    assert store.workdir == default_review_dir(dataset, "val", tmp_path / "work")
    assert store.workdir.is_relative_to(tmp_path / "work" / "review")


def test_car_and_road_names(scored):
    assert scored.category_name(CAR) == "car" and scored.category_name(None) == ""
    assert scored.is_thing(CAR) and not scored.is_thing(ROAD)
