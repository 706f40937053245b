"""`pdl check-dataset ROOT --split S`: list every problem of a data set; exit 1 if any, else 0."""

from __future__ import annotations


def configure_parser(parser) -> None:
    parser.add_argument(
        "root", help="data set folder (COCO-panoptic, Cityscapes or Mapillary Vistas layout)"
    )
    parser.add_argument(
        "--split", default="val", help="split name, e.g. train or val (default val)"
    )


def run(args) -> int:
    from ..datasets.checks import check_dataset

    problems = check_dataset(args.root, args.split)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {args.root} split '{args.split}'")
        return 1
    print(f"{args.root} split '{args.split}': no problems found")
    return 0
