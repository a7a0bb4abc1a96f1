#!/usr/bin/env python3
"""The captioner's development check on real photos (issue 16): does the caption name the object?

Two development sets, captioned by one or more bundles side by side, greedy:

  foolbox    the 20 ImageNet validation photos inside the `foolbox` wheel (file names carry the class
             index; the set scripts/cnn_choice.py uses); the object is the class's plain name
             (train/caption/imagenet_names.tsv, the name the label slots carry) or WordNet's lemma
  gcompris   110 photos from Debian's gcompris-qt-data (docs/real-photos-dev.tsv, built by
             scripts/build_real_photos.py: animals, fish, tools, household things, buildings); the object
             is the list's `main` column. None of them, and none of their landmarks, is in the
             real-photo check, and none is a near copy of one of its photos.

  names object   the caption contains the object (a plural allowed; caption_text.names_object)
  labels hold it the bundle's label slots contain it (what copying could reach)
  malformed      caption_text.caption_problems

Unlike the real-photo check (scripts/real_photo_check.py, which nothing may be chosen on), these sets
are for development: a model or decoding choice may look at them; training never sees them.

    python scripts/caption_dev_check.py --bundle shipped=models/captioner --bundle new=runs/captioner/bundles/copy-names
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from build_real_photos import DEV_LIST, build, fetch_wheel, read_rows
from real_photo_check import parse_bundles

ROOT = Path(__file__).resolve().parent.parent
FOOLBOX = ("foolbox", "3.3.4")
SETS = ("foolbox", "gcompris")


@dataclass(frozen=True)
class DevPhoto:
    path: Path
    names: tuple[str, ...]  # any of them names the object
    set: str


def foolbox_photos(cache: Path, out: Path) -> list[DevPhoto] | None:
    """The wheel's 20 photos, extracted under out, each with its class's names."""
    from edge_s2s.train.caption.label_names import NAMES_TSV

    wheel = fetch_wheel(*FOOLBOX, cache, offline=False)
    if wheel is None:
        return None
    table = [line.split("\t") for line in NAMES_TSV.read_text().splitlines()[1:]]
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if re.search(r"foolbox/data/imagenet_\d+_\d+\.jpg$", n))
        z.extractall(out, names)
    photos = []
    for n in names:
        _, _, lemma, name = table[int(re.search(r"_(\d+)\.jpg$", n).group(1))]
        photos.append(DevPhoto(out / n, tuple(sorted({name, lemma.replace("_", " ").lower()})), "foolbox"))
    return photos


def gcompris_photos(cache: Path, out: Path) -> list[DevPhoto] | None:
    """The photos of docs/real-photos-dev.tsv, fetched (checked by sha256) and written under out."""
    got, problems = build(read_rows(DEV_LIST), cache, offline=False)
    for p in problems:
        print(f"left out: {p}", file=sys.stderr)
    if problems:
        print("error: the development photos could not all be had (see above)", file=sys.stderr)
        return None
    out.mkdir(parents=True, exist_ok=True)
    photos = []
    for row, blob in got:
        path = out / f"{row.id}{row.suffix}"
        path.write_bytes(blob)
        photos.append(DevPhoto(path, tuple(row.main.split("|")), "gcompris"))
    return photos


def dev_photos(cache: Path, photo_cache: Path, out: Path) -> list[DevPhoto] | None:
    """Both development sets (foolbox first), or None if one could not be had."""
    foolbox = foolbox_photos(cache, out / "foolbox")
    gcompris = gcompris_photos(photo_cache, out / "gcompris")
    return None if foolbox is None or gcompris is None else foolbox + gcompris


def check(bundle: Path, photos: list[DevPhoto]) -> dict:
    """Caption every photo greedily; counts per set and every row."""
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.caption.caption_text import caption_problems, names_object

    model = Captioner.load(bundle)
    results = model.caption([p.path for p in photos], search=Greedy())
    rows = []
    for photo, r in zip(photos, results):
        rows.append({"photo": photo.path.name, "set": photo.set, "object": list(photo.names), "caption": r.text,
                     "labels": r.labels, "names_object": names_object(r.text, list(photo.names)),
                     "labels_hold_it": any(names_object(x, list(photo.names)) for x in r.labels or []),
                     "problems": caption_problems(r.text)})
    out = {"bundle": str(bundle), "rows": rows}
    for name in SETS:
        mine = [r for r in rows if r["set"] == name]
        out[name] = {"photos": len(mine), "names_object": sum(r["names_object"] for r in mine),
                     "labels_hold_it": sum(r["labels_hold_it"] for r in mine),
                     "malformed": sum(bool(r["problems"]) for r in mine)}
    out["names_object"] = sum(out[n]["names_object"] for n in SETS)
    return out


def table(results: dict[str, dict]) -> str:
    """One row per bundle: named / labels hold it / malformed, per set and in all."""
    first = next(iter(results.values()))
    n = {k: first[k]["photos"] for k in SETS}
    head = (f"| bundle | names the object: foolbox (of {n['foolbox']}) | gcompris (of {n['gcompris']}) | both "
            f"(of {sum(n.values())}) | labels hold it (both) | malformed (both) |")
    lines = [head, "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['foolbox']['names_object']} | {r['gcompris']['names_object']} | "
                     f"{r['names_object']} | {sum(r[k]['labels_hold_it'] for k in SETS)} | "
                     f"{sum(r[k]['malformed'] for k in SETS)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH",
                    help="a captioner bundle to check (repeat; default: shipped=models/captioner)")
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "cache", help="where the foolbox wheel is kept")
    ap.add_argument("--photo-cache", type=Path, default=ROOT / "data" / "real-photos-cache",
                    help="where build_real_photos.py keeps its packages")
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
        photos = dev_photos(args.cache, args.photo_cache, Path(tmp))
        if photos is None:
            return 1
        for name, path in bundles:
            results[name] = check(path, photos)
    print(table(results))
    if args.show:
        for i, row in enumerate(next(iter(results.values()))["rows"]):
            print(f"{row['photo']} ({'/'.join(row['object'])}): "
                  + " | ".join(f"{r['rows'][i]['caption']}" for r in results.values()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
