"""Annotation review, the records a store hands out: a segment's state, a decision, the result of
an edit or an undo, a source's scoring progress, an image's current labels; and one line for people
describing a change."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field, fields

import numpy as np

REVIEWER_ENV = "PDL_REVIEWER"


def default_reviewer() -> str:
    """``$PDL_REVIEWER``, else the login name."""
    name = os.environ.get(REVIEWER_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class Segment:
    """The current state of one segment of an image under review."""

    id: int
    category_id: int
    iscrowd: int = 0
    area: int = 0
    bbox: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    origin: str = "gt"  # gt | model (a missed object added) | split | drawn
    removed: bool = False  # edited down to nothing, or merged into another
    action: str = ""  # the last decision or edit on it; "" while undecided
    excluded: str = ""  # "reject" or "ignore": exported as VOID
    comment: str = ""
    decided_by: str = ""
    decided_at: str = ""  # ISO 8601
    version: int = 0  # +1 with every change; a caller passes back the one it showed
    changed_by: str = ""
    changed_at: str = ""

    def snapshot(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row) -> Segment:
        data = dict(row)
        return cls(
            id=int(data["segment_id"]),
            category_id=int(data["category_id"]),
            iscrowd=int(data["iscrowd"]),
            area=int(data["area"]),
            bbox=json.loads(data["bbox"]),
            origin=data["origin"],
            removed=bool(data["removed"]),
            action=data["action"],
            excluded=data["excluded"],
            comment=data["comment"],
            decided_by=data["decided_by"],
            decided_at=data["decided_at"],
            version=int(data["version"]),
            changed_by=data["changed_by"],
            changed_at=data["changed_at"],
        )

    @property
    def exported(self) -> bool:
        return not self.removed and not self.excluded


_SEGMENT_FIELDS = [f.name for f in fields(Segment)]


@dataclass
class Decision:
    """A segment's current decision, as the Review page shows it (``updated_at``: ISO 8601)."""

    image_id: str
    segment_id: int
    action: str | None
    category_id: int | None  # the new class when it differs from the annotation's
    comment: str
    updated_at: str
    reviewer: str = ""
    version: int = 0


@dataclass
class EditResult:
    """What one decision or edit did. ``taken_from``: {segment id: pixels it lost to this one};
    ``given_to``: {segment id (0 = VOID): pixels this one lost to it}; ``versions``: the new version
    of every segment it touched (pass them with the next change)."""

    seq: int
    image_id: str
    kind: str
    segment_id: int | None
    pixels_added: int = 0
    pixels_removed: int = 0
    taken_from: dict[int, int] = field(default_factory=dict)
    given_to: dict[int, int] = field(default_factory=dict)
    new_segments: list[int] = field(default_factory=list)
    removed_segments: list[int] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)
    message: str = ""


@dataclass
class UndoResult:
    """The change an undo reverted (the page moves back to ``image_id`` / ``segment_id``)."""

    seq: int
    kind: str
    image_id: str
    segment_id: int | None
    reviewer: str
    versions: dict[int, int]
    message: str

    @property
    def action(self) -> str:  # what was undone, by its kind
        return self.kind


@dataclass
class ScoringProgress:
    """How far a source's scoring is: ``scored`` of ``total`` images; ``state`` is "" (never
    started), running, finished, failed or stopped; ``running`` is checked against the process."""

    source: str
    name: str
    kind: str
    scored: int
    total: int
    state: str
    message: str
    started_at: str
    updated_at: str
    running: bool

    @property
    def fraction(self) -> float:
        return self.scored / self.total if self.total else 0.0


@dataclass
class ImageState:
    """An image's current labels: ``ids`` (HxW int32, read only; 0 = VOID) and its ``segments``
    (removed ones included, marked), at ``pixel_version``."""

    image_id: str
    ids: np.ndarray
    segments: dict[int, Segment]
    pixel_version: int

    def active(self) -> dict[int, Segment]:
        return {k: s for k, s in self.segments.items() if not s.removed}


@dataclass
class _Plan:
    """What a change will write (built inside the write transaction)."""

    main: int | None
    new_ids: np.ndarray | None = None
    updates: dict[int, dict] = field(default_factory=dict)
    created: dict[int, Segment] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    sets_action: bool = True
    missing: tuple | None = None  # (source, pred segment id, row after)


def _source_key(source) -> str:
    return source if isinstance(source, str) else source.key


@dataclass
class _MissingView:
    """A missing object's state, shaped like a Segment for the stale-change message."""

    row: dict

    @property
    def version(self) -> int:
        return int(self.row.get("version", 0))

    @property
    def changed_by(self) -> str:
        return self.row.get("changed_by", "") or ""

    @property
    def changed_at(self) -> str:
        return self.row.get("changed_at", "") or ""

    @property
    def action(self) -> str:
        return self.row.get("status", "") or ""


def describe_change(kind: str, segment_id, detail: dict, name_of) -> str:
    """One line for people: what a change did."""
    seg = f"segment {segment_id}" if segment_id is not None else "the possible missing object"
    text = {
        "accept": f"accepted {seg}",
        "reject": f"rejected {seg} (exported as VOID)",
        "ignore": f"ignored {seg} (exported as VOID)",
        "crowd": f"marked {seg} as a crowd region",
        "comment": f"commented on {seg}",
        "take_model": f"{seg} now has the model's mask",
        "add_missed": f"added the missed object as {seg}",
        "add": f"added {seg}",
        "paint": f"painted {seg} ({detail.get('tool', 'brush')}, {detail.get('mode', 'add')})",
        "region": f"smart region on {seg} ({detail.get('mode', 'add')})",
        "merge": f"merged segment {detail.get('other')} into {seg}",
        "split": f"split {seg} along the "
        + ("drawn line" if detail.get("along") == "line" else "model's instances"),
        "dismiss": "dismissed the possible missing object",
        "relabel": f"relabelled {seg}",
    }.get(kind, f"{kind} on {seg}")
    if "new_category_id" in detail:
        text += f": {name_of(detail.get('category_id'))} → {name_of(detail['new_category_id'])}"
    parts = []
    if detail.get("pixels_added"):
        parts.append(f"+{detail['pixels_added']} px")
    if detail.get("pixels_removed"):
        parts.append(f"-{detail['pixels_removed']} px")
    taken = detail.get("taken_from") or {}
    if taken:
        parts.append(
            "taken from " + ", ".join(f"segment {k} ({v} px)" for k, v in sorted(taken.items()))
        )
    if detail.get("new_segments"):
        parts.append("new " + ", ".join(f"segment {k}" for k in detail["new_segments"]))
    if detail.get("removed_segments"):
        parts.append("removed " + ", ".join(f"segment {k}" for k in detail["removed_segments"]))
    return text + (f" ({'; '.join(parts)})" if parts else "")
