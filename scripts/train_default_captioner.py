"""Train, compare and ship the default captioner (the model `edge-s2s caption` uses).

    python scripts/train_default_captioner.py --write-docs   # data, 2 models, exports, tables, ship

1. Data, built from Debian packages (each converter apt-get installs what it needs as root):
   Tux Paint stamps (`tuxpaint-stamps-default`, `train.caption.tuxpaint.convert`, seed 13) and
   emoji (`fonts-noto-color-emoji` + `unicode-data`, scripts/emoji_to_coco.py, seed 13), merged
   into data/clipart/dataset_clipart.json (each set keeps its splits).
2. Three decoders on the same frozen EfficientNet-Lite0 features, data, budget and seed, all with
   soft attention, the doubly stochastic regulariser (learned tau) and clean caption text:
   "no labels", "label slots" (the classifier's top-5 ImageNet names as 5 more attended
   slots, copied into the caption by a pointer-generator gate; issue 16) and "copy names"
   (the same, but a slot's name is only ever copied, never generated: model.py copy_names).
3. Each exported (fp32; every export here with the step's no-end rule: a caption never ends on "a",
   "of", ..., which only masks the end token while decoding) and scored through the runtime on the TEST splits of Tux Paint and emoji
   (greedy, beam 3), next to the previous default (models/captioner as it was when the script
   first ran, kept in <work>/bundles/before).
4. The default is one of the two label-slot models (each at its checkpoint with the best
   VALIDATION CIDEr-D): the one whose captions name more objects on the 130 development photos
   (foolbox's 20 ImageNet photos and 110 GCompris photos, scripts/caption_dev_check.py), unless its
   validation CIDEr-D is more than 0.05 below the other's (choose_default). Its decoding prior toward
   the classifier's surer names (pointer_prior) is chosen on the same photos under the same guard
   (choose_pointer_prior). It is exported fp32, int8 linear, int8 static (the
   CNN calibrated on training images) and int8 all. Among the exports that fit in 25 MB, the
   fastest (static, then linear, fp32, all: bench/bench_caption.py) ships if its validation
   CIDEr-D is within --int8-tolerance of the best fitting export's; else the next.
   The test splits choose nothing, and the real photos (scripts/real_photo_check.py) are
   looked at only after this script has shipped.
5. The shipped bundle (test metrics in its manifest, golden cases) goes to models/captioner/;
   the tables to docs/captioner-results.md and .json (with --write-docs; else runs/results/).
"""

from __future__ import annotations

import argparse
import json
import runpy
import shutil
import sys
import tempfile
import time
from pathlib import Path

from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMMON = dict(attention="soft", doubly_stochastic=1.0, tau="learned")
SETTINGS = {"no labels": dict(COMMON, labels=0), "label slots": dict(COMMON, labels=5, label_inject=0.25),
            "copy names": dict(COMMON, labels=5, label_inject=0.25, copy_names=True)}
# the label-slot models the default is chosen from (choose_default): the one whose captions name the most
# objects on the development photos (scripts/caption_dev_check.py), unless its validation CIDEr-D is more
# than CLIPART_GUARD below the best candidate's; ties go to the higher validation CIDEr-D
CANDIDATES = ("label slots", "copy names")
CLIPART_GUARD = 0.05
# the decoding prior toward the classifier's surer names (CaptionModelConfig.pointer_prior) is chosen from these
# on the development photos, under the same guard (choose_pointer_prior)
POINTER_PRIORS = (0.0, 0.5, 1.0, 2.0, 4.0)
SEARCHES = ("greedy", "beam 3")
MAX_BYTES = 25_000_000
# speed order of the exports (bench/bench_caption.py): a static int8 CNN runs ~2.2x faster than float32,
# a dynamically quantised one (ConvInteger) 7-11x slower
FASTEST_FIRST = ("int8 (static)", "int8 (linear)", "fp32", "int8 (all)")


def search_of(name: str):
    from edge_s2s.runtime.search import Beam, Greedy

    return Greedy() if name == "greedy" else Beam(size=int(name.split()[1]))


def choose_default(val: dict[str, float], dev: dict[str, int], guard: float = CLIPART_GUARD) -> str:
    """The default among CANDIDATES: most development photos named, within `guard` of the best
    validation CIDEr-D (clip art must not get worse for it); ties: higher validation CIDEr-D."""
    best = max(val[n] for n in CANDIDATES)
    ok = [n for n in CANDIDATES if best - val[n] <= guard]
    return max(ok, key=lambda n: (dev[n], val[n]))


