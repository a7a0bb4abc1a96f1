"""Why does soft attention not beat the no-attention baseline on the Tux Paint captions?

    python scripts/caption_attention_study.py          # after scripts/train_default_captioner.py

Three measurements, written to docs/captioner-attention-study.md (+ .json):

1. Seeds. The no-attention and soft-attention captioners trained again with seeds 2 and 3
   (same data, budget, config as the default recipe), each scored on the test split
   through the runtime (greedy): mean and spread of CIDEr-D over 3 seeds.
2. Paired bootstrap over the test images for seed 1: the CIDEr-D difference (attention -
   baseline) with a 95% interval, from per-image CIDEr-D.
3. A positive control where the answer needs the regions: generated two-object images
   ("a red circle and a blue square ."; the left object is named first; colours and
   shapes drawn independently, so the caption binds each colour to its shape and
   orders the objects by position). Same two decoders, same frozen CNN; scored by
   exact caption match, order-free colour-shape binding accuracy and CIDEr-D.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"red": (215, 35, 35), "green": (35, 160, 50), "blue": (40, 70, 215), "yellow": (235, 210, 30),
           "purple": (140, 50, 170), "orange": (240, 130, 20)}
SHAPES = ("circle", "square", "triangle", "cross")


def draw_object(d: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=colour)
    else:
        w = (x1 - x0) // 3
        d.rectangle((x0 + w, y0, x1 - w, y1), fill=colour)
        d.rectangle((x0, y0 + w, x1, y1 - w), fill=colour)


def two_objects(rng: random.Random, size: int = 224) -> tuple[Image.Image, str, set[tuple[str, str]]]:
    bg = np.clip(np.random.default_rng(rng.randrange(1 << 30)).normal(rng.randint(90, 170), 18, (size, size, 3)),
                 0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    d = ImageDraw.Draw(im)
    objs = []
    for half in (0, 1):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        s = rng.randint(60, 95)
        x = rng.randint(half * size // 2 + 4, (half + 1) * size // 2 - s - 4)
        y = rng.randint(8, size - s - 8)
        draw_object(d, shape, (x, y, x + s, y + s), COLOURS[colour])
        objs.append((colour, shape))
    caption = f"a {objs[0][0]} {objs[0][1]} and a {objs[1][0]} {objs[1][1]} ."
    return im, caption, set(objs)


def write_two_objects(root: Path, n: dict[str, int], seed: int = 7) -> Path:
    """Karpathy-style JSON of generated two-object images; returns its path."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images = []
    k = 0
    for split, count in n.items():
        for _ in range(count):
            im, cap, _ = two_objects(rng)
            name = f"two_{k:05d}.jpg"
            im.save(root / "images" / name, quality=92)
            images.append({"filename": name, "filepath": "images", "split": split, "imgid": k,
                           "sentences": [{"raw": cap}]})
            k += 1
    path = root / "dataset_two_objects.json"
    path.write_text(json.dumps({"dataset": "two-objects", "images": images}))
    return path


def binding(caption: str) -> set[tuple[str, str]]:
    words = caption.replace(".", " ").split()
    return {(a, b) for a, b in zip(words, words[1:]) if a in COLOURS and b in SHAPES}


def per_image_cider(refs: dict[str, list[str]], hyps: dict[str, str]) -> np.ndarray:
    from pycocoevalcap.cider.cider import Cider

    from edge_s2s.train.caption.metrics import _tokenize, java_available

    ids = sorted(refs)
    both = _tokenize({**{f"r{k}": refs[k] for k in ids}, **{f"h{k}": [hyps[k]] for k in ids}}, java_available())
    _, scores = Cider().compute_score({k: both[f"r{k}"] for k in ids}, {k: both[f"h{k}"] for k in ids})
    return np.asarray(scores, dtype=np.float64)


