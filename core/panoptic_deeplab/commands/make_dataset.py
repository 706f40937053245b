"""`pdl make-dataset synthetic --out ROOT --num-train N --num-val M`
(options: ``--height H --width W --seed S``)."""

from __future__ import annotations

import time


def configure_parser(parser) -> None:
    parser.add_argument("kind", choices=["synthetic"], help="which data set to generate")
    parser.add_argument("--out", required=True, help="output folder (COCO-panoptic layout)")
    parser.add_argument("--num-train", type=int, default=100, help="images in the train split")
    parser.add_argument("--num-val", type=int, default=20, help="images in the val split")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0, help="same seed, same data set")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: up to 4)")


def run(args) -> int:
    from ..datasets.synthetic import make_synthetic_dataset
    from ..errors import UserError

    if args.num_train < 0 or args.num_val < 0:
        raise UserError("--num-train and --num-val must be >= 0")
    if args.height < 64 or args.width < 64:
        raise UserError("--height and --width must be at least 64 pixels")
    start = time.perf_counter()
    out = make_synthetic_dataset(
        args.out,
        args.num_train,
        args.num_val,
        height=args.height,
        width=args.width,
        seed=args.seed,
        workers=args.workers,
    )
    print(
        f"wrote {args.num_train} train + {args.num_val} val images ({args.height}x{args.width}) "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )
    return 0
