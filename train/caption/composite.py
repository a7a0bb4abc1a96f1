"""Cut-outs composited onto varied backgrounds, and the COCO + Karpathy files that list them.

Shared by the converters that turn clip art into caption data (`tuxpaint.py`, `emoji.py`):
a captioner trained on bare cut-outs would only ever see flat transparent margins, so each
cut-out is placed at a random scale and spot on a seeded full-frame background (solid,
gradient, smooth noise, blurred shapes or a horizon), with an optional soft shadow and
sensor-like grain. Every composite has its own seed derived from (seed, source key, variant),
so the result does not depend on worker count or order, and the caption files are written
in one layout that `data.load_captions` reads: `captions_{train,val,test}.json` (COCO) and
`dataset_<name>.json` (Karpathy, all splits, filepath "images").
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import multiprocessing
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ...runtime.text import tokenize
from ..core.splits import FRACTIONS

JPEG_QUALITY = 92
COVER = (0.45, 0.90)  # the cut-out's long side, as a fraction of the frame


def _colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(0.05, 0.9), rng.uniform(0.15, 0.98)
    return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _mix(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * (1.0 - t[..., None]) + b * t[..., None]


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float RGB frame [size, size, 3]: solid, gradient, smooth noise, blurred shapes or horizon."""
    kind = rng.integers(5)
    c1, c2 = _colour(rng), _colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / max(1, size - 1)
    if kind == 0:  # solid colour with a faint vignette
        r = np.hypot(xx - 0.5, yy - 0.5)
        bg = np.broadcast_to(c1, (size, size, 3)) * (1.0 - rng.uniform(0.0, 0.35) * r[..., None] ** 2)
    elif kind == 1:  # two-colour linear gradient at any angle
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        bg = _mix((t - t.min()) / (np.ptp(t) or 1.0), c1, c2)
    elif kind == 2:  # smooth value noise, two octaves
        t = np.zeros((size, size))
        for cells, w in ((int(rng.integers(2, 6)), 0.7), (int(rng.integers(8, 20)), 0.3)):
            grid = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
            t += w * np.asarray(grid.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
        bg = _mix(np.clip((t - t.min()) / (np.ptp(t) or 1.0), 0, 1), c1, c2)
    elif kind == 3:  # soft blurred shapes on a base colour
        im = Image.new("RGB", (size, size), tuple(int(v) for v in c1))
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(3, 9))):
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.15, 0.6, 2) * size
            fill = tuple(int(v) for v in _colour(rng))
            (draw.ellipse if rng.random() < 0.6 else draw.rectangle)((x0, y0, x0 + w, y0 + h), fill=fill)
        im = im.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.03, 0.09)))
        bg = np.asarray(im, dtype=np.float64)
    else:  # horizon: graded "sky" over "ground", softly blended
        y0 = rng.uniform(0.35, 0.75)
        sky = _mix(yy / max(y0, 1e-6), c1 * 1.1, c1 * 0.8)
        ground = _mix(np.clip((yy - y0) / (1 - y0), 0, 1), c2, c2 * 0.6)
        t = 1.0 / (1.0 + np.exp(-(yy - y0) * size / rng.uniform(1.5, 6.0)))
        bg = sky * (1 - t[..., None]) + ground * t[..., None]
    return np.clip(bg, 0, 255)


