#!/usr/bin/env python3
"""Build the emoji captioning data set (COCO + Karpathy JSON, JPEG composites).

Sources, both Debian packages that install offline: fonts-noto-color-emoji (the pictures,
SIL OFL 1.1) and unicode-data (emoji-test.txt: CLDR names and groups, Unicode License).
Run as root, this script apt-get installs whichever is missing; otherwise it prints the
command. The work is in `edge_s2s.train.caption.emoji`; see its docstring for the caption
rules and what is skipped.

    python scripts/emoji_to_coco.py --out data/emoji --seed 13 --train-variants 4 --size 256

Merge with the Tux Paint set for one training file with scripts/merge_captions.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def ensure_packages(font: Path, emoji_test: Path, packages: tuple[str, ...], hint: str) -> str | None:
    """None when the font and names file are there (installing them when root), else the error line."""
    missing = [pkg for path, pkg in zip((font, emoji_test), packages, strict=True) if not path.is_file()]
    if not missing:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{', '.join(map(str, (p for p in (font, emoji_test) if not p.is_file())))} not found: {hint}"
    print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(cmd, check=False).returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, check=False)
    if not (font.is_file() and emoji_test.is_file()):
        return f"apt-get could not install {' '.join(missing)}: {hint}"
    return None


def main(argv: list[str] | None = None) -> int:
    from edge_s2s.train.caption import emoji

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/emoji"), help="output folder")
    ap.add_argument("--font", type=Path, default=emoji.FONT, help="Noto Color Emoji (CBDT) font file")
    ap.add_argument("--emoji-test", type=Path, default=emoji.EMOJI_TEST, help="Unicode's emoji-test.txt")
    ap.add_argument("--seed", type=int, default=13, help="split, draw and composite seed (recorded in split.json)")
    ap.add_argument("--train-variants", type=int, default=4, help="composites per train emoji (val/test get 1)")
    ap.add_argument("--size", type=int, default=256, help="frame side in pixels")
    ap.add_argument("--workers", type=int, default=1, help="processes rendering composites")
    ap.add_argument("--max-face-share", type=float, default=0.05, help="smiley faces at most this share of the kept")
    args = ap.parse_args(argv)

    from edge_s2s.runtime.errors import EdgeS2SError

    if err := ensure_packages(args.font, args.emoji_test, emoji.PACKAGES, emoji.APT_INSTALL):
        print(f"error: {err}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        cfg = emoji.EmojiConfig(seed=args.seed, train_variants=args.train_variants, size=args.size,
                                workers=args.workers, max_face_share=args.max_face_share)
        report = emoji.convert(args.out, cfg, font=args.font, emoji_test=args.emoji_test)
    except EdgeS2SError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for split, c in report.counts.items():
        print(f"{split:5s}: {c['emoji']:4d} emoji in {c['groups']:4d} groups -> {c['images']:5d} images")
    print("skipped: " + ", ".join(f"{len(v)} {k}" for k, v in report.scan.skipped.items())
          + f" ({report.scan.not_fully_qualified} not fully qualified forms not read)")
    print(f"wrote {report.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
