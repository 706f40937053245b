"""Validation of a data set on disk: every problem, each with its file and the fix.

:func:`check_dataset` never raises on bad data; it returns a list of :class:`Problem`.
:func:`require_valid_dataset` is the same check as a gate: ``pdl train`` and ``pdl evaluate`` call
it before any work, so a broken data set fails at once with the messages of ``pdl check-dataset``; a
pass is remembered (:mod:`.check_cache`), so a re-run on the unchanged data set skips the decoding.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError, ImageError
from ..image_io import header_size
from . import check_cache
from .coco_panoptic import find_image, leaves_folder, read_segment_ids
from .mapillary import find_layout as find_vistas_layout
from .mapillary import splits as vistas_splits

# Bump on any change to what the checks below accept or reject: every remembered pass is then
# checked again (it is part of the check_cache fingerprint).
CHECK_VERSION = 2


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    fix: str
    # "image": an image file is missing or unreadable (prediction can skip that image);
    # "annotation": anything else (the labels or the annotation file are wrong).
    kind: str = "annotation"

    def __str__(self) -> str:
        return f"{self.file}: {self.message}\n    fix: {self.fix}"


def require_valid_dataset(
    root: str | Path, split: str, *, allow_image_problems: bool = False, shown: int = 10
) -> None:
    """Raise a DatasetError listing what :func:`check_dataset` finds (the first ``shown`` problems).
    With ``allow_image_problems``, missing or unreadable images pass (``pdl evaluate`` skips and
    reports them). A pass is remembered; while no file the check reads has changed (size, mtime),
    the next call returns at once (``PDL_RECHECK_DATASET=1`` checks again)."""
    # Fingerprint before checking: a file changed during the check then differs on the next run.
    files, annotations = _files_and_annotations(root, split)
    fingerprint = check_cache.fingerprint(root, CHECK_VERSION, files) if files is not None else None
    record = fingerprint and check_cache.passed_before(
        root, split, fingerprint, allow_image_problems
    )
    if record:
        print(
            f"{root} split '{split}': unchanged since it passed the data set check, not checked "
            f"again (set {check_cache.RECHECK_ENV}=1 to check it again; record: {record})"
        )
        return
    found = check_dataset(
        root, split, annotations=annotations
    )  # the JSON parsed once (COCO's: seconds)
    problems = [p for p in found if not (allow_image_problems and p.kind == "image")]
    if not problems:
        if fingerprint:
            check_cache.remember_pass(root, split, fingerprint, image_problems=bool(found))
        return
    listed = "\n".join(str(p) for p in problems[:shown])
    more = f"\n... and {len(problems) - shown} more" if len(problems) > shown else ""
    raise DatasetError(
        f"{root} split '{split}': {len(problems)} problem(s) in the data set; nothing was done.\n"
        f"{listed}{more}\n"
        f"Fix them (`pdl check-dataset {root} --split {split}` lists them all) and run again."
    )


def check_dataset(
    root: str | Path, split: str, *, annotations: dict | None = None
) -> list[Problem]:
    """Check the COCO-panoptic or Cityscapes data set at ``root`` (layout detected like
    :func:`~panoptic_deeplab.datasets.readers.open_dataset`). ``annotations``: the annotation
    JSON already parsed, if the caller has it."""
    root = Path(root)
    kind, json_path, image_path_fn = _layout(root, split)
    vistas = find_vistas_layout(root, split)
    if vistas is not None:  # its class table is the data set's own config JSON
        from .mapillary import vistas_spec

        try:
            vistas_spec(vistas.config_path, vistas.version)
        except DatasetError as err:
            message, _, fix = str(err).removeprefix(f"{vistas.config_path}: ").partition("; ")
            return [Problem(str(vistas.config_path), message, fix or "restore the file")]
    if kind == "coco":
        return check_coco_panoptic(
            root,
            split,
            json_path=json_path,
            image_path_fn=image_path_fn,
            annotations=annotations,
            spec=_layout_spec(root, json_path),
            label_dir=_label_dir(root, split, json_path),
        )
    if kind == "cityscapes":
        return check_cityscapes(root, split)
    return [missing_layout_problem(root, split)]


def existing_splits(root: Path) -> list[str]:
    """The splits a data set folder has: ``annotations/panoptic_<split>.json`` (COCO panoptic),
    ``leftImg8bit/<split>/`` (Cityscapes) and Mapillary Vistas' ``<split>/<version>/panoptic/``."""
    found = [
        p.name[len("panoptic_") : -len(".json")]
        for p in sorted((root / "annotations").glob("panoptic_*.json"))
    ]
    found += [p.name for p in sorted((root / "leftImg8bit").glob("*")) if p.is_dir()]
    found += vistas_splits(root)
    return list(dict.fromkeys(found))


