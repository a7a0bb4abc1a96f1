#!/usr/bin/env python3
"""Build German->English sentence pairs from Debian's `trans-de-en` dictionary.

The dictionary (Frank Richter, TU Chemnitz, GPL-2+) has ~19k example sentences with
their translations. Each line is `German :: English`, sub-entries separated by ` | `
in the same order on both sides. We keep the pairs that are full sentences, take the
first alternative where a side lists several (`; `), drop editorial brackets, and
write a seeded split: test (1,000 pairs, never trained on), valid, train. The reading and the
split live in `edge_s2s.train.translate.parallel_sources` (scripts/build_de_en_corpus.py uses
the same split and adds more training text).

    python scripts/prepare_de_en.py --out data/de-en     # apt-get installs trans-de-en if missing
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from edge_s2s.train.translate.parallel_sources import TRANS_SOURCE, extract_pairs, split_held_out, write_tsv

SOURCE = TRANS_SOURCE


def ensure_installed() -> None:
    if SOURCE.exists():
        return
    if shutil.which("apt-get") is None:
        sys.exit(f"error: {SOURCE} is missing and apt-get is not available: install Debian's trans-de-en package")
    print("installing Debian package trans-de-en ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "trans-de-en"], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/de-en"))
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    ensure_installed()
    splits = split_held_out(extract_pairs(SOURCE), test=args.test, valid=args.valid, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_tsv(args.out / f"{name}.tsv", rows)
    (args.out / "SPLIT.txt").write_text(
        f"source: {SOURCE} (Debian trans-de-en, GPL-2+)\nseed: {args.seed}\n"
        + "".join(f"{n}: {len(r)} pairs\n" for n, r in splits.items()),
        encoding="utf-8",
    )
    print(" ".join(f"{n}={len(r)}" for n, r in splits.items()), "pairs written to", args.out)


if __name__ == "__main__":
    main()
