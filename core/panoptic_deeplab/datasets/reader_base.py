"""The reader abstraction shared by the COCO-panoptic, Cityscapes and Mapillary Vistas readers
(``readers.open_dataset`` picks one from a folder's layout).

A reader is a sequence of :class:`Example` entries (cheap: paths and ids, no pixels) plus
``load_panoptic(i)`` which decodes the label of entry ``i`` to the library's panoptic format:
an int32 ``[H, W]`` array ``train_id * label_divisor + instance`` where thing instances are
numbered 1, 2, ... per class, instance 0 of a thing class is crowd, stuff uses instance 0 and void
pixels are ``ignore_label * label_divisor``. ``read(i)`` returns everything at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageError
from .specs import DatasetSpec


@dataclass(frozen=True)
class Example:
    image_id: int | str
    image_path: str
    label_path: str
    # COCO-panoptic segments_info of the file (id, category_id, iscrowd, area, bbox); empty for
    # layouts without one (Cityscapes), where ``read`` derives them from the label.
    segments_info: tuple = field(default=(), compare=False)


@dataclass
class Record:
    """One fully loaded example: ``segments`` describe the panoptic label's values."""

    image_id: int | str
    image_path: str
    panoptic: np.ndarray  # int32 [H, W]
    segments: list[dict]  # {"id": panoptic value, "train_id", "category_id", "iscrowd", "area"}


class Reader:
    """Base class: subclasses fill ``spec``, ``split``, ``examples`` and ``load_panoptic``."""

    spec: DatasetSpec
    split: str
    examples: list[Example]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def __iter__(self):
        return iter(self.examples)

    def load_panoptic(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def load_image(self, index: int) -> np.ndarray:
        """RGB uint8 ``[H, W, 3]``."""
        return read_rgb(self.examples[index].image_path)

    def read(self, index: int) -> Record:
        example = self.examples[index]
        panoptic = self.load_panoptic(index)
        return Record(
            example.image_id, example.image_path, panoptic, segments_of(panoptic, self.spec)
        )


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; a clear error if it is missing or unreadable."""
    if not Path(path).is_file():
        raise DatasetError(
            f"{path}: file not found; restore it or remove the entry from the annotations"
        )
    import cv2  # lazily: modules that only decode label PNGs (`pdl pq`) start faster without it

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot decode the image; replace it with a valid PNG or JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def segments_of(panoptic: np.ndarray, spec: DatasetSpec) -> list[dict]:
    """Describe each distinct non-void value of a panoptic label."""
    values, areas = np.unique(panoptic, return_counts=True)
    segments = []
    for value, area in zip(values.tolist(), areas.tolist()):
        train_id, instance = divmod(value, spec.label_divisor)
        if train_id == spec.ignore_label:
            continue
        segments.append(
            {
                "id": value,
                "train_id": train_id,
                "category_id": spec.category_id(train_id),
                "iscrowd": int(spec.is_thing(train_id) and instance == 0),
                "area": area,
            }
        )
    return segments


def number_instances(
    train_ids: np.ndarray, is_thing_segment: np.ndarray, is_crowd: np.ndarray
) -> np.ndarray:
    """Instance number per segment: 1, 2, ... within each thing class, 0 for stuff and crowd."""
    instance = np.zeros(len(train_ids), np.int64)
    counters: dict[int, int] = {}
    for k, (train_id, thing, crowd) in enumerate(
        zip(train_ids.tolist(), is_thing_segment, is_crowd)
    ):
        if thing and not crowd:
            counters[train_id] = counters.get(train_id, 0) + 1
            instance[k] = counters[train_id]
    return instance