def choose_pointer_prior(val: dict[float, float], dev: dict[float, int], guard: float = CLIPART_GUARD) -> float:
    """The pointer prior naming the most development photos whose greedy validation CIDEr-D is within
    `guard` of the no-prior export's (0.0); ties: the smallest (the least change to what was trained)."""
    ok = [b for b in val if val[0.0] - val[b] <= guard]
    return min(ok, key=lambda b: (-dev[b], b))


def bundle_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def slug_of(name: str) -> str:
    return name.replace(" ", "-")


def build_data(args: argparse.Namespace) -> Path | None:
    """The merged Karpathy file, building each set first when it is missing (None after an error line)."""
    tux = args.tuxpaint / "dataset_tuxpaint.json"
    if not tux.is_file():
        from edge_s2s.train.caption.tuxpaint import convert

        if not args.stamps.is_dir():
            print(f"error: {args.stamps} is missing: sudo apt-get install -y tuxpaint-stamps-default", file=sys.stderr)
            return None
        print(f"converting {args.stamps} -> {args.tuxpaint}")
        convert(args.stamps, args.tuxpaint, seed=13, train_variants=4, size=256)
    emoji = args.emoji / "dataset_emoji.json"
    if not emoji.is_file():
        script = runpy.run_path(str(ROOT / "scripts" / "emoji_to_coco.py"))
        if script["main"](["--out", str(args.emoji), "--seed", "13", "--train-variants", "4", "--size", "256"]):
            return None
    merged = args.clipart / "dataset_clipart.json"
    if not merged.is_file():
        from edge_s2s.train.caption.data import CaptionSource, merge_caption_sets

        merge_caption_sets([CaptionSource("tuxpaint", tux, args.tuxpaint), CaptionSource("emoji", emoji, args.emoji)],
                           merged)
    return merged