def missing_layout_problem(root: Path, split: str) -> Problem:
    """What to say when ``root`` holds no data set for ``split``: the folder is missing, the split
    is not there (naming those that are), or no known layout is found."""
    json_path = root / "annotations" / f"panoptic_{split}.json"
    if not root.is_dir():
        return Problem(
            str(root),
            "data set folder not found",
            "check the path (it does not exist or is not a folder)",
        )
    splits = existing_splits(root)
    if splits:
        return Problem(
            str(json_path),
            f"no split '{split}' in this data set; it has: {', '.join(splits)}",
            f"pass --split {splits[0]}" + (" (or another of those)" if len(splits) > 1 else ""),
        )
    return Problem(
        str(json_path),
        f"annotation file not found and no Cityscapes layout: no data set layout found "
        f"for split '{split}'",
        f"put the COCO-panoptic JSON at {json_path}, or point at a Cityscapes root "
        "with leftImg8bit/ and gtFine/",
    )


def _layout(root: Path, split: str):
    """(kind, annotation JSON, image_path_fn) of the data set: kind "coco" (COCO-panoptic, or the
    panoptic JSON that cityscapesscripts writes), "cityscapes" (instanceIds PNGs) or "none"."""
    json_path = root / "annotations" / f"panoptic_{split}.json"
    if json_path.exists():
        return "coco", json_path, _coco_image_path_fn(root, split)
    vistas = find_vistas_layout(root, split)
    if vistas is not None:

        def vistas_image_path_fn(ann, image):
            return find_image(vistas.image_dir, image.get("file_name"), str(ann["file_name"]))

        return "coco", vistas.json_path, vistas_image_path_fn
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        from .cityscapes import panoptic_json_path

        cs_json = panoptic_json_path(root, split)
        if cs_json is not None and not any((root / "gtFine" / split).glob("*/*_instanceIds.png")):
            image_root = root / "leftImg8bit" / split

            def image_path_fn(ann, image):
                return (
                    image_root
                    / str(ann["image_id"]).split("_")[0]
                    / f"{ann['image_id']}_leftImg8bit.png"
                )

            return "coco", cs_json, image_path_fn
        return "cityscapes", None, None
    return "none", json_path, None


def _layout_spec(root: Path, json_path: Path):
    """The class table a reader of this layout uses instead of the JSON's 'categories', or None."""
    if json_path.parent == root / "gtFine":  # cityscapesscripts' panoptic JSON
        from .cityscapes import cityscapes_panoptic_spec

        return cityscapes_panoptic_spec(json_path)
    return None


def _label_dir(root: Path, split: str, json_path: Path) -> Path:
    """Where the panoptic PNGs are: next to a Vistas JSON, else in the folder named as the JSON."""
    vistas = find_vistas_layout(root, split)
    return (
        json_path.parent
        if vistas is not None and vistas.json_path == json_path
        else json_path.with_suffix("")
    )


def _coco_image_path_fn(root: Path, split: str):
    image_dir = root / split

    def image_path_fn(ann, image):
        return find_image(image_dir, image.get("file_name"), str(ann["file_name"]))

    return image_path_fn


def _outside_names(ann: dict, image: dict) -> list[str]:
    """The file names of an annotation and its image that leave the data set folder (not opened)."""
    return [str(n) for n in (ann["file_name"], image.get("file_name")) if n and leaves_folder(n)]


def _annotation_files(ann: dict, image: dict, label_dir: Path, image_path_fn) -> tuple[Path, Path]:
    """(label PNG, image) of a COCO-panoptic annotation."""
    return label_dir / str(ann["file_name"]), image_path_fn(ann, image)


