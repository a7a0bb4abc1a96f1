#!/usr/bin/env python3
"""Build a larger German->English training corpus from Debian packages, offline once fetched.

Sources (choose with --sources; the logic and the package list with licences are in
`edge_s2s.train.translate.parallel_sources`, the cleaning in `parallel_clean`):

- trans: the train split of the Ding dictionary's example sentences (trans-de-en, GPL-2+);
- phrases: the same dictionary's multi-word phrases and collocations ("schwer zu kriegen" :: "hard to
  come by"), from entries that hold no held-out example sentence;
- libreoffice: LibreOffice's help pages in English and German, aligned by page and paragraph id
  (libreoffice-help-en-us, libreoffice-help-de, MPL-2.0);
- gettext: German .mo catalogs of games and applications (Wesnoth, Cataclysm: DDA, Freeciv,
  Minetest, GnuCash, Gramps, VLC, ...; each package's licence is listed in SOURCES.md).

trans-de-en is apt-get installed when missing (it is small and prepare_de_en.py needs it too);
every other package is only downloaded (`apt-get download`) into --cache and the files needed
are unpacked from it: nothing else is installed. Running as root is needed for those steps the
first time only.

Writes to --out: train.tsv (all sources, cleaned, shuffled with --seed), train.source.txt (the
`source:package` of each train line), valid.tsv and test.tsv (the dictionary's held-out split,
byte-identical to scripts/prepare_de_en.py's; no train pair repeats a test or valid sentence on
either side), counts.json and SOURCES.md (per source and package: version, licence, pairs read,
kept and dropped by reason).

    python scripts/build_de_en_corpus.py --out data/de-en-big
    python scripts/build_de_en_corpus.py --out data/de-en-mo --sources trans,gettext
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def ensure_trans(path: Path, package: str) -> str | None:
    """None when the dictionary is there (apt-get installing it when root), else the error line."""
    if path.is_file():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{path} not found: run as root, or apt-get install {package}"
    print(f"installing {package} with apt-get", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(cmd, check=False).returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(cmd, check=False)
    return None if path.is_file() else f"apt-get could not install {package}"


def main(argv: list[str] | None = None) -> int:
    from edge_s2s.train.translate import parallel_sources as ps
    from edge_s2s.train.translate.parallel_clean import PLACEHOLDER_MODES, CleanConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/de-en-big"), help="output folder")
    ap.add_argument("--sources", default=",".join(ps.SOURCES),
                    help=f"comma-separated, any of {','.join(ps.SOURCES)} (default: all)")
    ap.add_argument("--cache", type=Path, default=Path("data/cache/debs"),
                    help="where .deb files are downloaded and unpacked (reused on the next run)")
    ap.add_argument("--seed", type=int, default=1234, help="shuffle seed of train.tsv")
    ap.add_argument("--max-words", type=int, default=60, help="longest side, in words")
    ap.add_argument("--max-ratio", type=float, default=2.5, help="longest length ratio (characters) of the sides")
    ap.add_argument("--placeholders", choices=PLACEHOLDER_MODES, default="edge",
                    help="gettext pairs with matching placeholders: edge = remove them unless one is inside a "
                         "sentence (then drop the pair), remove = remove them everywhere, drop = drop the pair")
    args = ap.parse_args(argv)

    from edge_s2s.runtime.errors import EdgeS2SError

    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    if err := ensure_trans(ps.TRANS_SOURCE, ps.TRANS_PACKAGE):
        print(f"error: {err} (the held-out valid/test split comes from it)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    try:
        clean = CleanConfig(max_words=args.max_words, max_ratio=args.max_ratio, placeholders=args.placeholders)
        cfg = ps.BuildConfig(sources=sources, cache=args.cache, seed=args.seed, clean=clean)
        report = ps.build_corpus(args.out, cfg, progress=lambda msg: print(msg, flush=True))
    except EdgeS2SError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{'source':12s} {'read':>8s} {'kept':>8s}  dropped")
    for name, c in report.by_source.items():
        reasons = ", ".join(f"{n} {r}" for r, n in c.dropped.most_common())
        print(f"{name:12s} {c.read:8d} {c.kept:8d}  {reasons}")
    fetched = [p for p in report.packages if p.deb_bytes]
    print(f"{len(fetched)} .deb files, {sum(p.deb_bytes for p in fetched) / 1e6:.1f} MB "
          f"({sum(p.deb_bytes for p in fetched if p.downloaded) / 1e6:.1f} MB downloaded this run)")
    print(" ".join(f"{k}={v}" for k, v in report.splits.items()),
          f"pairs written to {report.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
