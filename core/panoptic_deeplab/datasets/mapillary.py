"""Reader for Mapillary Vistas' panoptic layouts, v1.2 and v2.0 (the data set as downloaded):

    ROOT/config_v1.2.json | config_v2.0.json           the class table ("labels")
    ROOT/<training|validation>/images/<key>.jpg
    ROOT/<training|validation>/v1.2/panoptic/panoptic_2018.json + <key>.png
    ROOT/<training|validation>/v2.0/panoptic/panoptic_2020.json + <key>.png

The panoptic JSON and PNGs are COCO panoptic (id = R + 256 G + 256^2 B). The class table comes from
the config JSON: its ``labels`` list, in order, gives category id ``index + 1`` (what the panoptic
JSON uses), ``readable`` name, ``color`` and ``instances`` (a thing class); labels with ``evaluate``
false (e.g. "Unlabeled") are void, as are PNG id 0 and ids missing from ``segments_info``.

Splits: ``training`` / ``validation`` (``train`` / ``val`` as aliases); ``SPLIT@v1.2`` picks a
version when a root holds both (default: v2.0). Label divisor 1000, ignore label 255.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from .specs import DatasetSpec

VERSIONS = {"v2.0": "panoptic_2020.json", "v1.2": "panoptic_2018.json"}  # preferred first
SPLIT_ALIASES = {"train": "training", "val": "validation"}
LABEL_DIVISOR, IGNORE_LABEL = 1000, 255


@dataclass(frozen=True)
class VistasLayout:
    version: str
    split_dir: Path  # ROOT/<training|validation>
    json_path: Path  # ROOT/<split>/<version>/panoptic/panoptic_20xx.json (its PNGs next to it)
    config_path: Path  # ROOT/config_<version>.json

    @property
    def image_dir(self) -> Path:
        return self.split_dir / "images"


def find_layout(root: str | Path, split: str) -> VistasLayout | None:
    """The Vistas layout of ``split`` under ``root``, or None when ``root`` is not one."""
    root = Path(root)
    name, _, wanted = split.partition("@")
    split_dir = root / SPLIT_ALIASES.get(name, name)
    for version, json_name in VERSIONS.items():
        if wanted and wanted != version:
            continue
        json_path = split_dir / version / "panoptic" / json_name
        config_path = root / f"config_{version}.json"
        if json_path.is_file() and config_path.is_file():
            return VistasLayout(version, split_dir, json_path, config_path)
    return None


def splits(root: str | Path) -> list[str]:
    """The split names this root offers (for messages), e.g. ``validation``, ``validation@v1.2``."""
    root = Path(root)
    found = []
    for split_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        versions = [
            v
            for v, j in VERSIONS.items()
            if (split_dir / v / "panoptic" / j).is_file() and (root / f"config_{v}.json").is_file()
        ]
        found += (
            [split_dir.name] + [f"{split_dir.name}@{v}" for v in versions[1:]] if versions else []
        )
    return found


def vistas_spec(config_path: str | Path, version: str) -> tuple[DatasetSpec, frozenset[int]]:
    """(spec of the evaluated labels, category ids of the labels that are void)."""
    config_path = Path(config_path)
    try:
        labels = json.loads(config_path.read_text(encoding="utf-8"))["labels"]
        rows = [
            (
                i + 1,
                str(lab.get("readable") or lab["name"]),
                tuple(int(c) for c in lab["color"]),
                bool(lab.get("instances", False)),
                bool(lab.get("evaluate", True)),
            )
            for i, lab in enumerate(labels)
        ]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DatasetError(
            f"{config_path}: not a Mapillary Vistas config ({type(err).__name__}: {err}); "
            "it needs a 'labels' list of {name, readable, color, instances, evaluate}; "
            "restore the file"
        ) from None
    kept = [r for r in rows if r[4]]
    if not kept:
        raise DatasetError(f'{config_path}: no label has "evaluate": true; restore the file')
    spec = DatasetSpec(
        name=f"mapillary_vistas_{version}",
        class_names=tuple(r[1] for r in kept),
        colors=tuple(r[2] for r in kept),
        thing_class_ids=tuple(t for t, r in enumerate(kept) if r[3]),
        label_divisor=LABEL_DIVISOR,
        ignore_label=IGNORE_LABEL,
        category_ids=tuple(r[0] for r in kept),
    )
    return spec, frozenset(r[0] for r in rows if not r[4])


def vistas_reader(
    root: str | Path,
    split: str,
    layout: VistasLayout | None = None,
    spec: DatasetSpec | None = None,
):
    """A COCO-panoptic reader over the Vistas layout (see the module docstring); ``spec`` (e.g. a
    bundle's) replaces the config JSON's class table."""
    from .coco_panoptic import CocoPanopticReader

    layout = layout or find_layout(root, split)
    if layout is None:
        raise DatasetError(f"{root}: no Mapillary Vistas split '{split}'")
    own, void = vistas_spec(layout.config_path, layout.version)
    return CocoPanopticReader(
        root,
        split,
        spec=spec or own,
        json_path=layout.json_path,
        label_dir=layout.json_path.parent,
        image_dir=layout.image_dir,
        void_category_ids=void,
    )
