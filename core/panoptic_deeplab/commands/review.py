"""`pdl review score|export`: score a split for annotation review, or export the reviewed data set.

    pdl review score --model BUNDLE --dataset ROOT --split S [--out RANKING.json]
    pdl review score --predictions PRED_JSON [--pred-folder DIR] --dataset ROOT --split S
    pdl review export --dataset ROOT --split S --out DIR [--overwrite]
    (either with --repair: a damaged review.sqlite is kept aside and the review starts empty)

Both use the store the app uses for that data set and split (under the app's work directory,
``PDL_APP_WORKDIR`` / ``PDL_WORKDIR``), or ``--store DIR``. Scoring runs the model once per image
not yet scored (an interrupted run resumes), keeps what review needs, and writes the ranking:
a JSON list, most suspicious first, each entry {"image_id", "file_name", "kind" ("gt_segment" |
"missing"), "segment_id" (null for "missing"), "category_id", "model_category_id", "bbox":
[x, y, w, h], "score"}. It runs as a job (the job store's allow-list reads these options) and
reports its progress in the store and, with ``--status FILE``, in a job status file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ACTIONS = ("score", "export")
# Options that belong to one action only (the parser is flat so the job allow-list can read it).
_ONLY = {
    "model": "score",
    "predictions": "score",
    "pred_folder": "score",
    "status": "score",
    "overwrite": "export",
}


EPILOG = """\
what each action does:
  score   runs the model once per image of the split (images already scored are skipped, so an
          interrupted run resumes), keeps each prediction on disk so that review never runs the
          network again, and ranks every ground-truth segment and every predicted object that no
          annotation covers ("missing") by how much the model disagrees. The app's Review page
          shows the same store: its progress while this runs, the ranking when it is done.
  export  writes a new, complete COCO-panoptic data set with the review's decisions and edits
          applied (fresh segment ids, area and bbox recomputed, images and other splits copied),
          plus review_report.csv / review_report.json listing every change. The source data set
          is never modified.

examples:
  pdl review score --model assets/models/synthetic_demo --dataset data/synth --split val \\
      --out ranking.json
  pdl review score --predictions preds/panoptic.json --dataset data/synth --split val
  pdl review export --dataset data/synth --split val --out data/synth-reviewed
  pdl jobs submit review score --model /abs/BUNDLE --dataset /abs/ROOT --status status.json
      (in the background: a job runs in its own folder, so give absolute paths; `pdl jobs
      list` shows its progress)

