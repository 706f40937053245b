import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets.synthetic import make_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A tiny synthetic set (4 train + 3 val images of 97x161), made once per session."""
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_dataset(root, 4, 3, height=97, width=161, seed=3, workers=1)


def write_cityscapes(root, split="val"):
    img_dir = root / "leftImg8bit" / split / "aachen"
    gt_dir = root / "gtFine" / split / "aachen"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    raw = np.full((4, 6), 7, np.uint16)  # road (label 7 -> train 0)
    raw[0, :] = 0  # unlabeled -> void
    raw[1, 0:2] = 26000  # car instance k=0 -> train 13, instance 1
    raw[1, 2:4] = 26001  # car k=1 -> instance 2
    raw[2, 0:2] = 24  # person group (no instance) -> crowd, train 11
    raw[2, 4:6] = 1  # ego vehicle -> void
    raw[3, 0:3] = 24005  # a person instance
    cv2.imwrite(
        str(img_dir / "aachen_000000_000019_leftImg8bit.png"), np.zeros((4, 6, 3), np.uint8)
    )
    cv2.imwrite(str(gt_dir / "aachen_000000_000019_gtFine_instanceIds.png"), raw)
    return raw


@pytest.fixture
def cityscapes_root(tmp_path):
    """A one-image Cityscapes layout (see write_cityscapes)."""
    write_cityscapes(tmp_path)
    return tmp_path
