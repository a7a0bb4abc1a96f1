#!/usr/bin/env python3
"""Merge caption sets (COCO or Karpathy JSON + image folder) into one Karpathy file for training.

Training takes one caption file and one image folder; this writes a Karpathy file whose image
paths are relative to its own folder, so pass that folder as `--images`. Each set keeps its
own splits; groups are prefixed with the set's name (`train.caption.data.merge_caption_sets`).

    python scripts/merge_captions.py --out data/clipart/dataset_clipart.json \\
        --source tuxpaint data/tuxpaint/dataset_tuxpaint.json data/tuxpaint \\
        --source emoji data/emoji/dataset_emoji.json data/emoji
    edge-s2s train caption --captions data/clipart/dataset_clipart.json --images data/clipart ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", nargs=3, action="append", required=True, metavar=("NAME", "CAPTIONS", "IMAGES"),
                    help="a set: its name, its caption JSON and the folder its file names are relative to")
    ap.add_argument("--out", type=Path, required=True, help="the merged Karpathy JSON to write")
    args = ap.parse_args(argv)

    from edge_s2s.train.caption.data import CaptionSource, merge_caption_sets
    from edge_s2s.train.core.errors import DataError

    try:
        counts = merge_caption_sets([CaptionSource(n, Path(c), Path(i)) for n, c, i in args.source], args.out)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, c in counts.items():
        print(f"{name:12s} " + "  ".join(f"{k} {v:5d}" for k, v in c.items()))
    print(f"wrote {args.out}: train with --captions {args.out} --images {args.out.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
