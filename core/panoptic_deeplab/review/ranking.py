"""Annotation review, the ranking table: the scored items of a source joined with what reviewers
decided, as a DataFrame (built once per store revision; see ``ReviewStore.ranked``).

Columns: ``rank``, ``kind`` (gt_segment | missing), ``image_id``, ``file_name``, ``ref_id`` (the GT
segment id, or the predicted segment id of a missing object), ``segment_id`` (GT id; empty for
missing), ``pred_segment_id``, ``category_id`` / ``category`` (the annotation's class; the model's
for missing), ``model_category_id`` / ``model_category`` (the class the model gives it),
``suggested_category_id`` / ``suggested`` (the model's class among the pixels it disagrees on),
``score``, ``disagreement``, ``best_iou``, ``confidence``, ``area``, ``iscrowd``, ``x``, ``y``,
``w``, ``h``, ``status`` ("" open; accepted, rejected, ignored, fixed, removed; added or dismissed
for missing), ``action`` (the last decision or edit), ``new_category_id`` / ``new_category`` (the
current class when it changed), ``comment``, ``reviewer``, ``decided_at`` (ISO 8601), ``version``
(pass it back with a change), ``added_segment_id`` (the segment a missing object became).
Text cells are "" when empty; number cells are empty (NaN / <NA>), never the text "None".
"""

from __future__ import annotations

import numpy as np

from .scoring import GT_SEGMENT, MISSING

COLUMNS = [
    "rank",
    "kind",
    "image_id",
    "file_name",
    "ref_id",
    "segment_id",
    "pred_segment_id",
    "category_id",
    "category",
    "model_category_id",
    "model_category",
    "suggested_category_id",
    "suggested",
    "score",
    "disagreement",
    "best_iou",
    "confidence",
    "area",
    "iscrowd",
    "x",
    "y",
    "w",
    "h",
    "status",
    "action",
    "new_category_id",
    "new_category",
    "comment",
    "reviewer",
    "decided_at",
    "version",
    "added_segment_id",
]
_NULLABLE_INTS = (
    "segment_id",
    "pred_segment_id",
    "model_category_id",
    "suggested_category_id",
    "new_category_id",
    "added_segment_id",
)
_FLOATS = ("score", "disagreement", "best_iou", "confidence")
_TEXTS = (
    "category",
    "model_category",
    "suggested",
    "status",
    "action",
    "new_category",
    "comment",
    "reviewer",
    "decided_at",
)
_STATUS = {"accept": "accepted", "reject": "rejected", "ignore": "ignored"}


def _segment_status(seg) -> str:
    if seg is None:
        return ""
    if seg.removed:
        return "removed"
    if seg.excluded:
        return _STATUS[seg.excluded]
    if seg.action:
        return _STATUS.get(seg.action, "fixed")
    return ""


def build_ranking(store, key: str | None):
    """The ranking table of ``key``'s items with the review's current state. The items part is
    kept (``cache.RANKINGS``) until scoring changes it; a decision or an edit only re-applies the
    touched segments and missing objects, so the page's redraw does not grow with the split."""
    from . import cache
    from .store import Segment

    with store._read() as db:
        states = {
            (r["image_id"], int(r["segment_id"])): Segment.from_row(r)
            for r in db.execute("SELECT * FROM segments")
        }
        missing, stamp = {}, None
        if key is not None:
            missing = {
                (r["image_id"], int(r["pred_segment_id"])): dict(r)
                for r in db.execute("SELECT * FROM missing WHERE source = ?", (key,))
            }
            stamp = tuple(
                db.execute(
                    "SELECT (SELECT COUNT(*) FROM scored WHERE source = ?),"
                    " COUNT(*), MAX(rowid) FROM items WHERE source = ?",
                    (key, key),
                ).fetchone()
            )
        cache_key = (store._store_id, key, "items")
        base = cache.RANKINGS.get(cache_key, stamp)
        if base is None:
            base = _items_table(store, key, db)
            cache.RANKINGS.put(cache_key, base, stamp)
    return _with_review(store, *base, states, missing)


