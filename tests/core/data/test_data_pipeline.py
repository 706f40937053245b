"""The tf.data pipeline: shapes, labels stay aligned with images through augmentation, eval
padding, determinism for a seed."""

import json

import cv2
import numpy as np
import pytest

from panoptic_deeplab.config import Config
from panoptic_deeplab.data.augment import scale_values
from panoptic_deeplab.data.pipeline import make_dataset
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb
from panoptic_deeplab.datasets.readers import open_dataset

H, W = 65, 97
CATEGORIES = [
    {"id": 0, "name": "road", "isthing": 0},
    {"id": 1, "name": "car", "isthing": 1},
    {"id": 2, "name": "person", "isthing": 1},
]


def colour(panoptic):
    """The image colour the fixture paints for each panoptic value (divisor 1000)."""
    sem, inst = panoptic // 1000, panoptic % 1000
    return np.stack([40 + sem * 60, 30 + inst * 45, np.full_like(sem, 100)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Three images of blocks: road and car/person instances; the image colour encodes the label."""
    root = tmp_path_factory.mktemp("blocks")
    (root / "annotations" / "panoptic_train").mkdir(parents=True)
    (root / "train").mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for k in range(3):
        ids = np.ones((H, W), np.int64)  # segment 1 = road
        segments = [{"id": 1, "category_id": 0, "iscrowd": 0}]
        for n in range(4):
            y, x = rng.integers(0, H - 20), rng.integers(0, W - 24)
            ids[y : y + 20, x : x + 24] = n + 2
            segments.append({"id": n + 2, "category_id": 1 + n % 2, "iscrowd": 0})
        present = set(np.unique(ids).tolist())
        segments = [
            dict(s, area=int((ids == s["id"]).sum())) for s in segments if s["id"] in present
        ]
        cv2.imwrite(
            str(root / "annotations" / "panoptic_train" / f"{k}.png"), id_to_rgb(ids)[..., ::-1]
        )
        images.append({"id": k, "file_name": f"{k}.png", "height": H, "width": W})
        annotations.append({"image_id": k, "file_name": f"{k}.png", "segments_info": segments})
    (root / "annotations" / "panoptic_train.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES})
    )
    reader = open_dataset(root, "train")
    for k in range(3):  # paint each image from its own decoded label
        cv2.imwrite(
            str(root / "train" / f"{k}.png"),
            colour(reader.load_panoptic(k)).astype(np.uint8)[..., ::-1],
        )
    return root


def config(crop=(49, 65), **dataset):
    cfg = Config()
    cfg.dataset.crop_size = crop
    for key, value in dataset.items():
        setattr(cfg.dataset, key, value)
    return cfg


def test_scale_values():
    assert len(scale_values(0.5, 2.0, 0.1)) == 16
    assert len(scale_values(0.5, 1.5, 0.1)) == 11
    np.testing.assert_allclose(scale_values(0.5, 2.0, 0.25), [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])


def test_training_shapes_and_types(root):
    ds = make_dataset(root, "train", config(), training=True, batch_size=2, seed=0)
    features, targets = next(iter(ds))
    assert features["image"].shape == (2, 49, 65, 3) and features["image"].dtype.name == "float32"
    assert targets["offsets"].shape == (2, 49, 65, 2)
    for key in (
        "semantic",
        "center_heatmap",
        "semantic_weights",
        "center_weights",
        "offset_weights",
        "panoptic",
    ):
        assert targets[key].shape == (2, 49, 65), key
    assert targets["panoptic"].dtype.name == "int32"


def test_augmentation_keeps_labels_aligned(root):
    ds = make_dataset(root, "train", config(), training=True, batch_size=3, seed=7)
    checked = padded = 0
    for features, targets in ds.take(6):
        image, label = features["image"].numpy(), targets["panoptic"].numpy()
        for b in range(image.shape[0]):
            lab = label[b]
            # Pixels whose 3x3 neighbourhood has one label: bilinear gives exactly the block colour.
            same = np.ones_like(lab, bool)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    same &= np.roll(np.roll(lab, dy, 0), dx, 1) == lab
            same[[0, -1], :] = same[:, [0, -1]] = False
            real = same & (lab != 255000)
            np.testing.assert_allclose(image[b][real], colour(lab[real]), atol=0.51)
            pad = lab == 255000
            np.testing.assert_array_equal(image[b][pad], 127.5)
            checked += real.sum()
            padded += pad.sum()
        np.testing.assert_array_equal(targets["semantic"].numpy(), label // 1000)
    assert checked > 1000 and padded > 0  # scales down to 0.5 force padding


def test_deterministic_for_a_seed(root):
    def first(seed):
        ds = make_dataset(root, "train", config(), training=True, batch_size=2, seed=seed)
        return [(f["image"].numpy(), t["panoptic"].numpy()) for f, t in ds.take(3)]

    a, b, c = first(3), first(3), first(4)
    for (ia, la), (ib, lb) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(la, lb)
    assert any(not np.array_equal(ia, ic) for (ia, _), (ic, _) in zip(a, c))


def test_eval_pads_bottom_right(root):
    reader = open_dataset(root, "train")
    ds = make_dataset(reader, "train", config(crop=(73, 105)), training=False, batch_size=2)
    batches = list(ds)
    assert [b[0]["image"].shape[0] for b in batches] == [
        2,
        1,
    ]  # eval keeps the remainder, no repeat
    image, label = batches[0][0]["image"].numpy()[0], batches[0][1]["panoptic"].numpy()[0]
    np.testing.assert_array_equal(label[:H, :W], reader.load_panoptic(0))
    np.testing.assert_array_equal(image[:H, :W], reader.load_image(0).astype(np.float32))
    assert np.all(image[H:] == 127.5) and np.all(image[:, W:] == 127.5)
    assert np.all(label[H:] == 255000) and np.all(label[:, W:] == 255000)


def test_eval_resize_to_range(root):
    cfg = config(crop=(41, 41), min_resize_value=41, max_resize_value=41)
    features, targets = next(iter(make_dataset(root, "train", cfg, training=False, batch_size=1)))
    label = targets["panoptic"].numpy()[0]
    # 65x97 -> long side 41: 27x41, then padded to 41x41.
    assert np.all(label[28:] == 255000) and np.any(label[:27] != 255000)
