"""Running a Predictor over many images and writing COCO-panoptic prediction files.

Layout written under ``OUT`` (shared by ``pdl predict`` and ``pdl evaluate``):

    OUT/panoptic.json          {"images", "annotations", "categories", "info"} (COCO panoptic)
    OUT/panoptic/<name>.png    RGB-encoded segment ids (id = R + 256 G + 256^2 B, 0 = void)
    OUT/overlays/<name>.jpg    with overlays: image + coloured panoptic map + centers
    OUT/raw/<name>.npz         with raw outputs: semantic_probs (float16), center_heatmap, offsets,
                               panoptic, semantic, center_points, center_scores
    OUT/skipped.json           images that could not be read, with the reason (only if any)

Segment ids in the PNGs are 1..n per image; each ``segments_info`` entry also carries the
library's ``panoptic_id`` (``class * divisor + instance``), ``isthing`` and the AP ``score``.
Every file is written through a temporary beside it and a rename (``safe_files.write_atomic``),
``panoptic.json`` at the end: an interrupted run, or one that fills the disk, never leaves a
half-written file, and a file of an earlier run into the same folder is replaced only by a whole
new one. A full disk ends in one ``DiskFullError`` naming the folder, the free space and the fix;
the predictions made until then are listed in ``panoptic.json`` when there is room for it.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .image_io import load_image
from .safe_files import DiskFullError, write_atomic, write_json_atomic


@dataclass(frozen=True)
class Source:
    """One image to predict: where it is and how the outputs are named."""

    image_id: int | str
    path: Path
    name: str  # output file stem, unique within a run


def sources_from_paths(paths: Iterable[Path]) -> list[Source]:
    """Sources for loose image files: ids 1, 2, ... in order; names from the file stems (made
    unique)."""
    out, used = [], set()
    for i, path in enumerate(paths, start=1):
        name = Path(path).stem
        if name in used:
            name = f"{name}_{i}"
        used.add(name)
        out.append(Source(image_id=i, path=Path(path), name=name))
    return out


def sources_from_dataset(reader) -> list[Source]:
    """Sources for a data set reader: image ids from its annotations, names from the image files."""
    return [
        Source(image_id=ex.image_id, path=Path(ex.image_path), name=Path(ex.image_path).stem)
        for ex in reader
    ]


def iter_predictions(
    predictor,
    sources: Iterable[Source],
    *,
    return_raw: bool = False,
    on_skip: Callable[[Source, str], None] | None = None,
    max_pixels: int | None = None,
) -> Iterator[tuple[Source, np.ndarray, object]]:
    """``(source, image, prediction)`` per readable image, in order; unreadable images are passed
    to ``on_skip(source, reason)`` and left out."""
    pending: deque = deque()

    def images():
        for source in sources:
            try:
                kwargs = {"max_pixels": max_pixels} if max_pixels else {}
                image = load_image(source.path, **kwargs)
            except UserError as err:
                if on_skip:
                    on_skip(source, str(err))
                continue
            pending.append((source, image))
            yield image

    for prediction in predictor.predict_iter(images(), return_raw=return_raw):
        source, image = pending.popleft()
        yield source, image, prediction


def categories_json(spec) -> list[dict]:
    """COCO-panoptic categories of a spec (the void class left out)."""
    return [
        {
            "id": spec.category_id(t),
            "name": name,
            "isthing": int(spec.is_thing(t)),
            "color": list(spec.colors[t]),
        }
        for t, name in enumerate(spec.class_names)
        if t != spec.ignore_label
    ]


def segments_info(prediction, spec) -> tuple[np.ndarray, list[dict]]:
    """The COCO segment-id map (1..n, 0 = void) and ``segments_info`` of a prediction."""
    return coco_segments(prediction.panoptic, spec, {s.id: s.score for s in prediction.segments})


def coco_segments(
    panoptic: np.ndarray, spec, scores: dict[int, float] | None = None
) -> tuple[np.ndarray, list[dict]]:
    """The one conversion of a panoptic map (``class * divisor + instance``) to COCO panoptic:
    segment ids 1..n in the order of the panoptic values (0 = void, so class 0 / instance 0 is not
    lost) and their ``segments_info``; ``scores`` gives the AP score per panoptic value (0 when
    absent). Used by ``pdl predict``, ``pdl evaluate --save-predictions`` and the app's
    downloads."""
    scores = scores or {}
    panoptic = np.asarray(panoptic)
    ids = np.zeros(panoptic.shape, np.int32)
    values, inverse, areas = np.unique(panoptic, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(panoptic.shape)
    info = []
    for index, (value, area) in enumerate(zip(values.tolist(), areas.tolist())):
        category = value // spec.label_divisor
        if category == spec.ignore_label:
            continue
        mask = inverse == index
        k = len(info) + 1
        ids[mask] = k
        rows, cols = np.nonzero(np.any(mask, axis=1))[0], np.nonzero(np.any(mask, axis=0))[0]
        bbox = [
            int(cols[0]),
            int(rows[0]),
            int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1),
        ]
        info.append(
            {
                "id": k,
                "category_id": spec.category_id(category),
                "iscrowd": 0,
                "area": int(area),
                "bbox": bbox,
                "isthing": int(spec.is_thing(category)),
                "score": float(scores.get(value, 0.0)),
                "panoptic_id": int(value),
            }
        )
    return ids, info


def panoptic_json(
    images: list[dict], annotations: list[dict], spec, info: dict | None = None
) -> dict:
    """A COCO-panoptic prediction file: ``info``, ``images``, ``annotations`` and ``categories``."""
    return {
        "info": info or {},
        "images": images,
        "annotations": annotations,
        "categories": categories_json(spec),
    }


class PanopticWriter:
    """Writes predictions in the layout of the module docstring."""

    def __init__(
        self,
        out_dir: str | Path,
        spec,
        *,
        overlays: bool = False,
        save_raw: bool = False,
        info: dict | None = None,
    ):
        self.out = Path(out_dir)
        self.spec = spec
        self.overlays = overlays
        self.save_raw = save_raw
        self.info = info or {}
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.skipped: list[dict] = []
        for sub in (
            ["panoptic"] + (["overlays"] if overlays else []) + (["raw"] if save_raw else [])
        ):
            (self.out / sub).mkdir(parents=True, exist_ok=True)

    def add(self, source: Source, image: np.ndarray, prediction) -> dict:
        from .evaluation.coco_io import encode_panoptic_png

        file_name = f"{source.name}.png"
        ids, info = segments_info(prediction, self.spec)
        _write(self.out / "panoptic" / file_name, encode_panoptic_png(ids))
        h, w = prediction.image_size
        self.images.append(
            {"id": source.image_id, "file_name": source.path.name, "height": h, "width": w}
        )
        annotation = {"image_id": source.image_id, "file_name": file_name, "segments_info": info}
        self.annotations.append(annotation)
        if self.overlays:
            self._write_overlay(source, image, prediction)
        if self.save_raw:
            self._write_raw(source, prediction)
        return annotation

    def skip(self, source: Source, reason: str) -> None:
        self.skipped.append(
            {"image_id": source.image_id, "path": str(source.path), "reason": reason}
        )

    def close(self) -> Path:
        data = panoptic_json(self.images, self.annotations, self.spec, self.info)
        path = self.out / "panoptic.json"
        write_json_atomic(path, data, indent=None)
        skipped = self.out / "skipped.json"
        if self.skipped:
            write_json_atomic(skipped, self.skipped, indent=None)
        elif skipped.exists():
            skipped.unlink()  # from an earlier run into the same folder
        return path

    def _write_overlay(self, source: Source, image: np.ndarray, prediction) -> None:
        import cv2

        from .visualize import draw_centers, panoptic_overlay

        picture = panoptic_overlay(
            image,
            prediction.panoptic,
            self.spec.colors,
            label_divisor=self.spec.label_divisor,
            ignore_label=self.spec.ignore_label,
        )
        picture = draw_centers(picture, np.round(prediction.center_points).astype(int))
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        if not ok:
            raise UserError(f"{source.path}: the overlay could not be encoded as JPEG.")
        _write(self.out / "overlays" / f"{source.name}.jpg", jpeg.tobytes())

    def _write_raw(self, source: Source, prediction) -> None:
        raw = {k: v for k, v in prediction.raw().items()}
        if "semantic_probs" in raw:
            raw["semantic_probs"] = raw["semantic_probs"].astype(np.float16)  # halves the size
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            panoptic=prediction.panoptic,
            semantic=prediction.semantic,
            center_points=prediction.center_points,
            center_scores=prediction.center_scores,
            **raw,
        )
        _write(self.out / "raw" / f"{source.name}.npz", buffer.getvalue())


def _write(path: Path, data: bytes) -> None:
    """``write_atomic``, with any failure to write as a UserError naming the file."""
    try:
        write_atomic(path, data)
    except DiskFullError:
        raise
    except OSError as err:
        raise UserError(
            f"{path}: cannot write this file ({err.strerror or err}). Choose an --out folder you "
            "can write to."
        ) from None
