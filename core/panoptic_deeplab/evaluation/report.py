"""Tables of evaluation results (pandas), for the CLI and the app. No TensorFlow."""
from __future__ import annotations


def pq_class_table(result: dict):
    """One row per GT category: name, thing/stuff, PQ/SQ/RQ (in %), TP/FP/FN; unevaluated rows kept
    with empty scores so absent classes are visible."""
    import pandas as pd

    rows = []
    for cid, r in result["per_class"].items():
        rows.append({"id": cid, "name": r.get("name", str(cid)), "kind": "thing" if r.get("isthing") else "stuff",
                     "PQ": _pct(r["pq"]), "SQ": _pct(r["sq"]), "RQ": _pct(r["rq"]),
                     "TP": r["tp"], "FP": r["fp"], "FN": r["fn"]})
    return pd.DataFrame(rows).set_index("id")


def pq_summary_table(result: dict):
    import pandas as pd

    return pd.DataFrame([{"split": k, "PQ": _pct(result[k]["pq"]), "SQ": _pct(result[k]["sq"]),
                          "RQ": _pct(result[k]["rq"]), "n": result[k]["n"]} for k in ("All", "Things", "Stuff")]
                        ).set_index("split")


def miou_table(result: dict, class_names):
    import pandas as pd

    return pd.DataFrame({"name": list(class_names), "IoU": [_pct(v) for v in result["per_class_iou"]]})


def _pct(x):
    return None if x is None else round(100.0 * x, 2)
