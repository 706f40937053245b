"""Dataset specs: the class table (names, colours, things/stuff), label divisor and ignore label.

The panoptic label of a pixel is ``train_id * label_divisor + instance``; instance 0 of a thing
class means crowd. ``ignore_label`` marks void pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]  # RGB per train id
    thing_class_ids: tuple[int, ...]
    label_divisor: int
    ignore_label: int
    # Category id written to COCO-panoptic JSON per train id (identity unless a format says so).
    category_ids: tuple[int, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def stuff_class_ids(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.num_classes) if i not in self.thing_class_ids)

    def is_thing(self, train_id: int) -> bool:
        return train_id in self.thing_class_ids

    def category_id(self, train_id: int) -> int:
        return self.category_ids[train_id] if self.category_ids else train_id

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "colors": [list(c) for c in self.colors],
            "thing_class_ids": list(self.thing_class_ids),
            "label_divisor": self.label_divisor,
            "ignore_label": self.ignore_label,
            "category_ids": list(self.category_ids),
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSpec:
        return cls(
            name=data["name"],
            class_names=tuple(data["class_names"]),
            colors=tuple(tuple(c) for c in data["colors"]),
            thing_class_ids=tuple(data["thing_class_ids"]),
            label_divisor=int(data["label_divisor"]),
            ignore_label=int(data["ignore_label"]),
            category_ids=tuple(data.get("category_ids", ())),
        )


def _cityscapes() -> DatasetSpec:
    # The label table comes from cityscapesscripts (the maintained official package), not retyped.
    from cityscapesscripts.helpers.labels import labels

    train = sorted((lab for lab in labels if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId)
    return DatasetSpec(
        name="cityscapes",
        class_names=tuple(lab.name for lab in train),
        colors=tuple(tuple(lab.color) for lab in train),
        thing_class_ids=tuple(lab.trainId for lab in train if lab.hasInstances),
        label_divisor=1000,
        ignore_label=255,
    )


def _kitti_step() -> DatasetSpec:
    """KITTI-STEP as deeplab2 reads it (``data/dataset.py``): Cityscapes' 19 train ids, names and
    colours; only person (11) and car (13) have instances; label divisor 1000, ignore 255."""
    cityscapes = _cityscapes()
    return DatasetSpec(
        name="kitti_step",
        class_names=cityscapes.class_names,
        colors=cityscapes.colors,
        thing_class_ids=(11, 13),
        label_divisor=1000,
        ignore_label=255,
    )


# The synthetic street scenes use a subset of Cityscapes' classes, with their names and colours.
SYNTHETIC_CLASSES = (
    ("road", (128, 64, 128), False),
    ("sidewalk", (244, 35, 232), False),
    ("building", (70, 70, 70), False),
    ("vegetation", (107, 142, 35), False),
    ("sky", (70, 130, 180), False),
    ("person", (220, 20, 60), True),
    ("car", (0, 0, 142), True),
    ("bus", (0, 60, 100), True),
)


def _synthetic() -> DatasetSpec:
    return DatasetSpec(
        name="synthetic",
        class_names=tuple(c[0] for c in SYNTHETIC_CLASSES),
        colors=tuple(c[1] for c in SYNTHETIC_CLASSES),
        thing_class_ids=tuple(i for i, c in enumerate(SYNTHETIC_CLASSES) if c[2]),
        label_divisor=1000,
        ignore_label=255,
    )


def _coco() -> DatasetSpec:
    """As in deeplab2: 134 outputs, train id 0 is void (also the ignore label), things 1-80, stuff
    81-133 in the official table's order; label divisor 256."""
    from .coco_categories import COCO_STUFF, COCO_THINGS

    table = (0, "void", (0, 0, 0)), *COCO_THINGS, *COCO_STUFF
    return DatasetSpec(
        name="coco",
        class_names=tuple(name for _, name, _ in table),
        colors=tuple(color for _, _, color in table),
        thing_class_ids=tuple(range(1, 1 + len(COCO_THINGS))),
        label_divisor=256,
        ignore_label=0,
        category_ids=tuple(cid for cid, _, _ in table),
    )


def _mapillary_vistas() -> DatasetSpec:
    from ..errors import DatasetError

    raise DatasetError(
        "Mapillary Vistas' class table is the data set's own config_v2.0.json / config_v1.2.json: "
        "open the data set (pdl train --dataset ROOT reads it), or give the class count "
        "(pdl model-summary --num-classes N)"
    )


_BUILDERS = {
    "cityscapes": _cityscapes,
    "kitti_step": _kitti_step,
    "synthetic": _synthetic,
    "coco": _coco,
    "mapillary_vistas": _mapillary_vistas,
}


@cache
def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ValueError(
            f"unknown dataset '{name}'; known: {', '.join(sorted(_BUILDERS))}"
        ) from None