def val_cider(run: Path) -> float:
    hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return max(h.get("val_CIDEr-D", float("-inf")) for h in hist)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tuxpaint", type=Path, default=ROOT / "data" / "tuxpaint")
    ap.add_argument("--stamps", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    ap.add_argument("--emoji", type=Path, default=ROOT / "data" / "emoji")
    ap.add_argument("--clipart", type=Path, default=ROOT / "data" / "clipart")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "captioner")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "captioner")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=sorted(SETTINGS), help="train and score one model (nothing shipped)")
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "cache", help="downloaded wheels (the development photos)")
    ap.add_argument("--photo-cache", type=Path, default=ROOT / "data" / "real-photos-cache",
                    help="downloaded packages of the GCompris development photos (scripts/build_real_photos.py)")
    ap.add_argument("--int8-tolerance", type=float, default=0.02, help="largest validation CIDEr-D loss against the best export that fits, accepted for a faster one")
    ap.add_argument("--no-ship", action="store_true", help="measure only; leave models/captioner alone")
    add_write_docs(ap)
    args = ap.parse_args(argv)

    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig
    from edge_s2s.train.caption.evaluate import evaluate_captioner, items_of_split
    from edge_s2s.train.caption.loop import train_captioner

    merged = build_data(args)
    if merged is None:
        return 1
    tests = {"Tux Paint": items_of_split(args.tuxpaint / "dataset_tuxpaint.json", args.tuxpaint, "test"),
             "emoji": items_of_split(args.emoji / "dataset_emoji.json", args.emoji, "test")}
    val_items = items_of_split(merged, args.clipart, "val")
    print("test splits: " + ", ".join(f"{k} {len(v)} images" for k, v in tests.items())
          + f"; validation: {len(val_items)} images")

    before = args.work / "bundles" / "before"
    if not before.is_dir() and (args.out / "manifest.json").is_file():
        shutil.copytree(args.out, before)  # the previous default, scored side by side
    rows: list[dict] = []

    def score(name: str, precision: str, bundle: Path) -> None:
        model = Captioner.load(bundle)
        for test, items in tests.items():
            for s in SEARCHES:
                scores, _ = evaluate_captioner(model, items, search_of(s))
                rows.append({"model": name, "precision": precision, "test": test, "search": s, **scores})
                print(f"  [{name}, {precision}] {test:9} {s:7} "
                      + "  ".join(f"{k} {100 * v:.1f}" for k, v in scores.items() if k in ("BLEU-4", "CIDEr-D")))

    if before.is_dir():
        m = json.loads((before / "manifest.json").read_text())
        parts = m["model"].get("int8", "none")
        score("previous default", "fp32" if parts == "none" else f"int8 ({parts})", before)

    runs: dict[str, Path] = {}
    for name, model_kw in SETTINGS.items():
        if args.only and name != args.only:
            continue
        run = args.work / slug_of(name)
        cfg = CaptionTrainConfig(captions=str(merged), images=str(args.clipart), out_dir=str(run), text="clean",
                                 model=CaptionModelConfig(**model_kw), epochs=args.epochs, seed=args.seed)
        t0 = time.time()
        train_captioner(cfg, resume=(run / "last.pt").is_file(), progress=False)
        print(f"[{name}] trained in {time.time() - t0:.0f} s -> {run} (validation CIDEr-D {val_cider(run):.3f})")
        runs[name] = run
        bundle = args.work / "bundles" / slug_of(name)
        export_caption_bundle(run, bundle, no_end_words=True)
        score(name, "fp32", bundle)
    if args.only:
        return 0

    from caption_dev_check import check as dev_check
    from caption_dev_check import dev_photos

    with tempfile.TemporaryDirectory(prefix="caption-dev-") as tmp:
        photos = dev_photos(args.cache, args.photo_cache, Path(tmp))
        if photos is None:
            return 1
        dev = {n: dev_check(args.work / "bundles" / slug_of(n), photos)["names_object"] for n in CANDIDATES}
        val = {n: val_cider(runs[n]) for n in CANDIDATES}
        default = choose_default(val, dev)
        print(f"development photos named (of {len(photos)}): " + ", ".join(f"{n} {dev[n]}" for n in CANDIDATES)
              + f"; default: {default}")
        slug = slug_of(default)
        prior_dev, prior_val = {}, {}
        for beta in POINTER_PRIORS:
            path = args.work / "bundles" / f"{slug}-prior-{beta:g}"
            export_caption_bundle(runs[default], path, no_end_words=True, pointer_prior=beta)
            prior_dev[beta] = dev_check(path, photos)["names_object"]
            scores, _ = evaluate_captioner(Captioner.load(path), val_items, search_of("greedy"), meteor=False)
            prior_val[beta] = scores["CIDEr-D"]
            print(f"  pointer prior {beta:g}: development photos named {prior_dev[beta]}, "
                  f"validation CIDEr-D (greedy) {prior_val[beta]:.3f}")
    beta = choose_pointer_prior(prior_val, prior_dev)
    print(f"pointer prior: {beta:g}")

    variants = {"fp32": args.work / "bundles" / f"{slug}-prior-{beta:g}"}
    for parts in ("linear", "static", "all"):
        variants[f"int8 ({parts})"] = args.work / "bundles" / f"{slug}-int8-{parts}"
        export_caption_bundle(runs[default], variants[f"int8 ({parts})"], int8=parts, no_end_words=True,
                              pointer_prior=beta)
    val_scores = {}
    for prec, path in variants.items():
        model = Captioner.load(path)
        val_scores[prec], _ = evaluate_captioner(model, val_items, search_of("greedy"), meteor=False)
        if prec != "fp32":
            score(default, prec, path)
        print(f"  {prec:12} {bundle_bytes(path) / 1e6:6.1f} MB  val CIDEr-D {val_scores[prec]['CIDEr-D']:.3f}")

    fits = {p: bundle_bytes(v) <= MAX_BYTES for p, v in variants.items()}
    if not any(fits.values()):
        print(f"error: no variant fits in {MAX_BYTES // 1_000_000} MB; nothing shipped", file=sys.stderr)
        return 1
    best = max(val_scores[p]["CIDEr-D"] for p in variants if fits[p])
    chosen = next(p for p in FASTEST_FIRST if fits[p] and best - val_scores[p]["CIDEr-D"] <= args.int8_tolerance)
    print(f"chose {chosen}: the fastest export that fits in {MAX_BYTES // 1_000_000} MB with validation CIDEr-D "
          f"within {args.int8_tolerance} of the best that fits ({best:.3f})")
    print(f"shipping {default}, {chosen} ({bundle_bytes(variants[chosen]) / 1e6:.1f} MB)")

    results = {"data": str(merged.relative_to(ROOT) if merged.is_relative_to(ROOT) else merged),
               "test_images": {k: len(v) for k, v in tests.items()}, "val_images": len(val_items),
               "epochs": args.epochs, "seed": args.seed, "default": {"model": default, "precision": chosen}, "int8_tolerance": args.int8_tolerance,
               "val_CIDEr-D": {n: val_cider(r) for n, r in runs.items()}, "dev_named": dev,
               "dev_photos": len(photos), "pointer_prior": {"chosen": beta, "dev_named": prior_dev,
                                                            "val_CIDEr-D": prior_val},
               "val_greedy": val_scores, "rows": rows,
               "sizes_mb": {p: round(bundle_bytes(v) / 1e6, 2) for p, v in variants.items()}}
    (results_dir(args) / "captioner-results.json").write_text(json.dumps(results, indent=1) + "\n")
    (results_dir(args) / "captioner-results.md").write_text(results_markdown(results))
    if not args.no_ship:
        test = {f"{r['test']} {r['search']}": {k: v for k, v in r.items() if k[0] in "BMC"} for r in rows
                if r["model"] == default and r["precision"] == chosen}
        parts = {"fp32": "none", "int8 (linear)": "linear", "int8 (static)": "static", "int8 (all)": "all"}[chosen]
        tmp = args.work / "bundles" / "shipped"
        split = ", ".join(f"{k} test ({len(v)} images)" for k, v in tests.items())
        export_caption_bundle(runs[default], tmp, int8=parts, golden=2, metrics={"test": test, "test_split": split},
                              no_end_words=True, pointer_prior=beta)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(tmp, args.out)
        print(f"shipped -> {args.out} ({bundle_bytes(args.out) / 1e6:.1f} MB)")
    return 0


