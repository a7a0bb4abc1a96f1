#!/usr/bin/env python3
"""The captioner's development check on real photos (issue 16): does the caption name the object?

The 20 ImageNet validation photos inside the `foolbox` wheel (file names carry the class index; the
same set scripts/cnn_choice.py uses) are captioned by one or more bundles, side by side, greedy:

  names object   the caption contains the class's plain name (train/caption/imagenet_names.tsv,
                 the name the label slots carry) or WordNet's own lemma for it ("tench"), a plural
                 allowed (caption_text.names_object)
  labels hold it the bundle's label slots contain that name (what copying could reach)
  malformed      caption_text.caption_problems

Unlike the real-photo check (scripts/real_photo_check.py, which nothing may be chosen on), this set
is for development: a model choice between captioners trained on clip art may look at it. It is
small (20 photos): differences of one or two photos are noise.

    python scripts/caption_dev_check.py --bundle shipped=models/captioner --bundle new=runs/captioner/bundles/copy-names
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from build_real_photos import fetch_wheel
from real_photo_check import parse_bundles

ROOT = Path(__file__).resolve().parent.parent
FOOLBOX = ("foolbox", "3.3.4")


def foolbox_photos(cache: Path, out: Path) -> list[tuple[Path, int]] | None:
    """(photo, ImageNet class index) for the wheel's 20 photos, extracted under out."""
    wheel = fetch_wheel(*FOOLBOX, cache, offline=False)
    if wheel is None:
        return None
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if re.search(r"foolbox/data/imagenet_\d+_\d+\.jpg$", n))
        z.extractall(out, names)
    return [(out / n, int(re.search(r"_(\d+)\.jpg$", n).group(1))) for n in names]


def check(bundle: Path, photos: list[tuple[Path, int]]) -> dict:
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.caption.caption_text import caption_problems, names_object
    from edge_s2s.train.caption.label_names import NAMES_TSV

    table = [line.split("\t") for line in NAMES_TSV.read_text().splitlines()[1:]]
    model = Captioner.load(bundle)
    results = model.caption([p for p, _ in photos], search=Greedy())
    rows = []
    for (photo, cls), r in zip(photos, results):
        _, _, lemma, name = table[cls]
        want = sorted({name, lemma.replace("_", " ").lower()})
        rows.append({"photo": photo.name, "object": want, "caption": r.text, "labels": r.labels,
                     "names_object": names_object(r.text, want),
                     "labels_hold_it": any(names_object(x, want) for x in r.labels or []),
                     "problems": caption_problems(r.text)})
    return {"bundle": str(bundle), "photos": len(rows), "names_object": sum(r["names_object"] for r in rows),
            "labels_hold_it": sum(r["labels_hold_it"] for r in rows),
            "malformed": sum(bool(r["problems"]) for r in rows), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH",
                    help="a captioner bundle to check (repeat; default: shipped=models/captioner)")
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "cache")
    ap.add_argument("--json", type=Path, help="also write every caption here")
    ap.add_argument("--show", action="store_true", help="print every photo's caption")
    args = ap.parse_args(argv)
    bundles = parse_bundles(args.bundle or [f"shipped={ROOT / 'models' / 'captioner'}"])
    for name, path in bundles:
        if not (path / "manifest.json").is_file():
            print(f"error: {path} is not a bundle (no manifest.json): give NAME=FOLDER of an exported captioner",
                  file=sys.stderr)
            return 1
    results = {}
    with tempfile.TemporaryDirectory(prefix="caption-dev-") as tmp:
        photos = foolbox_photos(args.cache, Path(tmp))
        if photos is None:
            return 1
        for name, path in bundles:
            results[name] = check(path, photos)
    print(f"| bundle | names the object (of {len(photos)}) | labels hold it | malformed |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['names_object']} | {r['labels_hold_it']} | {r['malformed']} |")
    if args.show:
        for i, row in enumerate(next(iter(results.values()))["rows"]):
            print(f"{row['photo']} ({'/'.join(row['object'])}): "
                  + " | ".join(f"{r['rows'][i]['caption']}" for r in results.values()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
