"""Open a data set folder with the reader of its layout (COCO panoptic, Cityscapes, Mapillary
Vistas). The readers share the abstraction of :mod:`.reader_base`."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .reader_base import Reader
from .specs import DatasetSpec


def open_dataset(root: str | Path, split: str, spec: DatasetSpec | None = None) -> Reader:
    """Open ``root`` as a COCO-panoptic or Cityscapes data set, detected from its layout.

    COCO panoptic: ``root/annotations/panoptic_<split>.json``. Cityscapes: ``root/leftImg8bit`` and
    ``root/gtFine`` with ``*_instanceIds.png``, or with the panoptic JSON of
    ``csCreatePanopticImgs``. Mapillary Vistas v1.2 / v2.0 as downloaded (:mod:`.mapillary`).
    ``spec`` overrides the class table (COCO and Vistas layouts).
    """
    root = Path(root)
    if (root / "annotations" / f"panoptic_{split}.json").is_file():
        from .coco_panoptic import CocoPanopticReader

        return CocoPanopticReader(root, split, spec=spec)
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        from .cityscapes import CityscapesReader, cityscapes_panoptic_reader, panoptic_json_path

        # The instanceIds PNGs are the source; the panoptic JSON is used when they are absent.
        json_path = panoptic_json_path(root, split)
        if json_path is not None and not any((root / "gtFine" / split).glob("*/*_instanceIds.png")):
            return cityscapes_panoptic_reader(root, split, json_path)
        return CityscapesReader(root, split)
    from .mapillary import find_layout, vistas_reader

    layout = find_layout(root, split)
    if layout is not None:
        return vistas_reader(root, split, layout, spec=spec)
    from .checks import missing_layout_problem

    problem = missing_layout_problem(
        root, split
    )  # the check's words: folder missing, or which splits exist
    raise DatasetError(f"{problem.file}: {problem.message}; {problem.fix}")
