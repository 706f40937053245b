"""Hand-made COCO-panoptic data sets and predictions for the review tests.

``dataset`` (12x16 images, category ids not contiguous on purpose):

    image 1 ("a"): road 10 everywhere, car 20 at rows 1-4 x cols 2-6 (20 px), person 30 at
                   rows 6-9 x cols 10-11 (8 px), one VOID pixel at (11, 15)
    image 2 ("b"): road 11, car 21 at rows 3-7 x cols 3-9 (35 px)

``predictions()`` (every pixel at confidence 0.9):

    image 1: road 1; car 2 = the GT car shifted one column right (rows 1-4, cols 3-7); person 3 at
             rows 6-9 x cols 10-12 (12 px); car 4 at rows 8-11 x cols 2-6, which nobody annotated
    image 2: road 4; the GT car seen as two cars: 5 (cols 3-5, 15 px) and 6 (cols 6-9, 20 px)
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb
from panoptic_deeplab.review import Prediction

ROAD, CAR, PERSON, SKY = 7, 26, 24, 11
CATEGORIES = [
    {"id": ROAD, "name": "road", "isthing": 0},
    {"id": SKY, "name": "sky", "isthing": 0},
    {"id": PERSON, "name": "person", "isthing": 1},
    {"id": CAR, "name": "car", "isthing": 1},
]
H, W = 12, 16


def image_a() -> tuple[np.ndarray, list[dict]]:
    ids = np.full((H, W), 10, np.int64)
    ids[1:5, 2:7] = 20
    ids[6:10, 10:12] = 30
    ids[11, 15] = 0
    return ids, [
        {"id": 10, "category_id": ROAD, "iscrowd": 0},
        {"id": 20, "category_id": CAR, "iscrowd": 0},
        {"id": 30, "category_id": PERSON, "iscrowd": 0},
    ]


def image_b() -> tuple[np.ndarray, list[dict]]:
    ids = np.full((H, W), 11, np.int64)
    ids[3:8, 3:10] = 21
    return ids, [
        {"id": 11, "category_id": ROAD, "iscrowd": 0},
        {"id": 21, "category_id": CAR, "iscrowd": 0},
    ]


def fill_area_bbox(ids: np.ndarray, segs: list[dict]) -> list[dict]:
    for s in segs:
        ys, xs = np.nonzero(ids == s["id"])
        s["area"] = int(len(ys))
        s["bbox"] = [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]
    return segs


def write_dataset(root: Path, images: dict[str, tuple[np.ndarray, list[dict]]]) -> Path:
    (root / "annotations" / "panoptic_val").mkdir(parents=True)
    (root / "val").mkdir()
    entries, annotations = [], []
    for k, (name, (ids, segs)) in enumerate(images.items()):
        h, w = ids.shape
        cv2.imwrite(
            str(root / "annotations" / "panoptic_val" / f"{name}.png"), id_to_rgb(ids)[..., ::-1]
        )
        picture = np.full((h, w, 3), 40 * (k + 1), np.uint8)
        picture[ids == 20] = (200, 30, 30)
        cv2.imwrite(str(root / "val" / f"{name}.png"), picture)
        entries.append({"id": k + 1, "file_name": f"{name}.png", "height": h, "width": w})
        annotations.append(
            {
                "image_id": k + 1,
                "file_name": f"{name}.png",
                "segments_info": fill_area_bbox(ids, [dict(s) for s in segs]),
            }
        )
    coco = {"images": entries, "annotations": annotations, "categories": CATEGORIES}
    (root / "annotations" / "panoptic_val.json").write_text(json.dumps(coco))
    # A second split the review does not touch: it must be carried over unchanged.
    (root / "annotations" / "panoptic_train.json").write_text(json.dumps(coco))
    (root / "annotations" / "panoptic_train").mkdir()
    for name in images:
        (root / "annotations" / "panoptic_train" / f"{name}.png").write_bytes(
            (root / "annotations" / "panoptic_val" / f"{name}.png").read_bytes()
        )
    (root / "train").mkdir()
    for name in images:
        (root / "train" / f"{name}.png").write_bytes((root / "val" / f"{name}.png").read_bytes())
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "src", {"a": image_a(), "b": image_b()})


def pred_a() -> Prediction:
    pan = np.ones((H, W), np.int64)
    pan[1:5, 3:8] = 2
    pan[6:10, 10:13] = 3
    pan[8:12, 2:7] = 4
    segments = {1: ROAD, 2: CAR, 3: PERSON, 4: CAR}
    sem = np.vectorize(segments.get)(pan)
    return Prediction(sem, np.full((H, W), 0.9), pan, segments)


def pred_b() -> Prediction:
    pan = np.full((H, W), 4, np.int64)
    pan[3:8, 3:6] = 5
    pan[3:8, 6:10] = 6
    segments = {4: ROAD, 5: CAR, 6: CAR}
    sem = np.vectorize(segments.get)(pan)
    return Prediction(sem, np.full((H, W), 0.9), pan, segments)


def predictions() -> dict[str, Prediction]:
    return {"1": pred_a(), "2": pred_b()}


@pytest.fixture
def scored(dataset, tmp_path):
    """A store of ``dataset`` scored with ``predictions()`` under the key "m"."""
    from panoptic_deeplab.review import ReviewStore

    store = ReviewStore(dataset, "val", tmp_path / "review", reviewer="ann")
    preds = predictions()
    store.score_images("m", lambda image, image_id: preds[str(image_id)])
    return store


def brush_free_stroke() -> np.ndarray:
    """Three road pixels just above the person of image 1 (row 5, cols 10-12)."""
    mask = np.zeros((H, W), bool)
    mask[5, 10:13] = True
    return mask


def fill_to_the_last_byte(folder: Path) -> None:
    """After ``fill_disk``: write what still fits, so not even a small file can grow."""
    import errno

    with open(folder / "filler", "ab", buffering=0) as f:
        for size in (4096, 512, 64, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    break
