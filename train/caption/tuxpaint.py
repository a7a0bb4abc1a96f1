"""Turn Tux Paint's stamps into a small captioning data set (COCO + Karpathy JSON, JPEG frames).

Debian's `tuxpaint-stamps-default` ships ~1,000 clip-art stamps (PNG cut-outs with alpha,
some SVG), most with a `<stem>.txt` whose first line is a human English description;
the later `ll.utf8=...` lines are translations and are ignored. A captioner trained on bare
cut-outs would only ever see flat transparent margins, so each stamp is composited onto
seeded, varied full-frame backgrounds (solid, gradients, smooth noise, blurred shapes,
a horizon) at a random scale and place, and saved as an RGB JPEG.

Splits are by group, never by image: all composites of a stamp stay in one split, and so
do stamps that are byte-identical files in two folders or share the exact description
(the filled and outlined letter R, six "A flower." stamps) -- otherwise a test image could
be a near copy of a training one with the same caption. Train stamps get several
composites, val/test stamps exactly one. Everything random derives from the seed and the
stamp's path, so the same seed gives byte-identical JSON (and images, with the same Pillow).

SVGs are rasterised with cairosvg (pip, needs Debian's libcairo2); a PNG with the same
stem wins over its SVG. Tux Paint's pre-drawn `_mirror`/`_flip` images are the same
picture flipped and have no text of their own: they are skipped and counted.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import numpy as np
from PIL import Image

from ...runtime.errors import EdgeS2SError
from ...runtime.text import tokenize
from ..core.splits import FRACTIONS, assign_splits, group_roots
from .composite import (
    COVER,
    JPEG_QUALITY,
    Frame,
    composite,
    crop_to_alpha,
    dump_json,
    image_seed,
    make_background,
    package_version,
    remove_stale,
    render_all,
    write_caption_files,
)

__all__ = ["COVER", "JPEG_QUALITY", "ConvertError", "Report", "Scan", "Stamp", "composite", "convert", "find_stamps",
           "image_seed", "load_cutout", "make_background", "read_description", "svg_rasteriser_error"]

PACKAGE = "tuxpaint-stamps-default"
STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
APT_INSTALL = f"sudo apt-get install -y {PACKAGE}"
SVG_INSTALL = "pip install cairosvg (it needs Debian's libcairo2: sudo apt-get install -y libcairo2)"
LICENCE = (f"Tux Paint stamps are GPL-2+ (see /usr/share/doc/{PACKAGE}/copyright); "
           "these composites are derived from them and carry the same licence.")

_VARIANT_RE = re.compile(r"_(mirror|flip)$")
_TRANSLATION_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?(@\w+)?\.utf8=")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


class ConvertError(EdgeS2SError):
    """The stamps folder, a stamp or a needed tool is missing (message names the fix)."""


@dataclass
class Stamp:
    path: Path  # the image: the PNG, or the SVG when no PNG has the same stem
    rel: str  # the image's path relative to the stamps folder (posix)
    caption: str  # the English description, cleaned
    colorable: bool = False  # a black silhouette Tux Paint fills with the chosen colour
    group: str = ""  # stamps split together (see module docstring)


@dataclass
class Scan:
    stamps: list[Stamp]
    no_text: list[str] = field(default_factory=list)  # images without a .txt or with no English line
    mirrors: list[str] = field(default_factory=list)  # pre-drawn _mirror/_flip variants, skipped
    svg_with_png: list[str] = field(default_factory=list)  # SVGs skipped: a PNG has the same stem
    text_without_image: list[str] = field(default_factory=list)


def read_description(txt: Path) -> str:
    """The English first line of a stamp's .txt, tidied ("" when there is none)."""
    first = txt.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").split("\n", 1)[0]
    if _TRANSLATION_RE.match(first):  # no English line: the file starts with a translation
        return ""
    return " ".join(first.translate(_QUOTES).split())