The store is the app's (under $PDL_APP_WORKDIR, or $PDL_WORKDIR) unless --store names one.
"""


def configure_parser(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "action",
        choices=ACTIONS,
        help="score: rank the split's segments by the model's disagreement; "
        "export: write the corrected data set",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="ROOT",
        help="the COCO-panoptic data set under review (the folder holding annotations/)",
    )
    parser.add_argument("--split", default="val", help="the split to review (default: val)")
    parser.add_argument(
        "--model", metavar="BUNDLE", help="score with this model bundle (a folder with bundle.json)"
    )
    parser.add_argument(
        "--predictions",
        metavar="PRED_JSON",
        help="score with another tool's COCO-panoptic predictions instead of a model; a "
        "segment's 'score' field, if present, is its confidence",
    )
    parser.add_argument(
        "--pred-folder",
        metavar="DIR",
        help="the PNG folder of --predictions (default: the JSON's path without .json)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="score: also write the ranking to this JSON file, most suspicious first; "
        "export: the new data set's folder (required; new or empty)",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="keep the review (decisions, edits, predictions) in this folder instead of the "
        "app's store for this data set and split",
    )
    parser.add_argument(
        "--status",
        metavar="STATUS_JSON",
        help="score: also write progress to this file (what a job reports on; "
        "use status.json in a job)",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="if the store's review.sqlite is damaged, keep it aside (renamed with the time) and "
        "start an empty review; the data set is not touched",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="export: replace an earlier review export in --out (only once the new one is "
        "complete; any other folder is never overwritten)",
    )


def _check(args) -> None:
    from ..errors import UserError

    for dest, action in _ONLY.items():
        value = getattr(args, dest)
        if value not in (None, False) and args.action != action:
            raise UserError(f"--{dest.replace('_', '-')} is an option of 'pdl review {action}'")
    if args.action == "score" and bool(args.model) == bool(args.predictions):
        raise UserError(
            "pdl review score needs --model BUNDLE or --predictions PRED_JSON (one of them)"
        )
    if args.action == "export" and not args.out:
        raise UserError("pdl review export needs --out DIR, the folder of the corrected data set")


def _store(args):
    from ..review import ReviewStore

    if args.store:
        store = ReviewStore(args.dataset, args.split, args.store, repair=args.repair)
    else:
        store = ReviewStore.open(args.dataset, args.split, repair=args.repair)
    if store.set_aside_as is not None:
        print(
            f"{store.db_path} was damaged: kept as {store.set_aside_as}; the review starts empty "
            "(the data set is as it was)",
            file=sys.stderr,
        )
    return store


def run(args) -> int:
    _check(args)
    return _score(args) if args.action == "score" else _export(args)


class _StatusFile:
    """A job status file as ``pdl train`` writes it (state, step, total_steps, phase, updated)."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self._last = 0.0

    def write(self, state: str, step: int, total: int, message: str = "", force: bool = False):
        if self.path is None or (not force and time.monotonic() - self._last < 1.0):
            return
        from ..safe_files import write_json_atomic

        self._last = time.monotonic()
        write_json_atomic(
            self.path,
            {
                "state": state,
                "step": step,
                "total_steps": total,
                "phase": "scoring images",
                "message": message,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )


def _score(args) -> int:
    from tqdm import tqdm

    from ..errors import UserError
    from ..review import ModelSource, PredictionFilesSource
    from ..safe_files import write_json_atomic

    store = _store(args)
    if args.model:
        if not args.verbose:
            from ..cli import import_tensorflow_silently

            import_tensorflow_silently()
        source = ModelSource(args.model, store.coco["categories"])
    else:
        source = PredictionFilesSource(args.predictions, args.pred_folder)
    total = len(store.image_ids())
    already = len(store.scored_images(source))
    status = _StatusFile(args.status)
    print(f"phase: scoring {total - already} of {total} images with {source.name}", flush=True)
    status.write("running", already, total, force=True)
    bar = tqdm(total=total, initial=already, unit="img", desc="review score", file=sys.stderr)

    def progress(done: int, todo: int) -> None:
        bar.update(1)
        status.write("running", already + done, total)

    try:
        store.score(source, progress=progress)
    except (KeyboardInterrupt, SystemExit):
        status.write("stopped", len(store.scored_images(source)), total, force=True)
        raise
    except Exception as err:
        status.write("failed", len(store.scored_images(source)), total, str(err), force=True)
        raise
    finally:
        bar.close()
    status.write("finished", total, total, force=True)
    ranking = store.ranking(source)
    if args.out:
        try:
            write_json_atomic(args.out, ranking)
        except OSError as err:
            raise UserError(f"{args.out}: cannot write the ranking ({err.strerror})") from None
    _print_top(ranking, store)
    missing = sum(1 for r in ranking if r["kind"] == "missing")
    print(
        f"{total} images scored with {source.name} ({total - already} now); {len(ranking)} items, "
        f"{missing} possible missing objects; store {store.workdir}"
        + (f"; ranking written to {args.out}" if args.out else "")
    )
    return 0


def _print_top(ranking: list[dict], store, n: int = 10) -> None:
    if not ranking:
        return
    print(f"{'score':>6}  {'kind':<10}  {'image':<24}  {'segment':>7}  class -> model")
    for r in ranking[:n]:
        seg = "" if r["segment_id"] is None else str(r["segment_id"])
        print(
            f"{r['score']:6.3f}  {r['kind']:<10}  {str(r['file_name'])[:24]:<24}  {seg:>7}  "
            f"{store.category_name(r['category_id'])} -> "
            f"{store.category_name(r['model_category_id'])}"
        )


def _export(args) -> int:
    store = _store(args)
    result = store.export(args.out, overwrite=args.overwrite)
    print(
        f"exported to {result.root}: {result.images_changed} images changed, "
        f"{result.segments_added} segments added, {result.segments_relabelled} relabelled, "
        f"{result.segments_dropped} made VOID, {result.segments_removed} removed; "
        f"{result.changes} decisions and edits in {result.report_path.name} and "
        f"{result.report_json.name}"
    )
    if not result.changes:
        print(f"note: no decision or edit is recorded in {store.db_path}; the export is a copy")
    return 0
