"""Prediction sets: any model's panoptic predictions of a data set split, read from files, so that
every analysis made for a bundle (``pdl evaluate``, the app) works for them too.

Formats (``FORMATS``):

* ``coco_panoptic``: a COCO-panoptic predictions JSON (``annotations`` with ``image_id``,
  ``file_name`` and ``segments_info``: ``id``, ``category_id``, optional ``score``) and its PNG
  folder (``id = R + 256 G + 256^2 B``, 0 = void), as panopticapi, detectron2's
  ``COCOPanopticEvaluator`` and ``pdl predict`` write them. The folder defaults to the JSON path
  without ``.json``. Images are matched by ``image_id``; category ids are the data set's.
* ``two_channel_png`` / ``three_channel_png``: deeplab2's raw predictions
  (``store_raw_predictions``): one PNG per image, named after the image, R = semantic value,
  G = instance (two channels) or G * 256 + B (three channels). A :class:`ClassTable` says which
  data set class each semantic value is (``train_ids``: the data set's own train ids, or a JSON
  file ``{"<value>": <category id> or null for void}``). Images are matched by file name.

:class:`PredictionSet` reads one image at a time as an :class:`ImagePrediction` (the panoptic map
in the library's ``train_id * label_divisor + instance`` format, its segments with their scores)
and checks a set against a data set split (:meth:`PredictionSet.check`): every problem with the
file, the segment and the fix, as ``pdl check-dataset`` does for data sets. No TensorFlow here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets.checks import Problem
from .errors import DatasetError, UserError

FORMATS = ("coco_panoptic", "two_channel_png", "three_channel_png")
# Folder names that say nothing about the model: a set is then named after the folder above.
_GENERIC_NAMES = {"panoptic", "raw_panoptic", "predictions", "pred", "preds", "png", "pngs"}


@dataclass(frozen=True)
class PredictedSegment:
    """One predicted segment. ``id``: its value in :attr:`ImagePrediction.panoptic`
    (``train_id * label_divisor + instance``); ``file_id``: its id in the file (COCO: the PNG id;
    raw PNGs: R * 65536 + instance); ``score``: the file's confidence, None when it has none."""

    id: int
    file_id: int
    category_id: int
    train_id: int
    isthing: bool
    area: int
    score: float | None = None


