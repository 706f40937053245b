"""Reader for the Cityscapes layout:

    ROOT/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
    ROOT/gtFine/<split>/<city>/<name>_gtFine_instanceIds.png

``instanceIds`` values are ``labelId * 1000 + k`` for instances and plain ``labelId`` (< 1000)
elsewhere; a plain value of a class with instances is a group, i.e. crowd. Label ids map to the 19
train ids with cityscapesscripts' table; ``ignoreInEval`` labels become void (255); thing instances
are renumbered 1, 2, ... per class (Cityscapes' own ``k`` starts at 0, which would read as crowd).
Label divisor 1000.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError, ImageError
from .reader_base import Example, Reader, number_instances
from .specs import get_dataset_spec


def instance_ids_path(root: Path, split: str, image_path: Path) -> Path:
    name = image_path.name.replace("_leftImg8bit.png", "_gtFine_instanceIds.png")
    return Path(root) / "gtFine" / split / image_path.parent.name / name


def _label_to_train_id() -> np.ndarray:
    from cityscapesscripts.helpers.labels import labels

    table = np.full(256, 255, np.int64)
    for lab in labels:
        if 0 <= lab.id < 256 and not lab.ignoreInEval and 0 <= lab.trainId < 255:
            table[lab.id] = lab.trainId
    return table


class CityscapesReader(Reader):
    def __init__(self, root: str | Path, split: str):
        self.root = Path(root)
        self.split = split
        self.spec = get_dataset_spec("cityscapes")
        self._train_id = _label_to_train_id()
        images = sorted((self.root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        if not images:
            raise DatasetError(
                f"{self.root / 'leftImg8bit' / split}: no *_leftImg8bit.png images; "
                "check the split name and the layout leftImg8bit/<split>/<city>/"
            )
        self.examples = [
            Example(
                image_id=p.name[: -len("_leftImg8bit.png")],
                image_path=str(p),
                label_path=str(instance_ids_path(self.root, split, p)),
            )
            for p in images
        ]

    def load_panoptic(self, index: int) -> np.ndarray:
        path = self.examples[index].label_path
        if not Path(path).is_file():
            raise DatasetError(f"{path}: instanceIds PNG not found; restore it from gtFine")
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2:
            raise ImageError(
                f"{path}: not a single-channel instanceIds PNG; restore the original file"
            )
        values, inverse = np.unique(raw.astype(np.int64), return_inverse=True)
        label_ids = np.where(values >= 1000, values // 1000, values)
        train_ids = self._train_id[np.clip(label_ids, 0, 255)]
        spec = self.spec
        thing = np.array([spec.is_thing(t) for t in train_ids.tolist()], bool)
        crowd = values < 1000
        instance = number_instances(train_ids, thing, crowd)
        panoptic = np.where(
            train_ids == spec.ignore_label,
            spec.ignore_label * spec.label_divisor,
            train_ids * spec.label_divisor + instance,
        )
        return panoptic[inverse.reshape(raw.shape)].astype(np.int32)


def panoptic_json_path(root: str | Path, split: str) -> Path | None:
    """``gtFine/cityscapes_panoptic_<split>[_trainId].json`` made by ``csCreatePanopticImgs``."""
    for suffix in ("_trainId", ""):
        path = Path(root) / "gtFine" / f"cityscapes_panoptic_{split}{suffix}.json"
        if path.is_file():
            return path
    return None


def cityscapes_panoptic_spec(json_path: Path):
    """The 19-class spec with the category ids that JSON uses (label ids, or train ids for
    ``--use-train-id``); its own 'categories' table is not needed."""
    from dataclasses import replace

    base = get_dataset_spec("cityscapes")
    if Path(json_path).stem.endswith("_trainId"):
        return replace(base, category_ids=tuple(range(base.num_classes)))
    from cityscapesscripts.helpers.labels import trainId2label

    return replace(base, category_ids=tuple(trainId2label[t].id for t in range(base.num_classes)))


def cityscapes_panoptic_reader(root: str | Path, split: str, json_path: Path) -> Reader:
    """Reader for the COCO-panoptic JSON + PNGs that cityscapesscripts writes under ``gtFine/``.

    Its categories are label ids (or train ids for ``--use-train-id``); both map to the 19 train
    ids. Images are found from the image id (``<city>_<seq>_<frame>``) under ``leftImg8bit``.
    """
    from dataclasses import replace

    from .coco_panoptic import CocoPanopticReader

    reader = CocoPanopticReader(
        root, split, spec=cityscapes_panoptic_spec(json_path), json_path=json_path
    )
    image_root = Path(root) / "leftImg8bit" / split
    reader.examples = [
        replace(
            e,
            image_path=str(
                image_root / str(e.image_id).split("_")[0] / f"{e.image_id}_leftImg8bit.png"
            ),
        )
        for e in reader.examples
    ]
    return reader
