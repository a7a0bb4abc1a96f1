#!/usr/bin/env python3
"""Build the Tux Paint stamp captioning data set (COCO + Karpathy JSON, JPEG composites).

Source: Debian's tuxpaint-stamps-default (GPL-2+). This script installs nothing; it needs

    sudo apt-get install -y tuxpaint-stamps-default   # the stamps
    pip install cairosvg                                # rasterises the SVG stamps; uses
    sudo apt-get install -y libcairo2                   #   Debian's libcairo2 (often present)

cairosvg was chosen over rsvg-convert because it is a pip package (no extra binary) and
renders all 248 SVG stamps here. The work is in `edge_s2s.train.caption.tuxpaint`; see its docstring.

    python scripts/tuxpaint_to_coco.py --stamps /usr/share/tuxpaint/stamps --out data/tuxpaint \\
        --seed 13 --train-variants 4 --size 256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stamps", type=Path, default=Path("/usr/share/tuxpaint/stamps"), help="the stamps folder")
    ap.add_argument("--out", type=Path, default=Path("data/tuxpaint"), help="output folder")
    ap.add_argument("--seed", type=int, default=13, help="split and composite seed (recorded in split.json)")
    ap.add_argument("--train-variants", type=int, default=4, help="composites per train stamp (val/test get 1)")
    ap.add_argument("--size", type=int, default=256, help="frame side in pixels")
    ap.add_argument("--workers", type=int, default=2, help="processes rendering composites")
    args = ap.parse_args(argv)

    from edge_s2s.runtime.errors import EdgeS2SError
    from edge_s2s.train.caption import tuxpaint

    if not args.stamps.is_dir():
        print(f"error: {args.stamps} not found: {tuxpaint.APT_INSTALL}", file=sys.stderr)
        return 1
    if any(args.stamps.rglob("*.svg")) and (err := tuxpaint.svg_rasteriser_error()):
        print(f"error: {err}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        report = tuxpaint.convert(args.stamps, args.out, seed=args.seed, train_variants=args.train_variants,
                                  size=args.size, workers=args.workers)
    except EdgeS2SError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    scan = report.scan
    for split, c in report.counts.items():
        print(f"{split:5s}: {c['stamps']:4d} stamps in {c['groups']:4d} groups -> {c['images']:5d} images")
    print(f"skipped: {len(scan.no_text)} without English text, {len(scan.mirrors)} mirror variants, "
          f"{len(scan.svg_with_png)} SVGs with a PNG twin")
    print(f"wrote {report.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
