"""The review export: a complete COCO-panoptic data set that passes the data-set checks and
panopticapi, the originals unchanged, the report of every decision and edit; and its faults:
killed (SIGKILL), two at once, a full disk, the umask, replacing an earlier export."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.review import (
    EXPORT_MARKER,
    ReviewError,
    ReviewStore,
    clean_leftover_exports,
    finished_exports,
    leftover_exports,
)
from panoptic_deeplab.safe_files import DiskFullError, LockedError
from tests.core.review.review_fixtures import CAR, PERSON, brush_free_stroke, fill_to_the_last_byte


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _review(store) -> None:
    store.decide(1, 20, "relabel", PERSON)
    store.comment(1, 20, "a pedestrian, not a car")
    store.add_missed(1, 4, source="m")
    store.paint(1, 30, brush_free_stroke(), "add", tool="brush")
    store.decide(2, 21, "reject")
    store.decide(2, 11, "accept")


def test_export_is_a_complete_valid_data_set_and_the_source_is_unchanged(scored, dataset, tmp_path):
    from panopticapi.evaluation import pq_compute

    before = _digest(dataset)
    _review(scored)
    out = tmp_path / "exports" / "fixed"
    result = scored.export(out)
    assert _digest(dataset) == before  # md5 of every original file
    assert (result.images_changed, result.segments_dropped, result.segments_relabelled) == (2, 1, 1)
    assert (result.segments_added, result.changes) == (1, 6)
    assert check_dataset(out, "val") == [] and check_dataset(out, "train") == []
    exported = _digest(out)
    for name, md5 in before.items():  # other splits and the images: copied unchanged
        if not name.startswith("annotations/panoptic_val"):
            assert exported[name] == md5, name
    assert EXPORT_MARKER in exported and finished_exports(out.parent) == [out]
    # panopticapi reads the export (the trusted reader of the format).
    res = pq_compute(
        str(dataset / "annotations" / "panoptic_val.json"),
        str(out / "annotations" / "panoptic_val.json"),
        str(dataset / "annotations" / "panoptic_val"),
        str(out / "annotations" / "panoptic_val"),
    )
    assert res["per_class"][CAR]["pq"] < 1.0


def test_the_report_lists_every_decision_and_edit(scored, tmp_path):
    _review(scored)
    scored.decide(2, 11, "ignore")
    scored.undo()  # undone: not in the report
    result = scored.export(tmp_path / "out")
    text = result.report_path.read_text()
    assert "None" not in text and "nan" not in text.lower()
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["action"] for r in rows] == [
        "relabel",
        "comment",
        "add_missed",
        "paint",
        "reject",
        "accept",
    ]
    for r in rows:
        assert r["reviewer"] == "ann" and r["time"][:4].isdigit() and "T" in r["time"]
        assert r["time"][-6] in "+-" and r["file_name"].endswith(".png")
    relabel, comment, added, paint = rows[:4]
    assert (relabel["category"], relabel["new_category"], relabel["segment_id"]) == (
        "car",
        "person",
        "20",
    )
    assert relabel["pixels_added"] == "" and relabel["taken_from"] == ""  # empty, not "None"
    assert comment["comment"] == "a pedestrian, not a car"
    assert added["pixels_added"] == "20" and added["taken_from"] == "10: 20"
    assert added["other_segment"] == "4" and added["new_segments"] == added["segment_id"]
    assert paint["pixels_added"] == "3" and paint["taken_from"] == "10: 3"
    data = json.loads(result.report_json.read_text())
    assert [d["action"] for d in data] == [r["action"] for r in rows]
    assert data[2]["taken_from"] == {"10": 20} and data[0]["pixels_added"] is None


def test_an_earlier_export_is_replaced_only_when_asked_and_only_its_own(scored, dataset, tmp_path):
    for bad in (dataset, dataset / "corrected", dataset.parent):
        with pytest.raises(ReviewError, match="outside the source"):
            scored.export(bad)
    other = tmp_path / "someone_elses"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ReviewError, match="not empty"):
        scored.export(other, overwrite=True)
    assert (other / "keep.txt").read_text() == "x"
    first = scored.export(tmp_path / "out")
    scored.decide(2, 21, "ignore")
    with pytest.raises(ReviewError, match="not empty"):
        scored.export(first.root)
    again = scored.export(first.root, overwrite=True)
    coco = json.loads((again.root / "annotations" / "panoptic_val.json").read_text())
    assert [s["id"] for s in coco["annotations"][1]["segments_info"]] == [11]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == [".out.lock"]


def test_exports_follow_the_umask(scored, tmp_path):
    old = os.umask(0o022)
    try:
        result = scored.export(tmp_path / "out")
    finally:
        os.umask(old)
    assert result.root.stat().st_mode & 0o777 == 0o755
    assert (result.root / "annotations").stat().st_mode & 0o777 == 0o755


_KILLED_EXPORT = textwrap.dedent(
    """
    import os, signal, sys
    from panoptic_deeplab.review import ReviewStore, export

    def die(*args, **kwargs):  # the report is written last: the data set is half done
        os.kill(os.getpid(), signal.SIGKILL)

    export.report_csv = die
    ReviewStore(sys.argv[1], "val", sys.argv[2]).export(sys.argv[3])
    """
)


def test_a_killed_export_is_never_offered_and_is_removed_by_the_next(scored, dataset, tmp_path):
    exports = tmp_path / "exports"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_EXPORT,
            str(dataset),
            str(scored.workdir),
            str(exports / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    left = [p for p in exports.iterdir() if p.name.startswith(".x.tmp-")]
    assert len(left) == 1 and (left[0] / "annotations" / "panoptic_train.json").is_file()
    assert finished_exports(exports) == [] and not (exports / "x").exists()
    result = scored.export(exports / "x")
    assert len(result.leftovers) == 1 and str(left[0]) in result.leftovers[0]
    assert "stopped while writing" in result.leftovers[0] and not left[0].exists()
    assert finished_exports(exports) == [exports / "x"]


def test_leftovers_of_the_first_export_version_are_named(tmp_path):
    old = tmp_path / ".fixed.k3j9x_2a"
    (old / "annotations").mkdir(parents=True)
    assert leftover_exports(tmp_path) == [old] and finished_exports(tmp_path) == []
    notes = clean_leftover_exports(tmp_path, say=lambda text: None)
    assert len(notes) == 1 and "incomplete review export" in notes[0] and old.exists()


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from panoptic_deeplab.safe_files import RunLock

    with RunLock(sys.argv[1], "the review export to x", name=".x.lock"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_two_exports_to_one_folder_the_second_is_refused(scored, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(exports)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            LockedError, match=rf"in use by the review export to x \(pid {holder.pid}"
        ):
            scored.export(exports / "x")
        assert not (exports / "x").exists()
    finally:
        holder.kill()
        holder.wait()
    assert scored.export(exports / "x").root == exports / "x"  # the holder is gone: it goes on


def test_a_full_disk_gives_one_message_and_leaves_no_temporary(
    scored, tmp_path, small_disk, fill_disk
):
    disk = small_disk("2m")
    fill_disk(disk)
    fill_to_the_last_byte(disk)
    with pytest.raises(DiskFullError, match="no space left on the device") as caught:
        scored.export(disk / "out")
    assert str(disk) in str(caught.value)
    assert not [p for p in disk.iterdir() if p.name.startswith(".out.tmp") or p.name == "out"]
    (disk / "filler").unlink()  # space again: the same export works
    assert scored.export(disk / "out").root == disk / "out"


def test_a_full_disk_while_replacing_an_export_keeps_the_earlier_one(
    scored, tmp_path, small_disk, fill_disk
):
    disk = small_disk("2m")
    first = scored.export(disk / "out")
    before = _digest(first.root)
    scored.decide(2, 21, "ignore")
    fill_disk(disk)
    fill_to_the_last_byte(disk)
    with pytest.raises(DiskFullError, match="Free some space") as caught:
        scored.export(disk / "out", overwrite=True)
    assert str(disk) in str(caught.value)
    assert _digest(disk / "out") == before  # the earlier export, complete and unchanged
    assert finished_exports(disk) == [disk / "out"]
    assert not [p for p in disk.iterdir() if ".tmp-" in p.name]


def test_decisions_on_a_full_disk_keep_what_was_saved(dataset, tmp_path, small_disk, fill_disk):
    disk = small_disk("2m")
    store = ReviewStore(dataset, "val", disk / "review", reviewer="ann")
    store.decide(1, 20, "accept")
    fill_disk(disk)
    fill_to_the_last_byte(disk)
    with pytest.raises(DiskFullError, match="review.sqlite"):
        for k in range(50):  # each comment adds a record; the disk is full within a few
            store.comment(1, 20, "x" * 20000 + str(k))
    assert store.decision(1, 20).action == "accept"
