"""A tiny generated captioning dataset: coloured shapes on plain backgrounds.

Real images (drawn with Pillow, saved as JPEG/PNG files), captions that name what is
drawn, written in both formats people have: a Karpathy split JSON and COCO JSON files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (240, 220, 20)}
SHAPES = ("circle", "square", "triangle")


def draw(colour: str, shape: str, rng: random.Random, size: int = 96) -> Image.Image:
    bg = tuple(rng.randint(90, 170) for _ in range(3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    s = rng.randint(size // 3, size // 2)
    x, y = rng.randint(4, size - s - 4), rng.randint(4, size - s - 4)
    c = COLOURS[colour]
    if shape == "circle":
        d.ellipse([x, y, x + s, y + s], fill=c)
    elif shape == "square":
        d.rectangle([x, y, x + s, y + s], fill=c)
    else:
        d.polygon([(x, y + s), (x + s, y + s), (x + s // 2, y)], fill=c)
    return im


def write_shapes(root: Path, variants: int = 2, seed: int = 0) -> dict[str, Path]:
    """Images under root/images; returns paths of karpathy.json, coco_train.json, coco_val.json."""
    rng = random.Random(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    kimages, coco = [], {"train": {"images": [], "annotations": []}, "val": {"images": [], "annotations": []}}
    n = 0
    for colour in COLOURS:
        for shape in SHAPES:
            for v in range(variants + 1):
                split = "val" if v == variants else "train"
                name = f"{colour}_{shape}_{v}.jpg"
                draw(colour, shape, rng).save(img_dir / name, quality=95)
                caps = [f"a {colour} {shape} .", f"a {shape} that is {colour} ."]
                kimages.append({"filename": name, "split": split, "imgid": n,
                                "sentences": [{"raw": c, "tokens": c.split()} for c in caps]})
                coco[split]["images"].append({"id": n, "file_name": name, "width": 96, "height": 96})
                for j, c in enumerate(caps):
                    coco[split]["annotations"].append({"id": n * 10 + j, "image_id": n, "caption": c})
                n += 1
    out = {"images": img_dir, "karpathy": root / "karpathy.json", "coco_train": root / "coco_train.json",
           "coco_val": root / "coco_val.json"}
    out["karpathy"].write_text(json.dumps({"dataset": "shapes", "images": kimages}))
    out["coco_train"].write_text(json.dumps(coco["train"]))
    out["coco_val"].write_text(json.dumps(coco["val"]))
    return out


def tiny_caption_config(shapes_data, out_dir, **model):
    from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig

    m = dict(emb_dim=32, dec_hidden=64, region_dim=64, att_dim=32, dropout=0.0)
    m.update(model)
    return CaptionTrainConfig(captions=str(shapes_data["karpathy"]), images=str(shapes_data["images"]),
                              out_dir=str(out_dir), model=CaptionModelConfig(**m), epochs=6, batch_size=8, lr=5e-3,
                              vocab_min_count=1, max_caption_length=8, val_max=12)