def find_stamps(root: str | Path) -> Scan:
    """Every stamp with an English description, one image per stem (PNG preferred), grouped."""
    root = Path(root)
    if not root.is_dir():
        raise ConvertError(f"{root}: no such stamps folder: {APT_INSTALL}")
    by_stem: dict[Path, list[Path]] = defaultdict(list)
    for p in root.rglob("*"):
        if p.suffix.lower() in (".png", ".svg") and p.is_file():
            by_stem[p.with_suffix("")].append(p)
    scan = Scan([])
    for stem in sorted(by_stem):
        files = sorted(by_stem[stem], key=lambda p: (p.suffix.lower() != ".png", p.name))
        image = files[0]
        rel = image.relative_to(root).as_posix()
        scan.svg_with_png += [f.relative_to(root).as_posix() for f in files[1:]]
        txt = stem.with_name(stem.name + ".txt")
        base = _VARIANT_RE.sub("", stem.name)
        if not txt.is_file() and base != stem.name and stem.with_name(base) in by_stem:
            scan.mirrors.append(rel)
            continue
        caption = read_description(txt) if txt.is_file() else ""
        if not tokenize(caption):
            scan.no_text.append(rel)
            continue
        dat = stem.with_name(stem.name + ".dat")
        colorable = dat.is_file() and "colorable" in dat.read_text(encoding="utf-8", errors="replace").split()
        scan.stamps.append(Stamp(image, rel, caption, colorable))
    images = set(by_stem)
    scan.text_without_image = sorted(t.relative_to(root).as_posix() for t in root.rglob("*.txt")
                                     if t.with_suffix("") not in images)
    _group(scan.stamps)
    return scan


def _group(stamps: list[Stamp]) -> None:
    """Union stamps that are byte-identical or share a description; the group is its first path."""
    keys = [["c:" + s.caption.lower(), "h:" + hashlib.sha256(s.path.read_bytes()).hexdigest()] for s in stamps]
    for s, root in zip(stamps, group_roots(keys)):  # stamps are sorted by path, so the first is the smallest
        s.group = stamps[root].rel


# ---------------------------------------------------------------- images


def svg_rasteriser_error() -> str | None:
    """None when SVGs can be rasterised here, else the one-line fix."""
    try:
        import cairosvg  # noqa: F401  (raises OSError when libcairo2 is missing)
    except (ImportError, OSError):
        return f"SVG stamps need cairosvg: {SVG_INSTALL}"
    return None


def rasterise_svg(path: Path, long_side: int) -> Image.Image:
    """An SVG as RGBA with its long side `long_side` pixels."""
    try:
        import cairosvg
        from defusedxml import EntitiesForbidden
    except (ImportError, OSError):
        raise ConvertError(f"{path}: SVG stamps need cairosvg: {SVG_INSTALL}") from None

    def render(**kw) -> Image.Image:
        try:
            data = cairosvg.svg2png(url=str(path), **kw)
        except EntitiesForbidden:  # Illustrator files declare internal entities; the file is local
            data = cairosvg.svg2png(url=str(path), unsafe=True, **kw)
        return Image.open(io.BytesIO(data)).convert("RGBA")

    im = render()
    return render(scale=long_side / max(im.size)) if max(im.size) != long_side else im


def load_cutout(path: Path, long_side: int) -> Image.Image:
    """The stamp as RGBA, cropped to its visible pixels, at most `long_side` on its long side."""
    if path.suffix.lower() == ".svg":
        im = rasterise_svg(path, long_side)
    else:
        with Image.open(path) as f:
            im = f.convert("RGBA")  # palette / grey+alpha / RGB with a transparent colour included
    im = crop_to_alpha(im)
    if im is None:
        raise ConvertError(f"{path}: the stamp is fully transparent: remove it from the stamps folder")
    if max(im.size) > long_side:
        s = long_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    return im


def _render(task: tuple[str, bool, int, list[tuple[str, int]]]) -> None:
    path, colorable, size, outputs = task
    cutout = load_cutout(Path(path), size)
    for out, s in outputs:
        img = composite(cutout, np.random.default_rng(s), size, colorable)
        img.save(out, "JPEG", quality=JPEG_QUALITY)


# ---------------------------------------------------------------- the data set


@dataclass
class Report:
    counts: dict[str, dict[str, int]]  # split -> stamps, groups, images
    scan: Scan
    out: Path


