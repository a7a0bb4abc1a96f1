#!/usr/bin/env python3
"""The real-photo check of issue 16: caption the 113 held-out photographs with one or more bundles, side by side.

For each bundle, through the runtime (what `edge-s2s caption` prints), on the photos of
docs/real-photos.tsv (built into data/real-photos/ by scripts/build_real_photos.py):

  names main object   the share of captions that contain the photo's main object (the `main` column: its
                      synonyms, a plural allowed; train/caption/caption_text.names_object)
  malformed           captions with a problem a user sees (empty, punctuation or <unk>, ending on "a"/"of"...,
                      a word twice in a row; caption_text.caption_problems): must be 0
  BLEU-4, CIDEr-D     against the one reference caption per photo (pycocoevalcap)

plus every photo's caption and labels in the JSON. NOTHING may be trained, tuned or selected on these
photos (docs/real-photos.md): run this once a model has been chosen on validation data, and report it.

    python scripts/real_photo_check.py                                     # the shipped default captioner
    python scripts/real_photo_check.py --bundle before=runs/old --bundle after=models/captioner --write-docs
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from results_out import add_write_docs, results_dir

ROOT = Path(__file__).resolve().parent.parent
PAGE = "real-photo-check"


def parse_bundles(values: list[str]) -> list[tuple[str, Path]]:
    out = []
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"error: --bundle takes NAME=PATH, got {v!r}")
        out.append((name, Path(path)))
    return out


def check(bundle: Path, photos: list[dict], images: Path, search) -> dict:
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.caption.caption_text import caption_problems, names_object
    from edge_s2s.train.caption.metrics import caption_scores

    model = Captioner.load(bundle)
    results = model.caption([images / p["file_name"] for p in photos], search=search)
    rows = []
    for p, r in zip(photos, results):
        main = p["main"] if isinstance(p["main"], list) else p["main"].split("|")
        rows.append({"id": p["slug"], "main": main, "reference": p["caption"], "caption": r.text,
                     "labels": r.labels, "names_main": names_object(r.text, main),
                     "problems": caption_problems(r.text)})
    scores = caption_scores({r["id"]: [r["reference"]] for r in rows}, {r["id"]: r["caption"] for r in rows},
                            meteor=False)
    named = sum(r["names_main"] for r in rows)
    malformed = sum(bool(r["problems"]) for r in rows)
    label_hit = sum(any(names_object(x, r["main"]) for x in r["labels"] or []) for r in rows)
    return {"bundle": str(bundle), "photos": len(rows), "names_main": named, "malformed": malformed,
            "labels_hold_main": label_hit if any(r["labels"] for r in rows) else None,
            "BLEU-4": scores["BLEU-4"], "CIDEr-D": scores["CIDEr-D"], "rows": rows}


def table(results: dict[str, dict]) -> str:
    lines = ["| bundle | names the main object | malformed | main object among its labels | BLEU-4 | CIDEr-D |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        n = r["photos"]
        lab = "-" if r["labels_hold_main"] is None else f"{r['labels_hold_main']}/{n}"
        lines.append(f"| {name} | {r['names_main']}/{n} ({100 * r['names_main'] / n:.0f}%) | {r['malformed']}/{n} | "
                     f"{lab} | {100 * r['BLEU-4']:.1f} | {100 * r['CIDEr-D']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", default=[], help="NAME=PATH (repeat; default: the shipped model)")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "real-photos", help="built by build_real_photos.py")
    ap.add_argument("--beam", type=int, default=1, help="1 = greedy (what `edge-s2s caption` does by default)")
    add_write_docs(ap)
    args = ap.parse_args(argv)

    from edge_s2s.runtime.search import Beam, Greedy

    captions = args.data / "captions.json"
    if not captions.is_file():
        print(f"error: {captions} not found: run python scripts/build_real_photos.py first", file=sys.stderr)
        return 1
    coco = json.loads(captions.read_text(encoding="utf-8"))
    refs = {a["image_id"]: a["caption"] for a in coco["annotations"]}
    photos = [dict(im, caption=refs[im["id"]]) for im in coco["images"]]
    bundles = parse_bundles(args.bundle) or [("shipped", ROOT / "models" / "captioner")]
    search = Greedy() if args.beam <= 1 else Beam(size=args.beam)
    results = {name: check(path, photos, args.data / "images", search) for name, path in bundles}
    text = table(results)
    print(text)
    out = results_dir(args)
    (out / f"{PAGE}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / f"{PAGE}.md").write_text(
        f"# Real-photo check\n\n`python scripts/real_photo_check.py {shlex.join(argv or sys.argv[1:])}` "
        f"({'greedy' if args.beam <= 1 else f'beam {args.beam}'}; {len(photos)} photos, docs/real-photos.md)\n\n"
        + text + "\n\nEvery caption: `" + f"{PAGE}.json`.\n", encoding="utf-8")
    print(f"wrote {out / PAGE}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