def results_markdown(r: dict) -> str:
    have_meteor = any("METEOR" in x for x in r["rows"])
    cols = ["BLEU-1", "BLEU-4"] + (["METEOR"] if have_meteor else []) + ["CIDEr-D"]
    out = ["# Captioner results (Tux Paint stamps and emoji, test splits)", "",
           "`python scripts/train_default_captioner.py --write-docs`. Held-out test images (never used for "
           "training or model choice): " + ", ".join(f"{k} {v}" for k, v in r["test_images"].items())
           + f"; trained on {r['data']} ({r['epochs']} epochs, seed {r['seed']}, frozen EfficientNet-Lite0 "
           "features, clean caption text). Scores from pycocoevalcap (PTB tokenizer on both sides) through the "
           "ONNX Runtime bundle, x100. 'previous default' is the model shipped before (Tux Paint only, raw "
           "text, no labels).", "",
           "| model | precision | test | search | " + " | ".join(cols) + " |",
           "|---|---|---|---|" + "---:|" * len(cols)]
    for x in r["rows"]:
        vals = " | ".join(f"{100 * x[c]:.1f}" if c in x else "–" for c in cols)
        out.append(f"| {x['model']} | {x['precision']} | {x['test']} | {x['search']} | {vals} |")
    out += ["", f"Default model: **{r['default']['model']}**, shipped as **{r['default']['precision']}**. "
            "Bundle sizes (MB): " + ", ".join(f"{k} {v}" for k, v in r["sizes_mb"].items()) + ". The rule: among the "
            "exports that fit in 25 MB, the fastest (int8 static, int8 linear, fp32, int8 all) whose greedy validation "
            f"CIDEr-D is within {r.get('int8_tolerance', 0.02)} of the best that fits.", "",
            "Best validation CIDEr-D x100 during training: "
            + ", ".join(f"{k} {100 * v:.1f}" for k, v in r["val_CIDEr-D"].items())
            + "; greedy validation CIDEr-D of the default's exports: "
            + ", ".join(f"{k} {100 * v['CIDEr-D']:.1f}" for k, v in r["val_greedy"].items()) + ".", "",
            f"Development photos (of {r.get('dev_photos', 20)}: foolbox's 20 ImageNet photos"
            + (" and docs/real-photos-dev.tsv's GCompris photos" if r.get("dev_photos", 20) > 20 else "")
            + ", scripts/caption_dev_check.py) whose caption names the object: "
            + ", ".join(f"{k} {v}" for k, v in r.get("dev_named", {}).items())
            + f". The default is the label-slot model naming more of them, unless its best validation CIDEr-D is "
            f"more than {CLIPART_GUARD} below the other's.", ""]
    if "pointer_prior" in r:
        pp = r["pointer_prior"]
        out += ["Pointer prior (beta log p of each slot's classifier probability added to the pointer's scores; "
                "decoding only): " + ", ".join(f"beta {float(b):g}: {pp['dev_named'][b]} named, validation CIDEr-D "
                                               f"{100 * pp['val_CIDEr-D'][b]:.1f}" for b in pp["dev_named"])
                + f". Chosen: **{float(pp['chosen']):g}** (most named within {CLIPART_GUARD} validation CIDEr-D of "
                "beta 0; ties to the smallest). In the table the candidates' fp32 rows are exports without the prior "
                "(they choose the model); the default's int8 rows carry the chosen prior.", ""]
    out += ["How the default names real photographs: docs/real-photo-check.md.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