def _slug(rel: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", rel.rsplit(".", 1)[0].replace("/", "__"))


def convert(stamps_dir: str | Path, out_dir: str | Path, seed: int = 13, train_variants: int = 4,
            size: int = 256, workers: int = 2, fractions: dict[str, float] = FRACTIONS) -> Report:
    """Scan, split, render and write the data set under `out_dir` (see the module docstring)."""
    if train_variants < 1 or size < 32:
        raise ConvertError(f"train_variants={train_variants}, size={size}: pass train_variants >= 1 and size >= 32")
    stamps_dir, out = Path(stamps_dir), Path(out_dir)
    scan = find_stamps(stamps_dir)
    if not scan.stamps:
        raise ConvertError(f"{stamps_dir}: no stamp with an English description: {APT_INSTALL}")
    if any(s.path.suffix.lower() == ".svg" for s in scan.stamps) and (err := svg_rasteriser_error()):
        raise ConvertError(err)
    split_of = assign_splits((s.group for s in scan.stamps), seed, fractions)

    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    frames: list[Frame] = []
    tasks: list[tuple[str, bool, int, list[tuple[str, int]]]] = []
    for st in scan.stamps:
        split = split_of[st.group]
        outputs = []
        for v in range(train_variants if split == "train" else 1):
            name = f"{_slug(st.rel)}_{v}.jpg"
            outputs.append((str(images_dir / name), image_seed(seed, st.rel, v)))
            frames.append(Frame(name, st.caption, split, {"stamp": st.rel, "group": st.group, "variant": v}))
        tasks.append((str(st.path), st.colorable, size, outputs))

    remove_stale(images_dir, {fr.name for fr in frames})
    render_all(_render, tasks, workers)

    version = package_version(PACKAGE)
    info = {"description": "Tux Paint stamps composited onto varied backgrounds", "source": PACKAGE,
            "source_version": version, "seed": seed, "licence": LICENCE}
    images = write_caption_files(out, "tuxpaint", frames, size, info)

    counts: dict[str, dict[str, int]] = {}
    for split in FRACTIONS:
        st = [s for s in scan.stamps if split_of[s.group] == split]
        lengths = [len(tokenize(s.caption)) for s in st] or [0]
        counts[split] = {"stamps": len(st), "groups": len({s.group for s in st}), "images": images[split],
                         "caption_tokens_min": min(lengths), "caption_tokens_max": max(lengths),
                         "caption_tokens_mean": round(mean(lengths), 2)}
    record = {"source": {"package": PACKAGE, "version": version, "stamps_dir": str(stamps_dir)},
              "seed": seed, "fractions": fractions, "train_variants": train_variants, "size": size,
              "jpeg_quality": JPEG_QUALITY, "cover": list(COVER), "counts": counts,
              "groups_with_several_stamps": sum(1 for g in {s.group for s in scan.stamps}
                                                if sum(s.group == g for s in scan.stamps) > 1),
              "skipped": {"no_text": scan.no_text, "mirror_variants": scan.mirrors,
                          "svg_with_png": scan.svg_with_png, "text_without_image": scan.text_without_image},
              "licence": LICENCE}
    dump_json(out / "split.json", record)
    (out / "README.md").write_text(_readme(record), encoding="utf-8")
    return Report(counts, scan, out)


def _readme(r: dict) -> str:
    c = r["counts"]
    rows = "\n".join(f"| {k} | {v['stamps']} | {v['groups']} | {v['images']} | {v['caption_tokens_mean']} |"
                     for k, v in c.items())
    sk = r["skipped"]
    return f"""# Tux Paint stamp captions

Made by `scripts/tuxpaint_to_coco.py` from Debian's `{r['source']['package']}` {r['source']['version']}
(seed {r['seed']}, {r['train_variants']} composites per train stamp,
{r['size']}x{r['size']} JPEG quality {r['jpeg_quality']}).
Each stamp's English description (first line of its .txt) is the caption; the stamp is composited
onto a random background covering {r['cover'][0]:.0%}-{r['cover'][1]:.0%} of the frame. Splits are by stamp
group (byte-identical files and stamps with the same description stay together), fractions {r['fractions']}.

| split | stamps | groups | images | mean caption tokens |
| --- | --- | --- | --- | --- |
{rows}

Skipped: {len(sk['no_text'])} images without an English description, {len(sk['mirror_variants'])} pre-drawn
mirror/flip variants, {len(sk['svg_with_png'])} SVGs that have a PNG of the same stem; see split.json.

Files: `images/*.jpg`; COCO captions `captions_{{train,val,test}}.json` (file names relative to `images/`;
each image also has "stamp", "group", "variant"); Karpathy style `dataset_tuxpaint.json` (all splits,
filepath "images", cocoid = the COCO id).

Licence: {r['licence']}
"""
