"""Reader for the COCO-panoptic layout, with any split name:

    ROOT/annotations/panoptic_<split>.json        images, annotations (segments_info), categories
    ROOT/annotations/panoptic_<split>/<name>.png  RGB-encoded segment ids, id = R + 256 G + 256^2 B
    ROOT/<split>/<name>.jpg|png                   the images

Category ids map to contiguous train ids through the data set's spec: COCO's own 133 categories
use the ``coco`` spec (void = 0), the synthetic set its spec, any other set a spec built from the
JSON's ``categories`` (:func:`dataset_spec_from_coco_json`).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DatasetError
from .json_file import load_json
from .png_ids import read_segment_ids, read_segment_runs  # noqa: F401 - their home for callers
from .reader_base import Example, Reader, number_instances
from .specs import DatasetSpec, get_dataset_spec

# A colour per class for user data sets whose categories carry none (deterministic).
_PALETTE_SEED = 1234


def _category_key(categories) -> list[tuple[int, str, int]]:
    return sorted(
        (int(c["id"]), str(c["name"]), int(bool(c.get("isthing", 0)))) for c in categories
    )


def _spec_key(spec: DatasetSpec) -> list[tuple[int, str, int]]:
    return sorted(
        (spec.category_id(t), spec.class_names[t], int(spec.is_thing(t)))
        for t in range(spec.num_classes)
        if not (spec.name == "coco" and t == spec.ignore_label)
    )


def dataset_spec_from_categories(categories: list[dict], name: str = "custom") -> DatasetSpec:
    """A spec for the given COCO categories: a registered spec when they match one exactly
    (``coco``, ``synthetic``), else train ids in category-id order, divisor 1000, ignore 255."""
    try:
        key = _category_key(categories)
    except (KeyError, TypeError, ValueError):
        raise DatasetError(
            "'categories' entries need integer 'id', 'name' and 'isthing' fields"
        ) from None
    if not key:
        raise DatasetError("the annotation file lists no categories; add its 'categories' table")
    for known in ("synthetic", "coco"):
        spec = get_dataset_spec(known)
        if _spec_key(spec) == key:
            return spec
    by_id = {int(c["id"]): c for c in categories}
    ordered = [by_id[k[0]] for k in key]
    rng = np.random.default_rng(_PALETTE_SEED)
    colors = []
    for c in ordered:
        color = c.get("color")
        if not (isinstance(color, (list, tuple)) and len(color) == 3):
            color = rng.integers(0, 256, 3).tolist()
        colors.append(tuple(int(v) for v in color))
    return DatasetSpec(
        name=name,
        class_names=tuple(str(c["name"]) for c in ordered),
        colors=tuple(colors),
        thing_class_ids=tuple(i for i, c in enumerate(ordered) if c.get("isthing", 0)),
        label_divisor=1000,
        ignore_label=255 if len(ordered) < 255 else len(ordered),
        category_ids=tuple(int(c["id"]) for c in ordered),
    )


def dataset_spec_from_coco_json(path: str | Path) -> DatasetSpec:
    """The class table of a COCO-panoptic annotation file (see
    :func:`dataset_spec_from_categories`)."""
    return dataset_spec_from_categories(load_json(path).get("categories", []), name=Path(path).stem)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """Segment ids (int32, < 2**24) of an RGB-encoded panoptic PNG."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def leaves_folder(name) -> bool:
    """True for a file name from an annotation file that is absolute or climbs out of its folder
    with ``..`` (``../../x.png``, ``/tmp/x.png``, ``a\\..\\..\\x.png``)."""
    path = PurePosixPath(str(name).replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts


def check_file_name(name, json_path, where: str) -> None:
    """Raise a DatasetError when ``name`` (a ``file_name`` of ``json_path``) leaves its folder."""
    if leaves_folder(name):
        raise DatasetError(
            f"{json_path}: {where}: file_name {str(name)!r} points outside the data set folder; "
            "use a name relative to its folder (no '..', not absolute), or run `pdl check-dataset`"
        )


def find_image(image_dir: Path, file_name: str | None, label_name: str) -> Path:
    """The image of an annotation: its ``file_name`` in the images table, else <stem>.jpg|png."""
    if file_name:
        return image_dir / file_name
    stem = Path(label_name).stem
    for ext in (".jpg", ".png", ".jpeg"):
        if (image_dir / (stem + ext)).is_file():
            return image_dir / (stem + ext)
    return image_dir / (stem + ".jpg")


class CocoPanopticReader(Reader):
    """COCO-panoptic layout reader (see the module docstring)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        spec: DatasetSpec | None = None,
        json_path: str | Path | None = None,
        label_dir: str | Path | None = None,
        image_dir: str | Path | None = None,
        void_category_ids: frozenset[int] = frozenset(),
    ):
        self.root = Path(root)
        self.split = split
        self.json_path = (
            Path(json_path) if json_path else self.root / "annotations" / f"panoptic_{split}.json"
        )
        self.label_dir = Path(label_dir) if label_dir else self.json_path.with_suffix("")
        self.image_dir = Path(image_dir) if image_dir else self.root / split
        data = load_json(self.json_path)
        self.spec = spec or dataset_spec_from_categories(
            data.get("categories", []), name=self.json_path.stem
        )
        self._train_id = {self.spec.category_id(t): t for t in range(self.spec.num_classes)}
        # Categories read as void (e.g. Mapillary Vistas' labels that are not evaluated).
        self._train_id.update({int(c): self.spec.ignore_label for c in void_category_ids})
        images = {img.get("id"): img for img in data.get("images", []) if isinstance(img, dict)}
        self.examples = []
        for ann in data.get("annotations", []):
            try:
                image = images.get(ann["image_id"], {})
                where = f"image id {ann['image_id']!r}"
                check_file_name(ann["file_name"], self.json_path, where)
                check_file_name(image.get("file_name") or "", self.json_path, where)
                self.examples.append(
                    Example(
                        image_id=ann["image_id"],
                        image_path=str(
                            find_image(self.image_dir, image.get("file_name"), ann["file_name"])
                        ),
                        label_path=str(self.label_dir / ann["file_name"]),
                        segments_info=tuple(ann.get("segments_info", ())),
                    )
                )
            except (KeyError, TypeError):
                raise DatasetError(
                    f"{self.json_path}: an annotation lacks 'image_id' or 'file_name'; "
                    "run `pdl check-dataset` for details"
                ) from None

    def train_id(self, category_id: int) -> int:
        try:
            return self._train_id[category_id]
        except KeyError:
            raise DatasetError(
                f"{self.json_path}: category_id {category_id} is not in 'categories'; "
                "add it there or fix the segment"
            ) from None

    def load_panoptic(self, index: int) -> np.ndarray:
        example = self.examples[index]
        ids = read_segment_ids(example.label_path)
        spec = self.spec
        segments = [s for s in example.segments_info]
        seg_ids = np.array([int(s["id"]) for s in segments], np.int32)
        train_ids = np.array([self.train_id(int(s["category_id"])) for s in segments], np.int64)
        crowd = np.array([bool(s.get("iscrowd", 0)) for s in segments], bool)
        thing = np.array([spec.is_thing(t) for t in train_ids.tolist()], bool)
        instance = number_instances(train_ids, thing, crowd)
        values = train_ids * spec.label_divisor + instance
        void = spec.ignore_label * spec.label_divisor
        if len(seg_ids) == 0:
            return np.full(ids.shape, void, np.int32)
        # Map PNG ids to panoptic values; ids absent from segments_info (including 0) are void.
        order = np.argsort(seg_ids)
        sorted_ids, sorted_values = seg_ids[order], values[order]
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        known = sorted_ids[pos] == ids
        return np.where(known, sorted_values[pos], void).astype(np.int32)
