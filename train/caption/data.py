"""Image-caption data in the two formats people have: COCO caption JSON and Karpathy splits.

Both loaders return the same `CaptionItem` list, one item per image with all its human
captions, so training never cares which format the captions came in. Every listed image
must exist on disk; a bad file fails at once with one line naming the file and the fix.

COCO images that have no annotation at all are skipped (official COCO `image_info` and
test files list images without captions), and the count is logged as a warning; every
other problem raises `DataError`. Karpathy images carry their captions inline, so one
without sentences is an error. The split `restval` counts as train.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...runtime.text import Vocab, tokenize
from ..core.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class CaptionItem:
    image: Path  # absolute path of the image file
    captions: list[str]  # raw human captions (>= 1)
    split: str  # "train" | "val" | "test"
    image_id: str  # stable id (COCO id, or Karpathy cocoid / imgid, as str)
    group: str = ""  # items with the same group are variants of one source image (split together)

    @property
    def group_key(self) -> str:
        """What `split_items` keeps together: the group, or the image itself when it has none."""
        return self.group or self.image_id


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: no such file: pass the {what} JSON file")
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}): pass the {what} JSON file, not an image list or archive") from None


def _images_dir(images_dir: str | Path) -> Path:
    d = Path(images_dir).resolve()
    if not d.is_dir():
        raise DataError(f"{d}: no such image folder: pass the folder the JSON's file names are relative to")
    return d


def _check_on_disk(items: list[CaptionItem], source: Path) -> None:
    missing = [it.image for it in items if not it.image.is_file()]
    if missing:
        raise DataError(f"{source}: image {missing[0]} is missing ({len(missing)} of {len(items)} listed images are): "
                        "pass the right image folder or download the images")


def _caption(text: Any, source: Path, where: str) -> str:
    if not isinstance(text, str) or not tokenize(text):
        raise DataError(f"{source}: {where} has an empty or non-text caption ({text!r}): remove it or write the caption")
    return text.strip()


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {', '.join(SPLITS)}: pass one of them")
    return split


def _coco(data: Any, path: Path, images_dir: Path, split: str) -> list[CaptionItem]:
    if not (isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)):
        raise DataError(f"{path}: a COCO caption file needs top-level lists \"images\" and \"annotations\": "
                        "pass e.g. captions_train2014.json")
    files: dict[str, str] = {}
    groups: dict[str, str] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
            raise DataError(f"{path}: images[{i}] lacks \"id\" or \"file_name\": every image entry needs both")
        key = str(img["id"])
        if key in files:
            raise DataError(f"{path}: image id {key} is listed twice: image ids must be unique")
        files[key] = img["file_name"]
        groups[key] = str(img.get("group", ""))
    captions: dict[str, list[str]] = {k: [] for k in files}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DataError(f"{path}: annotations[{i}] lacks \"image_id\" or \"caption\": every annotation needs both")
        key = str(ann["image_id"])
        if key not in captions:
            raise DataError(f"{path}: annotations[{i}] refers to image id {key}, which is not in \"images\": "
                            "fix the id or add the image entry")
        captions[key].append(_caption(ann["caption"], path, f"annotations[{i}] (image {key})"))
    items = [CaptionItem(images_dir / files[k], caps, split, k, groups[k]) for k, caps in captions.items() if caps]
    skipped = len(files) - len(items)
    if skipped:
        log.warning("%s: skipped %d of %d images that have no caption", path, skipped, len(files))
    if not items:
        raise DataError(f"{path}: no image has a caption: pass a caption file (captions_*.json), not an image-info file")
    _check_on_disk(items, path)
    return items


def _karpathy(data: Any, path: Path, images_dir: Path) -> list[CaptionItem]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: a Karpathy split file needs a top-level list \"images\": pass e.g. dataset_coco.json")
    items: list[CaptionItem] = []
    seen: set[str] = set()
    for i, img in enumerate(data["images"]):
        if not (isinstance(img, dict) and isinstance(img.get("filename"), str) and "sentences" in img and "split" in img):
            raise DataError(f"{path}: images[{i}] lacks \"filename\", \"split\" or \"sentences\": "
                            "every image entry needs them")
        split = _KARPATHY_SPLITS.get(img["split"])
        if split is None:
            raise DataError(f"{path}: images[{i}] has split {img['split']!r}: use train, restval, val or test")
        ident = img.get("cocoid", img.get("imgid"))
        if ident is None:
            raise DataError(f"{path}: images[{i}] has neither \"imgid\" nor \"cocoid\": every image needs an id")
        key = str(ident)
        if key in seen:
            raise DataError(f"{path}: image id {key} is listed twice: image ids must be unique")
        seen.add(key)
        sents = img["sentences"]
        if not isinstance(sents, list) or not sents:
            raise DataError(f"{path}: images[{i}] ({img['filename']}) has no sentences: every image needs a caption")
        caps = []
        for j, s in enumerate(sents):
            raw = s.get("raw") if isinstance(s, dict) else None
            if raw is None and isinstance(s, dict) and isinstance(s.get("tokens"), list):
                raw = " ".join(map(str, s["tokens"]))
            caps.append(_caption(raw, path, f"images[{i}].sentences[{j}]"))
        sub = img.get("filepath") or ""
        items.append(CaptionItem(images_dir / sub / img["filename"], caps, split, key, str(img.get("group", ""))))
    if not items:
        raise DataError(f"{path}: \"images\" is empty: pass a Karpathy split file with images")
    _check_on_disk(items, path)
    return items


def load_coco(captions_json: str | Path, images_dir: str | Path, split: str = "train") -> list[CaptionItem]:
    """One item per captioned image of a COCO caption file, all in `split`."""
    path = Path(captions_json)
    return _coco(_read_json(path, "COCO caption"), path, _images_dir(images_dir), _check_split(split))


def load_karpathy(karpathy_json: str | Path, images_dir: str | Path) -> list[CaptionItem]:
    """Items of a Karpathy split file; image paths are images_dir/filepath/filename."""
    path = Path(karpathy_json)
    return _karpathy(_read_json(path, "Karpathy split"), path, _images_dir(images_dir))


def load_captions(path: str | Path, images_dir: str | Path, split: str = "train") -> list[CaptionItem]:
    """Either format, told apart by its keys ("annotations": COCO; "sentences" in images: Karpathy).

    `split` applies to COCO files only; Karpathy files carry their own splits.
    """
    path = Path(path)
    data = _read_json(path, "caption")
    if isinstance(data, dict) and "annotations" in data:
        return _coco(data, path, _images_dir(images_dir), _check_split(split))
    images = data.get("images") if isinstance(data, dict) else None
    first = images[0] if isinstance(images, list) and images else None
    if isinstance(images, list) and ("dataset" in data or (isinstance(first, dict) and "sentences" in first)):
        return _karpathy(data, path, _images_dir(images_dir))
    raise DataError(f"{path}: neither a COCO caption file (\"images\" + \"annotations\") nor a Karpathy split file "
                    "(\"images\" with \"sentences\"): pass one of those")


def split_items(items: list[CaptionItem], val_fraction: float, seed: int) -> list[CaptionItem]:
    """Give a seeded fraction of groups the split "val" and the rest "train" (for files without splits).

    Whole groups move together, so no source image has variants on both sides. The result
    depends only on the set of group keys and the seed, not on the order of `items`.
    Items already in "test" stay there and take no part in the draw.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction}: pass a fraction between 0 and 1, e.g. 0.05")
    keys = sorted({it.group_key for it in items if it.split != "test"})
    n_val = max(1, round(len(keys) * val_fraction))
    if n_val >= len(keys):
        raise DataError(f"only {len(keys)} image groups: too few to hold out a validation set, "
                        "add images or lower val_fraction")
    random.Random(seed).shuffle(keys)
    val = set(keys[:n_val])
    return [it if it.split == "test" else dataclasses.replace(it, split="val" if it.group_key in val else "train")
            for it in items]


