"""`pdl review score|export`: the ranking JSON, the store the app uses, the export that
`pdl check-dataset` passes, and scoring as a background job with progress."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb
from panoptic_deeplab.review import ReviewStore
from tests.core.review.review_fixtures import CAR, PERSON, ROAD, image_a, pred_a, pred_b

KEYS = [
    "image_id",
    "file_name",
    "kind",
    "segment_id",
    "category_id",
    "model_category_id",
    "bbox",
    "score",
]


@pytest.fixture
def prediction_files(tmp_path):
    """``pred_a`` / ``pred_b`` written as a COCO-panoptic prediction set (as another tool would)."""
    folder = tmp_path / "preds"
    (folder / "panoptic").mkdir(parents=True)
    anns = []
    for image_id, pred in ((1, pred_a()), (2, pred_b())):
        name = f"{image_id}.png"
        cv2.imwrite(str(folder / "panoptic" / name), id_to_rgb(pred.panoptic)[..., ::-1])
        info = [{"id": k, "category_id": v, "score": 0.9} for k, v in pred.segments.items()]
        anns.append({"image_id": image_id, "file_name": name, "segments_info": info})
    (folder / "panoptic.json").write_text(json.dumps({"annotations": anns}))
    return folder / "panoptic.json"


def test_score_writes_the_ranking_into_the_apps_store(
    dataset, prediction_files, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PDL_APP_WORKDIR", str(tmp_path / "work"))
    out = tmp_path / "ranking.json"
    argv = ["review", "score", "--predictions", str(prediction_files), "--dataset", str(dataset)]
    assert main([*argv, "--split", "val", "--out", str(out)]) == 0
    ranking = json.loads(out.read_text())
    assert all(list(r) == KEYS for r in ranking)
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True)
    top = ranking[0]
    assert top == {
        "image_id": 1,  # as in the annotation file (an int there)
        "file_name": "a.png",
        "kind": "missing",
        "segment_id": None,
        "category_id": CAR,
        "model_category_id": CAR,
        "bbox": [2, 8, 5, 4],
        "score": 0.9,
    }
    gt = {(r["image_id"], r["segment_id"]): r for r in ranking if r["kind"] == "gt_segment"}
    assert set(gt) == {(1, 10), (1, 20), (1, 30), (2, 11), (2, 21)}
    assert gt[(1, 20)]["bbox"] == [2, 1, 5, 4] and gt[(1, 30)]["model_category_id"] == PERSON
    assert "2 images scored" in capsys.readouterr().out
    store = ReviewStore.open(dataset, "val")  # what the app opens: scored already
    progress = store.sources()[0]
    assert (progress.scored, progress.total, progress.state, progress.kind) == (
        2,
        2,
        "finished",
        "predictions",
    )
    assert store.prediction(progress.source, 1) is not None
    # Scoring again scores nothing new and writes the same ranking.
    assert main([*argv, "--split", "val", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == ranking
    assert "(0 now)" in capsys.readouterr().out


def test_export_from_the_command_line(dataset, prediction_files, tmp_path, capsys):
    store_dir = tmp_path / "store"
    argv = ["--dataset", str(dataset), "--split", "val", "--store", str(store_dir)]
    assert main(["review", "score", "--predictions", str(prediction_files), *argv]) == 0
    store = ReviewStore(dataset, "val", store_dir, reviewer="ann")
    source = store.sources()[0].source
    store.add_missed(1, 4, source=source)
    store.decide(1, 30, "relabel", ROAD)
    out = tmp_path / "exported"
    assert main(["review", "export", *argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 decisions and edits" in text and "1 segments added" in text
    assert main(["check-dataset", str(out), "--split", "val"]) == 0
    assert main(["check-dataset", str(out), "--split", "train"]) == 0
    assert main(["review", "export", *argv, "--out", str(out)]) == 2  # not over an export
    assert "not empty" in capsys.readouterr().err
    assert main(["review", "export", *argv, "--out", str(out), "--overwrite"]) == 0
    ids = cv2.imread(str(out / "annotations" / "panoptic_val" / "a.png"))[..., ::-1]
    from panoptic_deeplab.datasets.coco_panoptic import rgb_to_id

    expect = np.where(image_a()[0] == 30, 10, image_a()[0])
    new_id = store.ranked(source).query("kind == 'missing'").iloc[0].added_segment_id
    expect[8:12, 2:7] = new_id
    assert np.array_equal(rgb_to_id(ids), expect)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["review", "score", "--dataset", "D"], "needs --model BUNDLE or --predictions"),
        (["review", "export", "--dataset", "D"], "needs --out DIR"),
        (
            ["review", "export", "--dataset", "D", "--out", "O", "--model", "M"],
            "an option of 'pdl review score'",
        ),
    ],
)
def test_wrong_options_are_named(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_review_score_runs_as_a_job_with_progress(dataset, prediction_files, tmp_path, monkeypatch):
    from panoptic_deeplab.jobs import JobError, JobStore, review_score_command, validate_command

    monkeypatch.setenv("PDL_APP_WORKDIR", str(tmp_path / "work"))
    monkeypatch.chdir(dataset.parent)  # relative paths are made absolute: the job runs elsewhere
    argv = review_score_command(dataset.name, "val", predictions=prediction_files)
    assert argv[argv.index("--dataset") + 1] == str(dataset)
    assert argv[-2:] == ["--status", "status.json"]
    with pytest.raises(JobError, match="one of them"):
        review_score_command(dataset, "val")
    argv += ["--out", "ranking.json"]
    assert validate_command(argv) == argv
    jobs = JobStore(tmp_path / "work")
    job = jobs.submit(argv, name="review score")
    deadline = time.monotonic() + 120
    while jobs.refresh(job.id).is_active and time.monotonic() < deadline:
        time.sleep(0.2)
    job = jobs.refresh(job.id)
    assert job.state == "succeeded", jobs.read_log(job)
    progress = jobs.progress(job)
    assert (progress.step, progress.total_steps, progress.state) == (2, 2, "finished")
    from pathlib import Path

    assert json.loads((Path(job.workdir) / "ranking.json").read_text())[0]["kind"] == "missing"
    assert ReviewStore.open(dataset, "val").sources()[0].scored == 2


def test_an_interrupted_score_says_stopped_and_the_next_run_resumes(
    dataset, prediction_files, tmp_path, monkeypatch, capsys
):
    from panoptic_deeplab.review import PredictionFilesSource

    real = PredictionFilesSource.predict
    calls = []

    def stop_at_the_second(self, image_id, image):
        calls.append(image_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM from a job's Cancel (SystemExit)
        return real(self, image_id, image)

    status = tmp_path / "status.json"
    argv = ["review", "score", "--predictions", str(prediction_files), "--dataset", str(dataset)]
    argv += ["--store", str(tmp_path / "store"), "--status", str(status)]
    with monkeypatch.context() as patch:
        patch.setattr(PredictionFilesSource, "predict", stop_at_the_second)
        assert main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    saved = json.loads(status.read_text())
    assert (saved["state"], saved["step"], saved["total_steps"]) == ("stopped", 1, 2)
    store = ReviewStore(dataset, "val", tmp_path / "store")
    assert (store.sources()[0].state, store.sources()[0].scored) == ("stopped", 1)
    assert main(argv) == 0  # resumes: only the image not yet scored
    assert "scoring 1 of 2 images" in capsys.readouterr().out
    assert json.loads(status.read_text())["state"] == "finished"
    assert store.sources()[0].scored == 2


def test_a_damaged_store_is_named_and_kept_aside_with_repair(
    dataset, prediction_files, tmp_path, capsys
):
    """Issue 24: `pdl review` on a damaged review.sqlite names the file and --repair; with
    --repair the file is kept aside unchanged and the review starts empty."""
    store_dir = tmp_path / "store"
    argv = ["--dataset", str(dataset), "--split", "val", "--store", str(store_dir)]
    assert main(["review", "score", "--predictions", str(prediction_files), *argv]) == 0
    db = store_dir / "review.sqlite"
    with open(db, "r+b") as f:
        f.write(b"this is no SQLite header")
    damaged = db.read_bytes()
    capsys.readouterr()
    assert main(["review", "score", "--predictions", str(prediction_files), *argv]) != 0
    err = capsys.readouterr().err
    assert str(db) in err and "--repair" in err
    assert main(["review", "score", "--predictions", str(prediction_files), *argv, "--repair"]) == 0
    kept = list(store_dir.glob("review.sqlite.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert f"kept as {kept[0]}" in capsys.readouterr().err
    assert ReviewStore(dataset, "val", store_dir).sources()  # scored again into a fresh store
