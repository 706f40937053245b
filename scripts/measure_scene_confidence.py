"""Store a bundle's reference scene confidence (and optionally its domain) in the bundle.

    python scripts/measure_scene_confidence.py --model BUNDLE --dataset ROOT [--split val]
        [--limit N] [--domain "one line: the images the model was trained on"]

Runs the bundle on the split (the model's validation images, never its training images), computes
each image's scene confidence (mean max semantic probability, panoptic_deeplab.model_card) and
writes their distribution to BUNDLE/metrics.json as "scene_confidence"; the app warns when an input
scores below its low end. The demo bundle's MODEL_CARD.md says how its own figure was made.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from panoptic_deeplab.bundle import read_bundle_metadata
from panoptic_deeplab.model_card import measure_reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--domain", default=None)
    args = parser.parse_args()
    bundle = Path(args.model)
    read_bundle_metadata(bundle)  # a complete bundle, or a clear error
    figure = measure_reference(bundle, args.dataset, args.split, args.limit)
    metrics_path = bundle / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics["scene_confidence"] = figure
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    if args.domain:
        info_path = bundle / "bundle.json"
        info = json.loads(info_path.read_text())
        info["domain"] = args.domain
        info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(figure, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
