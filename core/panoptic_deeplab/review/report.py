"""Annotation review, the report: every decision and edit in force, oldest first, for people (CSV)
and programs (JSON). Times are ISO 8601; empty cells are empty, never "None".

Columns: ``seq`` (the change's number), ``time``, ``reviewer``, ``image_id``, ``file_name``,
``segment_id``, ``action``, ``category`` (before), ``new_category`` (after, when it changed),
``pixels_added``, ``pixels_removed`` (of the segment), ``taken_from`` (segments that lost pixels to
it), ``given_to`` (segments, or VOID, that its pixels went to), ``new_segments``,
``removed_segments``, ``other_segment`` (merged, or the predicted segment taken or added),
``comment``, ``summary`` (one sentence); with ``include_undone`` also ``undone_by`` and
``undone_at``.
"""

from __future__ import annotations

import csv
import io
import json

COLUMNS = [
    "seq",
    "time",
    "reviewer",
    "image_id",
    "file_name",
    "segment_id",
    "action",
    "category",
    "new_category",
    "pixels_added",
    "pixels_removed",
    "taken_from",
    "given_to",
    "new_segments",
    "removed_segments",
    "other_segment",
    "comment",
    "summary",
]
UNDONE_COLUMNS = ["undone_by", "undone_at"]


def change_rows(store, include_undone: bool = False) -> list[dict]:
    """Report rows with structured values (counts as dicts {segment id: pixels}, lists of ids)."""
    from .store import describe_change

    query = "SELECT * FROM changes" + ("" if include_undone else " WHERE undone_at IS NULL")
    with store._read() as db:
        records = db.execute(query + " ORDER BY seq").fetchall()
    name = store.category_name
    rows = []
    for r in records:
        detail = json.loads(r["detail"])
        image_id = r["image_id"]
        try:
            file_name = store.data.file_name(image_id)
        except Exception:  # noqa: BLE001 - an image gone from the annotation file: still listed
            file_name = ""
        other = detail.get("other", detail.get("pred_segment_id"))
        row = {
            "seq": int(r["seq"]),
            "time": r["at"],
            "reviewer": r["reviewer"],
            "image_id": image_id,
            "file_name": file_name,
            "segment_id": r["segment_id"],
            "action": r["kind"],
            "category": name(detail.get("category_id")),
            "new_category": name(detail.get("new_category_id")),
            "pixels_added": detail.get("pixels_added"),
            "pixels_removed": detail.get("pixels_removed"),
            "taken_from": {int(k): v for k, v in (detail.get("taken_from") or {}).items()},
            "given_to": {int(k): v for k, v in (detail.get("given_to") or {}).items()},
            "new_segments": list(detail.get("new_segments") or []),
            "removed_segments": list(detail.get("removed_segments") or []),
            "other_segment": other,
            "comment": detail.get("comment", ""),
            "summary": describe_change(r["kind"], r["segment_id"], detail, name),
        }
        if include_undone:
            row["undone_by"] = r["undone_by"] or ""
            row["undone_at"] = r["undone_at"] or ""
        rows.append(row)
    return rows


def _cell(value) -> str:
    """A CSV cell: "" for nothing, "12: 40; 15: 3" for pixel counts (0 = VOID), "3 9" for ids."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{'VOID' if k == 0 else k}: {v}" for k, v in sorted(value.items()))
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def report_csv(rows: list[dict], columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def report_json(rows: list[dict]) -> str:
    """JSON rows: counts as {"segment id": pixels} objects; absent numbers as null."""
    clean = []
    for row in rows:
        item = dict(row)
        for key in ("taken_from", "given_to"):
            item[key] = {str(k): v for k, v in row[key].items()}
        clean.append(item)
    return json.dumps(clean, indent=1) + "\n"


def change_table(store, include_undone: bool = False):
    """The report as a DataFrame of text cells (what the CSV holds)."""
    import pandas as pd

    rows = change_rows(store, include_undone)
    columns = COLUMNS + (UNDONE_COLUMNS if include_undone else [])
    return pd.DataFrame([[_cell(r.get(c)) for c in columns] for r in rows], columns=columns)
