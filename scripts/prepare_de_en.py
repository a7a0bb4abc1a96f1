#!/usr/bin/env python3
"""Build German->English sentence pairs from Debian's `trans-de-en` dictionary.

The dictionary (Frank Richter, TU Chemnitz, GPL-2+) has ~19k example sentences with
their translations. Each line is `German :: English`, sub-entries separated by ` | `
in the same order on both sides. We keep the pairs that are full sentences, take the
first alternative where a side lists several (`; `), drop editorial brackets, and
write a seeded split: test (1,000 pairs, never trained on), valid, train.

    python scripts/prepare_de_en.py --out data/de-en     # apt-get installs trans-de-en if missing
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path("/usr/share/trans/de-en")
_BRACKETS = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\])")
_SENTENCE_END = re.compile(r"[.?!]$")


def ensure_installed() -> None:
    if SOURCE.exists():
        return
    if shutil.which("apt-get") is None:
        sys.exit(f"error: {SOURCE} is missing and apt-get is not available: install Debian's trans-de-en package")
    print("installing Debian package trans-de-en ...", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "trans-de-en"], check=True)


def _clean(s: str) -> str:
    s = _BRACKETS.sub("", s).strip()
    # "A.; B." lists alternatives: keep the first full sentence.
    parts = [p.strip() for p in s.split("; ")]
    for p in parts:
        if _SENTENCE_END.search(p):
            return p
    return parts[0]


def extract_pairs(path: Path) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "::" not in line:
            continue
        de, en = line.split("::", 1)
        des, ens = de.split(" | "), en.split(" | ")
        if len(des) != len(ens):
            continue
        for d, e in zip(des, ens):
            d, e = _clean(d), _clean(e)
            if not (d[:1].isupper() and _SENTENCE_END.search(d) and _SENTENCE_END.search(e)):
                continue
            if len(d.split()) < 3 or "\t" in d + e:
                continue
            if (d, e) not in seen:
                seen.add((d, e))
                pairs.append((d, e))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/de-en"))
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    ensure_installed()
    pairs = extract_pairs(SOURCE)
    # Split by German sentence so a sentence with two translations never straddles splits.
    by_source: dict[str, list[tuple[str, str]]] = {}
    for d, e in pairs:
        by_source.setdefault(d, []).append((d, e))
    keys = sorted(by_source)
    random.Random(args.seed).shuffle(keys)
    splits = {"test": [], "valid": [], "train": []}
    for k in keys:
        name = "test" if len(splits["test"]) < args.test else "valid" if len(splits["valid"]) < args.valid else "train"
        splits[name].extend(by_source[k])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        (args.out / f"{name}.tsv").write_text("".join(f"{d}\t{e}\n" for d, e in rows), encoding="utf-8")
    (args.out / "SPLIT.txt").write_text(
        f"source: {SOURCE} (Debian trans-de-en, GPL-2+)\nseed: {args.seed}\n"
        + "".join(f"{n}: {len(r)} pairs\n" for n, r in splits.items()),
        encoding="utf-8",
    )
    print(" ".join(f"{n}={len(r)}" for n, r in splits.items()), "pairs written to", args.out)


if __name__ == "__main__":
    main()