@dataclass
class ImagePrediction:
    """A prediction set's prediction of one image, at the image's size."""

    image_id: int | str
    png_path: Path
    panoptic: np.ndarray  # int32 [H, W]: train_id * divisor + instance; void = ignore * divisor
    segments: list[PredictedSegment]
    label_divisor: int
    void_value: int

    @property
    def semantic(self) -> np.ndarray:
        """Train ids from the panoptic map; void is -1 (a miss of the GT class in mIoU)."""
        return np.where(self.panoptic == self.void_value, -1, self.panoptic // self.label_divisor)

    @property
    def scores(self) -> dict[int, float]:
        """``{panoptic value: score}`` of the segments that carry one."""
        return {s.id: s.score for s in self.segments if s.score is not None}


# -- class tables of raw PNGs ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClassTable:
    """What the semantic value (R channel) of a raw prediction PNG means: ``{value: train id}``,
    ``None`` for void. ``source`` names it in messages."""

    train_ids: dict[int, int | None]
    source: str
    path: str | None = None  # the JSON file it was read from (None: the built-in train_ids)

    @classmethod
    def parse(cls, text: str | Path | None, spec) -> ClassTable:
        """``"train_ids"`` (the default: R is the data set's train id, its ignore label void) or a
        JSON file ``{"<value>": <data set category id> or null}``."""
        if text is None or str(text) == "train_ids":
            table = {t: t for t in range(spec.num_classes) if t != spec.ignore_label}
            table[spec.ignore_label] = None
            return cls(table, "train_ids (the data set's train ids)")
        path = Path(text)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(
                f"{path}: cannot read the class table ({err}); give 'train_ids' or a JSON file "
                '{"<semantic value>": <category id> or null for void}'
            ) from None
        train_of = {spec.category_id(t): t for t in range(spec.num_classes)}
        table: dict[int, int | None] = {}
        for key, value in data.items() if isinstance(data, dict) else []:
            try:
                raw = int(key)
                category = None if value is None else int(value)
            except (TypeError, ValueError):
                raise UserError(
                    f"{path}: entry {key!r}: {value!r}: keys are semantic values (integers), "
                    "values data set category ids or null for void"
                ) from None
            if category is not None and (
                category not in train_of or train_of[category] == spec.ignore_label
            ):
                raise UserError(
                    f"{path}: semantic value {raw} maps to category id {category}, which is not in "
                    f"the data set; use one of these: {_category_list(spec)}"
                )
            table[raw] = None if category is None else train_of[category]
        if not table:
            raise UserError(
                f"{path}: the class table is empty or not a JSON object; write "
                '{"<semantic value>": <category id> or null for void}'
            )
        return cls(table, str(path), str(path.resolve()))


# -- the set ---------------------------------------------------------------------------------------


def default_name(folder: str | Path, json_path: str | Path | None = None) -> str:
    """A prediction set's name from where it lies: its folder's name, or the folder above when the
    folder is called like its JSON or something generic (``OUT/panoptic`` of ``pdl predict``)."""
    folder = Path(folder).expanduser().resolve()
    generic = folder.name.lower() in _GENERIC_NAMES or (
        json_path is not None and Path(json_path).stem == folder.name
    )
    return (folder.parent.name if generic and folder.parent.name else folder.name) or "predictions"


class PredictionSet:
    """The predictions of a model for a data set split, read from files (module docstring).

    ``PredictionSet.open(...)`` finds the files; :meth:`match` pairs them with a reader's images,
    :meth:`load` reads one image's prediction, :meth:`check` lists every problem."""

    def __init__(
        self,
        spec,
        *,
        folder: str | Path,
        json_path: str | Path | None = None,
        format: str = "coco_panoptic",
        class_table: ClassTable | None = None,
        name: str | None = None,
    ):
        if format not in FORMATS:
            raise UserError(f"prediction format {format!r}: use one of {', '.join(FORMATS)}")
        self.spec = spec
        self.format = format
        self.folder = Path(folder).expanduser()
        self.json_path = Path(json_path).expanduser() if json_path else None
        self.name = name or default_name(self.folder, self.json_path)
        self.class_table = class_table or (
            None if format == "coco_panoptic" else ClassTable.parse(None, spec)
        )
        self._train_id = {spec.category_id(t): t for t in range(spec.num_classes)}
        self._annotations: dict | None = None  # image_id -> annotation (COCO), read on first use
        self._json_problems: list[Problem] = []
        self._files: dict[str, Path] | None = None  # raw PNGs by stem, listed on first use

    @classmethod
    def open(
        cls,
        spec,
        *,
        predictions: str | Path | None = None,
        folder: str | Path | None = None,
        format: str = "coco_panoptic",
        class_table: str | Path | None = None,
        name: str | None = None,
    ) -> PredictionSet:
        """A set from its JSON (``predictions``) and / or PNG ``folder``: for COCO panoptic the one
        missing is found beside the other (``X.json`` <-> ``X/``); raw formats need the folder."""
        if format == "coco_panoptic":
            if predictions is None and folder is None:
                raise UserError("a COCO-panoptic prediction set needs its JSON (--predictions)")
            predictions = Path(predictions) if predictions else Path(folder).with_suffix(".json")
            folder = Path(folder) if folder else predictions.with_suffix("")
            if not predictions.is_file():
                raise UserError(
                    f"{predictions}: predictions JSON not found; give the COCO-panoptic JSON "
                    "that came with the PNG folder (--predictions)"
                )
        elif folder is None:
            raise UserError(f"{format} predictions need their PNG folder (--pred-folder)")
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError(
                f"{folder}: prediction PNG folder not found; give the folder of the prediction "
                "PNGs (--pred-folder)"
            )
        table = None if format == "coco_panoptic" else ClassTable.parse(class_table, spec)
        return cls(
            spec,
            folder=folder,
            json_path=predictions,
            format=format,
            class_table=table,
            name=name,
        )

    @classmethod
    def from_source(cls, source, spec) -> PredictionSet:
        """The set an evaluation result names (its ``predictions``), opened again."""
        return cls.open(
            spec,
            predictions=source.json,
            folder=source.folder,
            format=source.format,
            class_table=source.class_table,
            name=source.name,
        )

    def example_entry(self, example):
        """The entry of one data set image (an :meth:`match` entry), or None without one."""
        if self.format == "coco_panoptic":
            return self._coco_annotations().get(example.image_id)
        files = self._raw_files()
        key = self._raw_key(example, files)
        return None if key is None else files[key]

    @staticmethod
    def _raw_key(example, files: dict) -> str | None:
        """The raw PNG of an image: named after the image file (deeplab2 drops Cityscapes'
        ``_leftImg8bit``), or after its image id."""
        stem = Path(example.image_path).stem
        for key in (stem, stem.removesuffix("_leftImg8bit"), str(example.image_id)):
            if key in files:
                return key
        return None

    def source(self):
        """Where the set came from, for the results (``evaluation.results.PredictionSource``)."""
        from .evaluation.results import PredictionSource

        return PredictionSource(
            name=self.name,
            format=self.format,
            folder=str(self.folder.resolve()),
            json=str(self.json_path.resolve()) if self.json_path else None,
            class_table=self.class_table.path if self.class_table else None,
        )

    # -- pairing with a data set ------------------------------------------------------------------

    def _coco_annotations(self) -> dict:
        """``{image_id: annotation}`` of the JSON; its structural problems in ``_json_problems``."""
        if self._annotations is not None:
            return self._annotations
        from .datasets.json_file import load_json

        path = self.json_path
        data = load_json(path, "predictions")
        anns = data.get("annotations")
        self._annotations, problems = {}, []
        if not isinstance(anns, list):
            problems.append(
                Problem(
                    str(path),
                    "no 'annotations' list",
                    "give the COCO-panoptic predictions JSON (annotations with image_id, "
                    "file_name and segments_info)",
                )
            )
            anns = []
        for k, ann in enumerate(anns):
            problem = _annotation_problem(path, k, ann)
            if problem:
                problems.append(problem)
                continue
            if ann["image_id"] in self._annotations:
                problems.append(
                    Problem(
                        str(path),
                        f"image_id {ann['image_id']!r} has more than one annotation",
                        "keep one annotation per image",
                    )
                )
                continue
            self._annotations[ann["image_id"]] = ann
        self._json_problems = problems
        return self._annotations

    def _raw_files(self) -> dict[str, Path]:
        """``{stem: PNG}`` of the folder, listed once."""
        if self._files is None:
            self._files = {p.stem: p for p in sorted(self.folder.glob("*.png"))}
        return self._files

    def match(self, reader, limit: int | None = None) -> tuple[list[tuple[int, object]], list]:
        """``([(reader index, entry)], problems)`` for the first ``limit`` images of ``reader``
        (all when None): an entry per image that has a prediction; problems for images without one
        and for predictions of images that are not in the split (or not among the first
        ``limit``: those are left alone)."""
        indices = range(len(reader) if limit is None else min(len(reader), max(0, limit)))
        pairs, problems = [], []
        if self.format == "coco_panoptic":
            anns = self._coco_annotations()
            problems += self._json_problems
            split_ids = {ex.image_id for ex in reader}
            for image_id in anns:
                if image_id not in split_ids:
                    problems.append(
                        Problem(
                            str(self.json_path),
                            f"image_id {image_id!r} is not an image of split '{reader.split}'",
                            "remove its annotation, or evaluate on the split it belongs to "
                            "(image ids must be the data set's)",
                        )
                    )
            for i in indices:
                ann = anns.get(reader[i].image_id)
                if ann is None:
                    problems.append(self._no_prediction(reader[i]))
                else:
                    pairs.append((i, ann))
            return pairs, problems
        files = self._raw_files()
        claimed = set()
        for i, example in enumerate(reader):
            key = self._raw_key(example, files)
            if key is not None:
                claimed.add(key)
                if i in indices:
                    pairs.append((i, files[key]))
            elif i in indices:
                problems.append(self._no_prediction(example))
        for key in sorted(set(files) - claimed):
            problems.append(
                Problem(
                    str(files[key]),
                    f"no image of split '{reader.split}' is named like this prediction PNG",
                    "remove it, or evaluate on the split it belongs to (a raw prediction PNG is "
                    "named after its image)",
                )
            )
        return pairs, problems

    def _no_prediction(self, example) -> Problem:
        where = self.json_path if self.format == "coco_panoptic" else self.folder
        return Problem(
            str(where),
            f"no prediction for image {example.image_id!r} ({Path(example.image_path).name})",
            "predict every image of the split (or evaluate the first N with --limit N)",
        )

    @property
    def has_scores(self) -> bool:
        """Whether every thing segment in the JSON carries a score (AP needs one each)."""
        if self.format != "coco_panoptic":
            return False
        things = [
            s
            for ann in self._coco_annotations().values()
            for s in ann["segments_info"]
            if self._train_id.get(s["category_id"]) in self.spec.thing_class_ids
        ]
        return bool(things) and all(_is_score(s.get("score")) for s in things)

    # -- one image --------------------------------------------------------------------------------

    def png_path(self, entry) -> Path:
        return self.folder / entry["file_name"] if isinstance(entry, dict) else Path(entry)

    def load(self, entry, image_id, size: tuple[int, int] | None = None) -> ImagePrediction:
        """The prediction of one image (``entry`` from :meth:`match`); ``size``: the image's
        (height, width), checked. A problem raises a DatasetError naming the file, the segment and
        the fix (:meth:`read` returns them all instead)."""
        prediction, problems = self.read(entry, image_id, size)
        if problems:
            raise DatasetError("\n".join(str(p) for p in problems))
        return prediction

    def read(self, entry, image_id, size=None) -> tuple[ImagePrediction | None, list[Problem]]:
        """:meth:`load` without raising: ``(prediction, [])`` or ``(None, problems)``."""
        from .datasets.png_ids import read_segment_ids

        png = self.png_path(entry)
        try:
            ids = read_segment_ids(png)
        except UserError as err:
            message = str(err).removeprefix(f"{png}: ")
            return None, [Problem(str(png), message, "restore the PNG or predict the image again")]
        if size is not None and tuple(ids.shape) != tuple(size):
            return None, [
                Problem(
                    str(png),
                    f"size {ids.shape[1]}x{ids.shape[0]} differs from its image's "
                    f"{size[1]}x{size[0]} (image {image_id!r})",
                    "write each prediction at its image's own size (undo any resize or padding)",
                )
            ]
        if self.format == "coco_panoptic":
            return self._read_coco(entry, image_id, ids, png)
        return self._read_raw(image_id, ids, png)

    def _read_coco(self, ann, image_id, ids, png):
        spec, where = self.spec, f"{self.json_path}: image_id {image_id!r}"
        problems = []
        listed = [s["id"] for s in ann["segments_info"]]
        for seg_id in sorted({i for i in listed if listed.count(i) > 1}):
            problems.append(
                Problem(
                    str(self.json_path),
                    f"image_id {image_id!r}: segment id {seg_id} is listed "
                    f"{listed.count(seg_id)} times in segments_info (overlapping segments)",
                    "give each segment of an image its own id",
                )
            )
        present, first, areas = np.unique(ids.reshape(-1), return_index=True, return_counts=True)
        area_of = dict(zip(present.tolist(), areas.tolist()))
        first_of = dict(zip(present.tolist(), first.tolist()))
        for seg in ann["segments_info"]:
            train_id = self._train_id.get(seg["category_id"])
            if train_id is None or train_id == spec.ignore_label:
                problems.append(
                    Problem(
                        str(self.json_path),
                        f"image_id {image_id!r}, segment {seg['id']}: category_id "
                        f"{seg['category_id']!r} is not a category of the data set",
                        "map the model's classes to the data set's category ids "
                        f"({_category_list(spec)})",
                    )
                )
            if seg["id"] not in area_of:
                problems.append(
                    Problem(
                        str(png),
                        f"segment {seg['id']} of segments_info ({where}) is not in the PNG",
                        "remove it from segments_info, or write the PNG again with its pixels",
                    )
                )
            if "score" in seg and not _is_score(seg["score"]):
                problems.append(
                    Problem(
                        str(self.json_path),
                        f"image_id {image_id!r}, segment {seg['id']}: score {seg['score']!r} is "
                        "not a number",
                        "give a number (the segment's confidence) or leave 'score' out",
                    )
                )
        for seg_id in sorted(set(area_of) - set(listed) - {0}):
            rgb = (seg_id & 255, seg_id >> 8 & 255, seg_id >> 16 & 255)
            problems.append(
                Problem(
                    str(png),
                    f"segment id {seg_id} (RGB {rgb}, {area_of[seg_id]} pixels) is in the PNG but "
                    f"not in segments_info ({where})",
                    "add it to segments_info, or paint its pixels 0 (void)",
                )
            )
        if problems:
            return None, problems
        segments, counters = [], {}
        # Numbered in raster order of their first pixel: the same segments give the same panoptic
        # values (and per-segment records) whatever ids and order the writing tool chose.
        for seg in sorted(ann["segments_info"], key=lambda s: first_of[s["id"]]):
            train_id = self._train_id[seg["category_id"]]
            thing = spec.is_thing(train_id)
            # Things 1, 2, ... per class; stuff 0 (a second segment of a stuff class 1, ...): every
            # segment keeps its own panoptic value, as panopticapi keeps it a segment of its own.
            instance = counters.get(train_id, 1 if thing else 0)
            counters[train_id] = instance + 1
            if instance >= spec.label_divisor:
                raise DatasetError(
                    f"{where}: more than {spec.label_divisor - 1} segments of class "
                    f"{spec.class_names[train_id]!r}; the data set's label divisor cannot number "
                    "them"
                )
            segments.append(
                PredictedSegment(
                    id=train_id * spec.label_divisor + instance,
                    file_id=int(seg["id"]),
                    category_id=int(seg["category_id"]),
                    train_id=train_id,
                    isthing=thing,
                    area=int(area_of[seg["id"]]),
                    score=float(seg["score"]) if _is_score(seg.get("score")) else None,
                )
            )
        file_ids = np.array([s.file_id for s in segments], np.int64)
        values = np.array([s.id for s in segments], np.int64)
        return self._image(image_id, png, _remap(ids, file_ids, values, self._void), segments), []

    def _read_raw(self, image_id, ids, png):
        spec, table = self.spec, self.class_table
        semantic = (ids & 255).astype(np.int64)
        if self.format == "two_channel_png":
            instance = (ids >> 8 & 255).astype(np.int64)
        else:
            instance = ((ids >> 8 & 255) * 256 + (ids >> 16 & 255)).astype(np.int64)
        unknown = sorted(set(np.unique(semantic).tolist()) - set(table.train_ids))
        if unknown:
            return None, [
                Problem(
                    str(png),
                    f"semantic values {unknown[:10]} (R channel) are not in the class table "
                    f"({table.source})",
                    "give a class table that lists every value (null for void)",
                )
            ]
        lut = np.full(max(table.train_ids) + 1, -1, np.int64)
        for raw, train_id in table.train_ids.items():
            lut[raw] = -1 if train_id is None else train_id
        train = lut[semantic]
        big = instance[train >= 0]
        if big.size and big.max() >= spec.label_divisor:
            return None, [
                Problem(
                    str(png),
                    f"instance id {int(big.max())} does not fit the data set's label divisor "
                    f"{spec.label_divisor}",
                    "number the instances of each class from 1 upwards",
                )
            ]
        panoptic = np.where(train >= 0, train * spec.label_divisor + instance, self._void)
        values, areas = np.unique(panoptic[train >= 0], return_counts=True)
        segments = [
            PredictedSegment(
                id=int(v),
                file_id=int(v // spec.label_divisor * 65536 + v % spec.label_divisor),
                category_id=spec.category_id(int(v // spec.label_divisor)),
                train_id=int(v // spec.label_divisor),
                isthing=spec.is_thing(int(v // spec.label_divisor)),
                area=int(a),
            )
            for v, a in zip(values.tolist(), areas.tolist())
        ]
        return self._image(image_id, png, panoptic, segments), []

    @property
    def _void(self) -> int:
        return self.spec.ignore_label * self.spec.label_divisor

    def _image(self, image_id, png, panoptic, segments) -> ImagePrediction:
        return ImagePrediction(
            image_id, png, panoptic.astype(np.int32), segments, self.spec.label_divisor, self._void
        )

    # -- the whole check --------------------------------------------------------------------------

    def check(self, reader, limit: int | None = None) -> list[Problem]:
        """Every problem of this set as predictions of ``reader``'s split (its first ``limit``
        images): unknown or missing images, missing or unreadable PNGs, sizes that differ from the
        images, category ids not in the data set, segments listed but not painted and painted but
        not listed, segment ids listed twice, scores that are not numbers."""
        from .image_io import header_size

        pairs, problems = self.match(reader, limit)
        for index, entry in pairs:
            example = reader[index]
            size = header_size(example.image_path)
            problems += self.read(entry, example.image_id, size)[1]
        return problems


def require_valid(problems: list[Problem], what: str, shown: int = 10) -> None:
    """Raise a DatasetError listing ``problems`` (the first ``shown``), as ``pdl check-dataset``."""
    if not problems:
        return
    listed = "\n".join(str(p) for p in problems[:shown])
    more = f"\n... and {len(problems) - shown} more" if len(problems) > shown else ""
    raise DatasetError(
        f"{what}: {len(problems)} problem(s); nothing was evaluated.\n{listed}{more}"
    )


def _annotation_problem(path, k: int, ann) -> Problem | None:
    segments = ann.get("segments_info") if isinstance(ann, dict) else None
    ok = (
        isinstance(segments, list)
        and "image_id" in ann
        and isinstance(ann.get("file_name"), str)
        and all(
            isinstance(s, dict) and isinstance(s.get("id"), int) and "category_id" in s
            for s in segments
        )
    )
    if ok:
        return None
    return Problem(
        str(path),
        f"annotation #{k} ({str(ann)[:80]}) is not a COCO-panoptic prediction",
        "give each annotation 'image_id', 'file_name' and a 'segments_info' list of entries "
        "with an integer 'id' and a 'category_id'",
    )


def _is_score(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _category_list(spec) -> str:
    ids = [
        f"{spec.category_id(t)} {spec.class_names[t]}"
        for t in range(spec.num_classes)
        if t != spec.ignore_label
    ]
    return ", ".join(ids[:12]) + (", ..." if len(ids) > 12 else "")


def _remap(ids: np.ndarray, file_ids: np.ndarray, values: np.ndarray, void: int) -> np.ndarray:
    """Each pixel's file id replaced by its segment's panoptic value; id 0 (and any unlisted id,
    which the caller has ruled out) void."""
    if len(file_ids) == 0:
        return np.full(ids.shape, void, np.int64)
    order = np.argsort(file_ids)
    sorted_ids, sorted_values = file_ids[order], values[order]
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, sorted_values[pos], void)