def build_caption_vocab(items: Iterable[CaptionItem], min_count: int = 1, lowercase: bool = True,
                        tokenizer: Callable[[str], list[str]] | None = None) -> Vocab:
    """The caption vocabulary from the train items only (val/test words stay unknown); `tokenizer`
    splits a caption (default: runtime.text.tokenize with `lowercase`).

    A caption repeated across the variants of one group counts once: four composites of
    one stamp are one piece of evidence for its words, so `min_count` means what it says.
    """
    train = [it for it in items if it.split == "train"]
    if not train:
        raise DataError("no training items: build the caption vocabulary from a list that has split=\"train\" items")
    per_group: dict[str, dict[str, None]] = {}
    for it in train:
        per_group.setdefault(it.group_key, {}).update(dict.fromkeys(it.captions))
    split = tokenizer or (lambda c: tokenize(c, lowercase))
    return Vocab.build((split(c) for caps in per_group.values() for c in caps), min_count=min_count)


@dataclass
class CaptionSource:
    """One caption set to merge: its name (prefixes its groups), caption JSON and image folder."""

    name: str
    captions: str | Path
    images: str | Path
    split: str = "train"  # the split of a COCO file's images (Karpathy files carry their own)


def merge_caption_sets(sources: list[CaptionSource], out_json: str | Path) -> dict[str, dict[str, int]]:
    """Write one Karpathy file listing the images of several caption sets (training reads one file).

    Each set keeps its own splits (so no group crosses splits); groups become "<name>/<group>", so
    two sets never share one; ids are renumbered 1.. in source order, the old id kept as "source_id".
    Image paths are stored relative to the output file's folder: train with `--images` that folder.
    Returns {source name: {split: images}}.
    """
    names = [s.name for s in sources]
    if len(sources) < 2 or len(set(names)) != len(names) or not all(names):
        raise DataError(f"sources {names}: pass two or more caption sets with distinct, non-empty names")
    out = Path(out_json)
    root = out.parent.resolve()
    images: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    n_sent = 0
    for src in sources:
        counts[src.name] = dict.fromkeys(SPLITS, 0)
        for it in load_captions(src.captions, src.images, src.split):
            sentences = []
            for c in it.captions:
                sentences.append({"raw": c, "tokens": [t for t in tokenize(c) if any(ch.isalnum() for ch in t)],
                                  "imgid": len(images), "sentid": n_sent})
                n_sent += 1
            images.append({"filepath": os.path.relpath(it.image.parent, root), "filename": it.image.name,
                           "imgid": len(images), "cocoid": len(images) + 1, "split": it.split,
                           "sentids": [s["sentid"] for s in sentences], "source": src.name,
                           "source_id": it.image_id, "group": f"{src.name}/{it.group_key}", "sentences": sentences})
            counts[src.name][it.split] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dataset": "+".join(names), "images": images}, ensure_ascii=False, indent=1) + "\n",
                   encoding="utf-8")
    return counts