def _cityscapes_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, instanceIds PNG) of every leftImg8bit image of the split."""
    from .cityscapes import instance_ids_path

    images = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    return [(image, instance_ids_path(root, split, image)) for image in images]


def files_checked(root: str | Path, split: str) -> list[Path] | None:
    """Every file :func:`check_dataset` reads (annotation JSON, label PNGs, images), found the same
    way; None when the layout or the annotation file is unusable (the check reports that)."""
    return _files_and_annotations(root, split)[0]


def _files_and_annotations(root: str | Path, split: str) -> tuple[list[Path] | None, dict | None]:
    """:func:`files_checked` and the parsed annotation JSON (None: Cityscapes, or unreadable)."""
    root = Path(root)
    kind, json_path, image_path_fn = _layout(root, split)
    if kind == "cityscapes":
        return [path for pair in _cityscapes_pairs(root, split) for path in pair], None
    if kind != "coco":
        return None, None
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except Exception:  # noqa: BLE001 - unreadable: the check reports it, nothing is remembered
        return None, None
    try:
        images = {img["id"]: img for img in data.get("images", [])}
        files, label_dir = [json_path], _label_dir(root, split, json_path)
        for ann in data["annotations"]:
            image = images.get(ann["image_id"], {})
            if _outside_names(ann, image):
                return None, data
            files += _annotation_files(ann, image, label_dir, image_path_fn)
        return files, data
    except Exception:  # noqa: BLE001 - any malformed entry: the check reports it, nothing is remembered
        return None, data


def check_coco_panoptic(
    root: str | Path,
    split: str,
    *,
    json_path=None,
    image_path_fn=None,
    annotations: dict | None = None,
    spec=None,
    label_dir=None,
) -> list[Problem]:
    """COCO-panoptic checks. ``json_path`` defaults to ``root/annotations/panoptic_<split>.json``
    (PNGs in the folder of the same name); ``image_path_fn(annotation, image_entry)`` locates an
    image (default ``root/<split>/<file_name>``); ``annotations``: that JSON already parsed.

    What is required is what the reader needs: 'annotations'; 'categories' unless ``spec`` gives
    the class table (Cityscapes' panoptic JSON); 'images' is optional (an image is then found from
    the annotation's name, as the reader does)."""
    root = Path(root)
    json_path = Path(json_path) if json_path else root / "annotations" / f"panoptic_{split}.json"
    label_dir = Path(label_dir) if label_dir else json_path.with_suffix("")
    image_path_fn = image_path_fn or _coco_image_path_fn(root, split)
    problems: list[Problem] = []

    def report(file, message, fix):
        problems.append(Problem(str(file), message, fix))

    try:
        if annotations is None:
            with open(json_path, encoding="utf-8") as f:
                annotations = json.load(f)
        data = annotations
    except FileNotFoundError:
        report(json_path, "annotation file not found", "check the data set root and the split name")
        return problems
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        report(json_path, f"invalid JSON: {err}", "repair or regenerate the annotation file")
        return problems
    if not isinstance(data, dict):
        report(
            json_path,
            "top level is not a JSON object",
            "write {'images': [...], 'annotations': [...], 'categories': [...]}",
        )
        return problems
    required = ("annotations",) if spec is not None else ("annotations", "categories")
    for key in ("images", "annotations", "categories"):
        if (key in required or key in data) and not isinstance(data.get(key), list):
            report(json_path, f"missing or non-list '{key}'", f"add the '{key}' list")
    if problems:
        return problems

    categories: dict[int, dict] = {}
    if spec is not None and "categories" not in data:
        categories = {
            spec.category_id(t): {"id": spec.category_id(t), "name": spec.class_names[t]}
            for t in range(spec.num_classes)
        }
    for cat in data.get("categories", []):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or "name" not in cat:
            report(
                json_path,
                f"category entry {cat!r} lacks an integer 'id' or a 'name'",
                "complete the entry",
            )
            continue
        if cat["id"] in categories:
            report(
                json_path, f"duplicate category id {cat['id']}", "give each category a unique id"
            )
        categories[cat["id"]] = cat

    images: dict = {}
    for img in data.get("images", []):
        if not isinstance(img, dict) or "id" not in img:
            report(json_path, f"image entry {img!r} lacks an 'id'", "add the image id")
            continue
        if img["id"] in images:
            report(
                json_path,
                f"duplicate image id {img['id']!r} in 'images'",
                "give each image a unique id",
            )
        images[img["id"]] = img

    seen_images: set = set()
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "image_id" not in ann or "file_name" not in ann:
            report(
                json_path,
                f"annotation {str(ann)[:80]} lacks 'image_id' or 'file_name'",
                "add both fields",
            )
            continue
        image_id = ann["image_id"]
        if image_id in seen_images:
            report(
                json_path,
                f"image id {image_id!r} has more than one annotation",
                "merge or remove the duplicates",
            )
        seen_images.add(image_id)
        if "images" in data and image_id not in images:
            report(
                json_path,
                f"annotation for image id {image_id!r} has no entry in 'images'",
                "add the image (id, file_name, height, width) to 'images'",
            )
        image = images.get(image_id, {})
        problems.extend(
            _check_annotation(
                ann,
                image,
                categories,
                json_path,
                *_annotation_files(ann, image, label_dir, image_path_fn),
            )
        )
    for image_id in images:
        if image_id not in seen_images:
            report(
                json_path,
                f"image id {image_id!r} has no annotation",
                "add its annotation or remove the image",
            )
    return problems


def _check_annotation(ann, image, categories, json_path, png_path, image_path) -> list[Problem]:
    problems: list[Problem] = []
    where = f"image id {ann['image_id']!r}"

    def report(file, message, fix, kind="annotation"):
        problems.append(Problem(str(file), message, fix, kind))

    outside = _outside_names(ann, image)
    if outside:
        for name in outside:
            report(
                json_path,
                f"{where}: file_name {name!r} points outside the data set folder",
                "use a name relative to its folder (no '..', not absolute)",
            )
        return problems  # never open files outside the data set

    segments = ann.get("segments_info")
    if not isinstance(segments, list):
        report(
            json_path, f"{where}: 'segments_info' missing or not a list", "add the list of segments"
        )
        segments = []
    ids = Counter()
    info: dict[int, dict] = {}
    for seg in segments:
        if (
            not isinstance(seg, dict)
            or not isinstance(seg.get("id"), int)
            or "category_id" not in seg
        ):
            report(
                json_path,
                f"{where}: segment {seg!r} lacks an integer 'id' or 'category_id'",
                "complete the segment",
            )
            continue
        ids[seg["id"]] += 1
        info[seg["id"]] = seg
        if seg["category_id"] not in categories:
            report(
                json_path,
                f"{where}: segment {seg['id']} has unknown category_id {seg['category_id']}",
                "use a category id listed in 'categories' or add the category",
            )
        if seg["id"] == 0:
            report(
                json_path,
                f"{where}: segment id 0 is reserved for void",
                "renumber the segment (ids start at 1)",
            )
    for seg_id, count in ids.items():
        if count > 1:
            report(
                json_path,
                f"{where}: segment id {seg_id} appears {count} times in segments_info",
                "give each segment of an image a unique id",
            )

    image_size = None
    if not image_path.is_file():
        report(
            image_path,
            f"{where}: image file missing",
            "restore the image or remove its annotation",
            "image",
        )
    else:
        image_size = header_size(image_path)
        if image_size is None:
            report(
                image_path,
                f"{where}: image cannot be decoded",
                "replace it with a valid JPEG or PNG",
                "image",
            )
    json_size = (
        (image["height"], image["width"]) if image.get("height") and image.get("width") else None
    )

    def json_vs_image():
        if image_size is not None and json_size is not None and json_size != image_size:
            report(
                json_path,
                f"{where}: 'images' says {_hw(json_size)} but the file is {_hw(image_size)}",
                "correct height/width in 'images'",
            )

    if not png_path.is_file():
        json_vs_image()
        report(
            png_path, f"{where}: panoptic PNG missing", "restore the PNG or remove the annotation"
        )
        return problems
    try:
        seg_map = read_segment_ids(
            png_path
        )  # the readers' decoder: what passes here, training can read
    except ImageError:
        json_vs_image()
        report(png_path, f"{where}: panoptic PNG cannot be decoded", "regenerate the PNG")
        return problems
    except DatasetError as err:
        json_vs_image()  # gone since the test above, unreadable, or not an 8-bit RGB (or grey) PNG
        if not png_path.is_file():
            report(
                png_path,
                f"{where}: panoptic PNG missing",
                "restore the PNG or remove the annotation",
            )
        else:  # the decoder's "<path>: <what>; <fix>", as a Problem
            message, _, fix = str(err).removeprefix(f"{png_path}: ").partition("; ")
            report(
                png_path,
                f"{where}: {message}",
                fix or "regenerate the PNG as 8-bit RGB (id = R + 256 G + 256^2 B)",
            )
        return problems
    _report_size_disagreement(
        report, where, json_path, image_path, png_path, json_size, image_size, tuple(seg_map.shape)
    )
    values, counts = np.unique(seg_map, return_counts=True)
    areas = dict(zip(values.tolist(), counts.tolist()))
    for seg_id in sorted(set(areas) - set(info) - {0}):
        report(
            png_path,
            f"{where}: PNG id {seg_id} ({areas[seg_id]} px) is not in segments_info",
            "add a segment with this id to segments_info or paint these pixels 0 (void)",
        )
    for seg_id, seg in info.items():
        if seg_id == 0:
            continue
        if seg_id not in areas:
            report(
                json_path,
                f"{where}: segment {seg_id} of segments_info does not occur in {png_path.name}",
                "remove the segment or fix the PNG",
            )
        elif "area" in seg and seg["area"] != areas[seg_id]:
            report(
                json_path,
                f"{where}: segment {seg_id} has area {seg['area']} but covers {areas[seg_id]} px",
                f"set its 'area' to {areas[seg_id]}",
            )
    return problems


def _hw(size) -> str:
    return f"{size[0]}x{size[1]}"


def _report_size_disagreement(
    report, where, json_path, image_path, png_path, json_size, image_size, png_size
):
    """Of the sizes in 'images', of the image file and of the PNG, blame the one that disagrees with
    the other two (all three when none agree; the PNG when 'images' gives none)."""
    if (
        image_size is None
    ):  # unreadable image: reported already; 'images' and the PNG can still disagree
        if json_size is not None and json_size != png_size:
            report(
                png_path,
                f"{where}: PNG is {_hw(png_size)} but 'images' says {_hw(json_size)}",
                "regenerate the PNG at the image's size, or correct height/width in 'images'",
            )
        return
    if json_size is None or json_size == image_size:
        if png_size != image_size:
            report(
                png_path,
                f"{where}: PNG is {_hw(png_size)} but the image is {_hw(image_size)}"
                + (" (as 'images' says)" if json_size else ""),
                "regenerate the PNG at the image's size",
            )
    elif json_size == png_size:
        report(
            image_path,
            f"{where}: the image is {_hw(image_size)} but 'images' and the panoptic PNG say "
            f"{_hw(json_size)}",
            "replace the image with the one that belongs to this annotation "
            f"(or resize it to {_hw(json_size)})",
        )
    elif image_size == png_size:
        report(
            json_path,
            f"{where}: 'images' says {_hw(json_size)} but the image and the PNG are "
            f"{_hw(image_size)}",
            "correct height/width in 'images'",
        )
    else:
        report(
            json_path,
            f"{where}: three different sizes: 'images' {_hw(json_size)}, image {_hw(image_size)}, "
            f"PNG {_hw(png_size)}",
            "make the image, the PNG and 'images' agree",
        )


def check_cityscapes(root: str | Path, split: str) -> list[Problem]:
    """Cityscapes: every leftImg8bit image has a readable gtFine instanceIds PNG of its size whose
    label ids exist in cityscapesscripts' table."""
    from cityscapesscripts.helpers.labels import id2label

    root = Path(root)
    problems: list[Problem] = []
    pairs = _cityscapes_pairs(root, split)
    if not pairs:
        return [
            Problem(
                str(root / "leftImg8bit" / split),
                "no *_leftImg8bit.png images for this split",
                "check the split name and the folder layout leftImg8bit/<split>/<city>/",
            )
        ]
    for image_path, label_path in pairs:
        if not label_path.is_file():
            problems.append(
                Problem(
                    str(label_path),
                    "instanceIds PNG missing",
                    "restore it from gtFine or remove the image",
                )
            )
            continue
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2:
            problems.append(
                Problem(
                    str(label_path),
                    "cannot decode as a single-channel 16-bit PNG",
                    "restore the original gtFine file",
                )
            )
            continue
        size = header_size(image_path)
        if size is None:
            problems.append(
                Problem(
                    str(image_path), "image cannot be decoded", "restore the original file", "image"
                )
            )
        elif size != label.shape:
            problems.append(
                Problem(
                    str(label_path),
                    f"label is {label.shape[0]}x{label.shape[1]} but the image is "
                    f"{size[0]}x{size[1]}",
                    "restore the matching gtFine file",
                )
            )
        values = np.unique(label)
        label_ids = np.where(values >= 1000, values // 1000, values)
        unknown = sorted(set(label_ids.tolist()) - set(id2label))
        if unknown:
            problems.append(
                Problem(
                    str(label_path),
                    f"unknown Cityscapes label ids {unknown}",
                    "use label ids from cityscapesscripts.helpers.labels",
                )
            )
    return problems