def _items_table(store, key: str | None, db):
    """The ranking's rows before any review, and {(image_id, kind, ref_id): row position}."""
    import pandas as pd

    items, scored = [], set()
    if key is not None:
        items = db.execute(
            "SELECT * FROM items WHERE source = ? ORDER BY score DESC, image_index, kind, ref_id",
            (key,),
        ).fetchall()
        scored = {r[0] for r in db.execute("SELECT image_id FROM scored WHERE source = ?", (key,))}
    name = store.category_name
    file_names: dict[str, str] = {}

    def file_name(image_id: str) -> str:
        if image_id not in file_names:
            file_names[image_id] = store.data.file_name(image_id)
        return file_names[image_id]

    rows = []
    for it in items:
        image_id, is_gt = it["image_id"], it["kind"] == GT_SEGMENT
        ref = int(it["segment_id"]) if is_gt else int(it["pred_segment_id"])
        rows.append(
            {
                "kind": it["kind"],
                "image_id": image_id,
                "file_name": file_name(image_id),
                "ref_id": ref,
                "segment_id": ref if is_gt else None,
                "category_id": int(it["category_id"]),
                "category": name(it["category_id"]),
                "pred_segment_id": it["pred_segment_id"],
                "model_category_id": it["model_category_id"],
                "model_category": name(it["model_category_id"]),
                "suggested_category_id": it["suggested_category_id"],
                "suggested": name(it["suggested_category_id"]),
                "score": it["score"],
                "disagreement": it["disagreement"],
                "best_iou": it["best_iou"],
                "confidence": it["confidence"],
                "area": it["area"],
                "iscrowd": it["iscrowd"],
                "x": it["x"],
                "y": it["y"],
                "w": it["w"],
                "h": it["h"],
            }
        )
    for image_id in store.image_ids():
        if image_id in scored:
            continue
        for s in store.data.original_segments(image_id):
            bbox = list(s.get("bbox") or [None] * 4)
            rows.append(
                {
                    "kind": GT_SEGMENT,
                    "image_id": image_id,
                    "file_name": file_name(image_id),
                    "ref_id": int(s["id"]),
                    "segment_id": int(s["id"]),
                    "category_id": int(s["category_id"]),
                    "category": name(int(s["category_id"])),
                    "area": s.get("area"),
                    "iscrowd": int(s.get("iscrowd", 0)),
                    "x": bbox[0],
                    "y": bbox[1],
                    "w": bbox[2],
                    "h": bbox[3],
                }
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["rank"] = np.arange(1, len(df) + 1)
    df["version"] = 0
    positions = {(r["image_id"], r["kind"], r["ref_id"]): k for k, r in enumerate(rows)}
    return _typed(df), positions


_REVIEW_COLUMNS = (
    "area",
    "status",
    "action",
    "new_category_id",
    "new_category",
    "comment",
    "reviewer",
    "decided_at",
    "version",
    "added_segment_id",
)


def _with_review(store, base, positions, states, missing):
    """``base`` with the touched segments' and the decided missing objects' current state (only
    their rows are written: the cost follows the review, not the split's size)."""
    import pandas as pd

    df = base.copy()
    updates: dict[str, tuple[list[int], list]] = {c: ([], []) for c in _REVIEW_COLUMNS}

    def put(pos: int, col: str, value) -> None:
        updates[col][0].append(pos)
        updates[col][1].append(value)

    categories = df["category_id"].to_numpy()
    for (image_id, sid), seg in states.items():
        pos = positions.get((image_id, GT_SEGMENT, sid))
        if pos is None:
            continue
        changed = seg.category_id != int(categories[pos])
        put(pos, "area", seg.area)
        put(pos, "status", _segment_status(seg))
        put(pos, "action", seg.action)
        put(pos, "new_category_id", seg.category_id if changed else None)
        put(pos, "new_category", store.category_name(seg.category_id) if changed else "")
        put(pos, "comment", seg.comment)
        put(pos, "reviewer", seg.decided_by)
        put(pos, "decided_at", seg.decided_at)
        put(pos, "version", seg.version)
    for (image_id, pid), m in missing.items():
        pos = positions.get((image_id, MISSING, pid))
        if pos is None:
            continue
        status = m.get("status", "")
        put(pos, "status", status)
        put(pos, "action", {"added": "add_missed", "dismissed": "dismiss"}.get(status, ""))
        put(pos, "reviewer", m.get("changed_by", "") if status else "")
        put(pos, "decided_at", m.get("changed_at", "") if status else "")
        put(pos, "version", m.get("version", 0))
        put(pos, "added_segment_id", m.get("segment_id"))
    for col, (rows, values) in updates.items():
        if not rows:
            continue
        array = df[col].array.copy()
        if col in _TEXTS:
            values = np.asarray(["" if v is None else str(v) for v in values], dtype=object)
        elif col == "version":
            values = np.asarray(values, np.int64)
        else:  # nullable ints
            values = pd.array(values, dtype="Int64")
        array[np.asarray(rows)] = values
        df[col] = array
    return df


def _typed(df, only=None):
    """The columns' types: nullable ints, floats, texts ("" when empty, never "None")."""
    import pandas as pd

    def wanted(col):
        return only is None or col in only

    for col in _NULLABLE_INTS + ("x", "y", "w", "h", "area"):
        if wanted(col):
            df[col] = pd.array(df[col].astype(object), dtype="Int64")
    for col in _FLOATS:
        if wanted(col):
            df[col] = df[col].astype(float)
    for col in _TEXTS:
        if wanted(col):
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if only is None:
        df["iscrowd"] = df["iscrowd"].fillna(0).astype(int)
        df["ref_id"] = df["ref_id"].astype(int)
        df["category_id"] = df["category_id"].astype(int)
    df["version"] = df["version"].fillna(0).astype(int)
    return df


def ranking_entries(store, df) -> list[dict]:
    """The JSON ranking: scored items, most suspicious first."""
    out = []
    scored = df[df["score"].notna()]
    for row in scored.itertuples(index=False):
        original_id = store.annotation(row.image_id)["image_id"]
        out.append(
            {
                "image_id": original_id,
                "file_name": row.file_name,
                "kind": row.kind,
                "segment_id": None if row.kind == MISSING else int(row.segment_id),
                "category_id": int(row.category_id),
                "model_category_id": None
                if _missing_value(row.model_category_id)
                else int(row.model_category_id),
                "bbox": [int(row.x), int(row.y), int(row.w), int(row.h)],
                "score": round(float(row.score), 6),
            }
        )
    return out


def _missing_value(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def item_key(row) -> tuple[str, str, int]:
    """(image_id, kind, ref_id) of a ranking row (a dict or a Series)."""
    return (str(row["image_id"]), str(row["kind"]), int(row["ref_id"]))


def next_row(df, after, only_open: bool, kinds, categories, wrap: bool) -> dict | None:
    if df.empty:
        return None
    keep = np.ones(len(df), bool)
    if only_open:
        keep &= (df["status"] == "").to_numpy()
    if kinds:
        keep &= df["kind"].isin(list(kinds)).to_numpy()
    if categories:
        keep &= df["category_id"].isin([int(c) for c in categories]).to_numpy()
    candidates = np.flatnonzero(keep)
    if not len(candidates):
        return None
    start = 0
    if after is not None:
        image_id, kind, ref = str(after[0]), str(after[1]), int(after[2])
        hit = np.flatnonzero(
            (df["image_id"] == image_id).to_numpy()
            & (df["kind"] == kind).to_numpy()
            & (df["ref_id"] == ref).to_numpy()
        )
        start = int(hit[0]) + 1 if len(hit) else 0
    later = candidates[candidates >= start]
    if len(later):
        pick = int(later[0])
    elif wrap:
        pick = int(candidates[0])
    else:
        return None
    return df.iloc[pick].to_dict()
