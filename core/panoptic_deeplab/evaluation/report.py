"""Tables of evaluation results (pandas), for the CLI and the app. No TensorFlow."""

from __future__ import annotations

import math

from .results import (
    GROUPS,
    ErrorBreakdown,
    ErrorRow,
    EvaluationResult,
    OracleResult,
    PanopticScores,
    SemanticScores,
)


def pq_class_table(panoptic: PanopticScores):
    """One row per GT category: name, thing/stuff, PQ/SQ/RQ (in %), TP/FP/FN; unevaluated rows kept
    with empty scores so absent classes are visible."""
    import pandas as pd

    rows = [
        {
            "id": cid,
            "name": r.name,
            "kind": "thing" if r.isthing else "stuff",
            "PQ": percent(r.pq),
            "SQ": percent(r.sq),
            "RQ": percent(r.rq),
            "TP": r.tp,
            "FP": r.fp,
            "FN": r.fn,
        }
        for cid, r in panoptic.per_class.items()
    ]
    return pd.DataFrame(rows).set_index("id")


def pq_summary_table(panoptic: PanopticScores):
    import pandas as pd

    rows = []
    for name in GROUPS:
        r = panoptic.group(name)
        rows.append(
            {"split": name, "PQ": percent(r.pq), "SQ": percent(r.sq), "RQ": percent(r.rq), "n": r.n}
        )
    return pd.DataFrame(rows).set_index("split")


def miou_table(semantic: SemanticScores, class_names):
    import pandas as pd

    return pd.DataFrame(
        {"name": list(class_names), "IoU": [percent(v) for v in semantic.per_class_iou]}
    )


def percent(x):
    """A 0..1 metric as a percentage with two decimals; ``None`` for a missing or NaN one."""
    if x is None:
        return None
    value = float(x)  # NumPy scalars too
    return None if math.isnan(value) else round(100.0 * value, 2)


def error_table(errors: ErrorBreakdown):
    """PQ and the PQ points lost per error type (error_breakdown), one row per evaluated class and
    for All / Things / Stuff; each row sums to 100."""
    import pandas as pd

    from .error_breakdown import ERROR_TYPES, REMAINDER

    rows = []
    for key in GROUPS:
        if errors.group(key):
            rows.append({"class": key, **_points_row(errors.group(key))})
    for _, r in sorted(errors.per_class.items()):
        rows.append({"class": r.name, **_points_row(r)})
    columns = ["class", "PQ", *ERROR_TYPES, REMAINDER]
    return pd.DataFrame(rows, columns=columns).set_index("class")


def _points_row(r: ErrorRow) -> dict:
    return {"PQ": round(r.pq, 2), **{k: round(v, 2) for k, v in r.points.items()}}


def single_head_oracles(oracles: dict[str, OracleResult]) -> list[str]:
    """Oracles that replace exactly one head: candidates for "this head costs the class most"."""
    return [name for name, o in oracles.items() if len(o.heads) == 1]


def oracle_summary_table(result: EvaluationResult):
    """PQ / SQ / RQ of the model and of each oracle for All / Things / Stuff (in %)."""
    import pandas as pd

    rows = []
    sources = [("model", result.panoptic), *((n, o.panoptic) for n, o in result.oracles.items())]
    for name, panoptic in sources:
        for split in GROUPS:
            r = panoptic.group(split)
            rows.append(
                {
                    "oracle": name,
                    "split": split,
                    "PQ": percent(r.pq),
                    "SQ": percent(r.sq),
                    "RQ": percent(r.rq),
                }
            )
    return pd.DataFrame(rows).set_index(["oracle", "split"])


def oracle_class_table(result: EvaluationResult):
    """Per class: the model's PQ, the PQ with each oracle, and the largest gain of a single-head
    oracle ("center +23.1": the centers cost the class 23.1 PQ points)."""
    import pandas as pd

    oracles = result.oracles
    per_oracle = {name: o.panoptic.per_class for name, o in oracles.items()}
    singles = single_head_oracles(oracles) or [n for n in oracles if oracles[n].heads]
    rows = []
    for cid, r in sorted(result.panoptic.per_class.items()):
        if not r.evaluated and not any(
            per_oracle[n].get(cid) and per_oracle[n][cid].evaluated for n in oracles
        ):
            continue
        row = {
            "id": cid,
            "class": r.name,
            "kind": "thing" if r.isthing else "stuff",
            "model": percent(r.pq),
        }
        for name in oracles:
            other = per_oracle[name].get(cid)
            row[name] = percent(other.pq if other else None)
        gains = {n: row[n] - (row["model"] or 0.0) for n in singles if row.get(n) is not None}
        best = max(gains, key=gains.get) if gains else None
        row["largest gain"] = (
            f"{best} +{gains[best]:.1f}" if best is not None and gains[best] > 0 else ""
        )
        row["gain"] = round(gains[best], 2) if best is not None else None
        rows.append(row)
    return pd.DataFrame(rows).set_index("id")