def train_export_caption(karpathy: Path, images: Path, run: Path, bundle: Path, attention: str, seed: int,
                         epochs: int, test_split: str = "test"):
    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig
    from edge_s2s.train.caption.evaluate import items_of_split
    from edge_s2s.train.caption.loop import train_captioner

    cfg = CaptionTrainConfig(captions=str(karpathy), images=str(images), out_dir=str(run),
                             model=CaptionModelConfig(attention=attention), epochs=epochs, seed=seed)
    train_captioner(cfg, resume=(run / "last.pt").is_file(), progress=False)
    if not (bundle / "manifest.json").is_file():
        export_caption_bundle(run, bundle)
    items = items_of_split(karpathy, images, test_split)
    results = Captioner.load(bundle).caption([i.image for i in items], search=Greedy())
    return items, [r.text for r in results]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "tuxpaint")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "captioner")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--control-epochs", type=int, default=12)
    ap.add_argument("--skip-seeds", action="store_true")
    add_write_docs(ap)
    args = ap.parse_args(argv)
    from edge_s2s.runtime.text import tokenize
    from edge_s2s.train.caption.metrics import caption_scores

    karpathy = args.data / "dataset_tuxpaint.json"
    out: dict = {}
    names = {"none": "no attention", "soft": "soft attention"}

    # 1 + 2: seeds and the paired bootstrap on the Tux Paint test split
    cider: dict[str, list[float]] = {a: [] for a in names}
    per_image: dict[str, np.ndarray] = {}
    for seed in ((1,) if args.skip_seeds else (1, 2, 3)):
        for att, label in names.items():
            slug = label.replace(" ", "-") + ("" if seed == 1 else f"-seed{seed}")
            items, hyps = train_export_caption(karpathy, args.data, args.work / slug,
                                               args.work / "bundles" / slug, att, seed, args.epochs)
            refs = {str(k): it.captions for k, it in enumerate(items)}
            h = {str(k): t for k, t in enumerate(hyps)}
            cider[att].append(caption_scores(refs, h, meteor=False)["CIDEr-D"])
            if seed == 1:
                per_image[att] = per_image_cider(refs, h)
            print(f"seed {seed} {label}: test CIDEr-D {cider[att][-1]:.3f}", flush=True)
    out["seeds"] = {names[a]: {"cider_d": v, "mean": statistics.mean(v),
                               "sd": statistics.stdev(v) if len(v) > 1 else 0.0} for a, v in cider.items()}
    diff = per_image["soft"] - per_image["none"]
    rng = np.random.default_rng(0)
    boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(10000)]
    out["bootstrap"] = {"mean_diff": float(diff.mean()), "ci95": [float(np.percentile(boots, 2.5)),
                                                                  float(np.percentile(boots, 97.5))],
                        "images": int(len(diff)), "attention_better": int((diff > 1e-9).sum()),
                        "baseline_better": int((diff < -1e-9).sum())}
    print(json.dumps(out["bootstrap"]), flush=True)

    # 3: the positive control
    control = args.work / "two-objects"
    kjson = control / "dataset_two_objects.json"
    if not kjson.is_file():
        write_two_objects(control, {"train": 1500, "val": 150, "test": 300})
    out["control"] = {}
    for att, label in names.items():
        items, hyps = train_export_caption(kjson, control, control / f"run-{att}", control / f"bundle-{att}", att, 1,
                                           args.control_epochs)
        truth = [it.captions[0] for it in items]
        refs = {str(k): [t] for k, t in enumerate(truth)}
        scores = caption_scores(refs, {str(k): t for k, t in enumerate(hyps)}, meteor=False)
        exact = float(np.mean([tokenize(h) == tokenize(t) for h, t in zip(hyps, truth)]))
        bind = float(np.mean([binding(h) == binding(t) for h, t in zip(hyps, truth)]))
        out["control"][label] = {"exact": exact, "binding": bind, "CIDEr-D": scores["CIDEr-D"],
                                 "BLEU-4": scores["BLEU-4"], "examples": list(zip(truth[:5], hyps[:5]))}
        print(f"control {label}: exact {exact:.3f} binding {bind:.3f} CIDEr-D {scores['CIDEr-D']:.3f}", flush=True)
    (results_dir(args) / "captioner-attention-study.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
