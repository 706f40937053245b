"""``python -m panoptic_deeplab.jobs --exit-file F -- <pdl argv>``: what a local job's process runs
(``pdl argv``, with its exit status written to ``F``)."""

import sys

from .process import _run_recorded

if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--exit-file" or args[2] != "--":
        print(
            "usage: python -m panoptic_deeplab.jobs --exit-file FILE -- PDL_ARGS...",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(_run_recorded(args[1], args[3:]))