def composite(cutout: Image.Image, rng: np.random.Generator, size: int, colorable: bool = False) -> Image.Image:
    """The cut-out at a random scale and place on a random background, as an RGB frame.

    `colorable`: the cut-out is a silhouette to fill with one colour that stands out from
    what is under it (Tux Paint's colourable stamps).
    """
    bg = make_background(rng, size)
    cover = rng.uniform(*COVER)
    s = cover * size / max(cutout.size)
    w, h = max(1, round(cutout.width * s)), max(1, round(cutout.height * s))
    cut = cutout.resize((w, h), Image.Resampling.LANCZOS)
    x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    alpha = np.zeros((size, size))
    alpha[y : y + h, x : x + w] = np.asarray(cut.getchannel("A"), dtype=np.float64) / 255.0
    rgb = np.zeros((size, size, 3))
    rgb[y : y + h, x : x + w] = np.asarray(cut.convert("RGB"), dtype=np.float64)
    if colorable:  # Tux Paint fills these silhouettes with the chosen colour: pick one that stands out
        under = bg[alpha > 0.5].mean(axis=0) if (alpha > 0.5).any() else bg.mean(axis=(0, 1))
        light = float(under @ np.array([0.299, 0.587, 0.114])) > 128
        v = rng.uniform(0.05, 0.35) if light else rng.uniform(0.8, 1.0)
        rgb[:] = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.9), v)) * 255.0
    if rng.random() < 0.5:  # a soft drop shadow
        blur = ImageFilter.GaussianBlur(size * rng.uniform(0.01, 0.04))
        shadow = Image.fromarray((alpha * 255).astype(np.uint8)).filter(blur)
        dx, dy = (rng.uniform(-0.03, 0.03, 2) * size).astype(int)
        sh = np.roll(np.asarray(shadow, dtype=np.float64) / 255.0, (dy, dx), axis=(0, 1))
        bg = bg * (1.0 - rng.uniform(0.2, 0.5) * sh[..., None])
    out = bg * (1.0 - alpha[..., None]) + rgb * alpha[..., None]
    out += rng.normal(0.0, rng.uniform(1.5, 5.0), out.shape)  # sensor-like grain over everything
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def image_seed(seed: int, key: str, variant: int) -> int:
    """Per-composite seed: independent of worker count and processing order."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{key}/{variant}".encode()).digest()[:8], "little")


def crop_to_alpha(im: Image.Image, threshold: int = 8) -> Image.Image | None:
    """The RGBA image cropped to its visible pixels (alpha > threshold); None when there are none."""
    box = im.getchannel("A").point(lambda a: 255 if a > threshold else 0).getbbox()
    return None if box is None else im.crop(box)


def render_all(fn: Callable[[Any], None], tasks: Sequence[Any], workers: int) -> None:
    """Run `fn` on every task, in `workers` forked processes when more than one."""
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, tasks, chunksize=4):
                pass
    else:
        for t in tasks:
            fn(t)


def remove_stale(images_dir: Path, wanted: set[str]) -> None:
    """Delete the JPEGs an earlier run with other settings left that this run does not write."""
    for old in images_dir.glob("*.jpg"):
        if old.name not in wanted:
            old.unlink()


# ---------------------------------------------------------------- caption files


@dataclass
class Frame:
    """One composite's row in the caption files."""

    name: str  # JPEG file name under images/
    caption: str
    split: str  # "train" | "val" | "test"
    extra: dict[str, Any] = field(default_factory=dict)  # source keys ("stamp", "group", "variant"):
    # all go to the COCO image entry; all but "variant" to the Karpathy one, between "sentids" and "sentences"


def dump_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def package_version(package: str) -> str:
    """The installed Debian package's version, or "unknown"."""
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def write_caption_files(out: Path, dataset: str, frames: Sequence[Frame], size: int,
                        info: dict[str, Any]) -> dict[str, int]:
    """`captions_{split}.json` (COCO) and `dataset_<dataset>.json` (Karpathy) for `frames`, in order;
    ids count from 1 in that order. Returns images per split."""
    coco: dict[str, dict] = {k: {"images": [], "annotations": []} for k in FRACTIONS}
    karpathy: list[dict] = []
    for image_id, fr in enumerate(frames, start=1):
        coco[fr.split]["images"].append({"id": image_id, "file_name": fr.name, "width": size, "height": size,
                                         **fr.extra})
        coco[fr.split]["annotations"].append({"id": image_id, "image_id": image_id, "caption": fr.caption})
        words = [t for t in tokenize(fr.caption) if any(ch.isalnum() for ch in t)]
        karpathy.append({"filepath": "images", "filename": fr.name, "imgid": image_id - 1, "cocoid": image_id,
                         "split": fr.split, "sentids": [image_id - 1],
                         **{k: v for k, v in fr.extra.items() if k != "variant"},
                         "sentences": [{"raw": fr.caption, "tokens": words, "imgid": image_id - 1,
                                        "sentid": image_id - 1}]})
    for split, d in coco.items():
        dump_json(out / f"captions_{split}.json", {"info": {**info, "split": split}, "images": d["images"],
                                                   "annotations": d["annotations"]})
    dump_json(out / f"dataset_{dataset}.json", {"dataset": dataset, "images": karpathy})
    return {split: len(d["images"]) for split, d in coco.items()}
