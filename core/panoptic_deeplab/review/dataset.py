"""Annotation review, the data set under review: one split of a COCO-panoptic data set, only ever
read. Layout: ``ROOT/annotations/panoptic_<split>.json``, its PNGs in
``ROOT/annotations/panoptic_<split>/`` and the images in ``ROOT/<split>/``.

The parsed annotation file is shared by every store of the process (see :mod:`.cache`) and read
again only when the file changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets.coco_panoptic import check_file_name, find_image
from ..datasets.json_file import load_json
from ..errors import DatasetError
from .cache import ANNOTATIONS
from .errors import ReviewError


@dataclass(frozen=True)
class SplitIndex:
    """A parsed annotation file with the look-ups review needs."""

    coco: dict
    images: dict  # image id (str) -> images entry
    annotations: dict  # image id (str) -> annotations entry
    order: dict  # image id (str) -> position in the annotations list
    categories: dict  # category id -> category entry


def _index(json_path: Path) -> SplitIndex:
    stat = json_path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    hit = ANNOTATIONS.get(str(json_path), stamp)
    if hit is not None:
        return hit
    coco = load_json(json_path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{json_path}: missing the '{key}' list of a COCO-panoptic file")
    images = {str(im["id"]): im for im in coco["images"]}
    annotations = {str(a["image_id"]): a for a in coco["annotations"]}
    for image_id, ann in annotations.items():  # the export writes files under these names
        check_file_name(ann["file_name"], json_path, f"image id {image_id}")
        check_file_name(
            images.get(image_id, {}).get("file_name") or "", json_path, f"image id {image_id}"
        )
    index = SplitIndex(
        coco=coco,
        images=images,
        annotations=annotations,
        order={image_id: k for k, image_id in enumerate(annotations)},
        categories={int(c["id"]): c for c in coco["categories"]},
    )
    ANNOTATIONS.put(str(json_path), index, stamp, nbytes=stat.st_size * 8)
    return index


class ReviewDataset:
    """One split of a COCO-panoptic data set (read only)."""

    def __init__(self, dataset_root: str | os.PathLike, split: str):
        self.root = Path(dataset_root).expanduser().resolve()
        self.split = split
        self.json_path = self.root / "annotations" / f"panoptic_{split}.json"
        if not self.json_path.is_file():
            raise DatasetError(
                f"{self.json_path}: annotation file not found. Expected a COCO-panoptic data set "
                f"with annotations/panoptic_{split}.json (give the data set's root folder and a "
                "split it has)."
            )
        self._index = _index(self.json_path)

    @property
    def coco(self) -> dict:
        return self._index.coco

    @property
    def categories(self) -> dict[int, dict]:
        return self._index.categories

    def image_ids(self) -> list[str]:
        return list(self._index.annotations)

    def image_index(self, image_id) -> int:
        return self._index.order[str(image_id)]

    def annotation(self, image_id) -> dict:
        try:
            return self._index.annotations[str(image_id)]
        except KeyError:
            raise ReviewError(f"image {image_id} has no annotation in {self.json_path}") from None

    def original_segments(self, image_id) -> list[dict]:
        """The image's ``segments_info`` as in the annotation file."""
        return self.annotation(image_id)["segments_info"]

    def file_name(self, image_id) -> str:
        """The image's file name (from the images table, else the annotation's)."""
        image_id = str(image_id)
        return (
            self._index.images.get(image_id, {}).get("file_name")
            or self.annotation(image_id)["file_name"]
        )

    def png_path(self, image_id) -> Path:
        return self.json_path.with_suffix("") / self.annotation(image_id)["file_name"]

    def image_path(self, image_id) -> Path:
        info = self._index.images.get(str(image_id), {})
        return find_image(
            self.root / self.split, info.get("file_name"), self.annotation(image_id)["file_name"]
        )

    def original_ids(self, image_id) -> np.ndarray:
        """The annotation PNG as an HxW int32 segment-id map (as on disk, never edited)."""
        from ..datasets.png_ids import read_segment_ids

        return read_segment_ids(self.png_path(image_id)).astype(np.int32)

    def image(self, image_id) -> np.ndarray:
        """The image as HxWx3 uint8 RGB."""
        from ..datasets.reader_base import read_rgb

        return read_rgb(self.image_path(image_id))

    @property
    def spec(self):
        """The data set's class table (names, colours, things) from its categories."""
        from ..datasets.coco_panoptic import dataset_spec_from_categories

        return dataset_spec_from_categories(self.coco["categories"], name=self.root.name)

    def category_name(self, category_id) -> str:
        if category_id is None or (isinstance(category_id, float) and np.isnan(category_id)):
            return ""
        cat = self.categories.get(int(category_id))
        return cat["name"] if cat else f"#{category_id}"

    def is_thing(self, category_id) -> bool:
        return bool(self.categories.get(int(category_id), {}).get("isthing", 0))

    def check_category(self, category_id, what: str = "category") -> int:
        if category_id is None or int(category_id) not in self.categories:
            known = ", ".join(f"{k} {v['name']}" for k, v in self.categories.items())
            raise ReviewError(
                f"{what} needs a category of this data set; got {category_id!r} (known: {known})"
            )
        return int(category_id)
