"""COCO and Karpathy caption loaders, their errors, the grouped split and the train-only vocabulary."""

import json
import logging
import random
from pathlib import Path

import pytest
from PIL import Image

from edge_s2s.runtime.text import SPECIALS
from edge_s2s.train.caption.data import (
    CaptionItem,
    build_caption_vocab,
    load_captions,
    load_coco,
    load_karpathy,
    split_items,
)
from edge_s2s.train.core.errors import DataError


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (200, 10, 10)).save(path)


def _write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _coco(n=3, captions=None):
    images = [{"id": 10 + i, "file_name": f"im{i}.png", "width": 4, "height": 4} for i in range(n)]
    if captions is None:
        captions = [(10 + i, f"A picture number {i}.") for i in range(n)] + [(10, "Another caption.")]
    anns = [{"id": j, "image_id": iid, "caption": c} for j, (iid, c) in enumerate(captions)]
    return {"images": images, "annotations": anns}


@pytest.fixture
def coco(tmp_path):
    imgs = tmp_path / "imgs"
    for i in range(3):
        _image(imgs / f"im{i}.png")
    return _write(tmp_path / "captions.json", _coco()), imgs


def test_load_coco(coco):
    path, imgs = coco
    items = load_coco(path, imgs, split="val")
    assert [it.image_id for it in items] == ["10", "11", "12"]
    assert items[0].captions == ["A picture number 0.", "Another caption."]
    assert items[0].image == (imgs / "im0.png").resolve() and items[0].image.is_absolute()
    assert {it.split for it in items} == {"val"} and items[0].group == ""


def test_coco_image_without_caption_is_skipped_with_a_warning(tmp_path, caplog):
    for i in range(3):
        _image(tmp_path / f"im{i}.png")
    path = _write(tmp_path / "c.json", _coco(captions=[(10, "A cat."), (12, "A dog.")]))
    with caplog.at_level(logging.WARNING):
        items = load_coco(path, tmp_path)
    assert [it.image_id for it in items] == ["10", "12"]
    assert "skipped 1 of 3 images" in caplog.text


def test_coco_group_is_read(tmp_path):
    _image(tmp_path / "im0.png")
    data = _coco(1, captions=[(10, "A cat.")])
    data["images"][0]["group"] = "cats/cat.png"
    items = load_coco(_write(tmp_path / "c.json", data), tmp_path)
    assert items[0].group == "cats/cat.png" and items[0].group_key == "cats/cat.png"


@pytest.mark.parametrize("mutate, what", [
    (lambda d: d.pop("annotations"), "\"annotations\""),
    (lambda d: d["images"][1].pop("file_name"), "images[1] lacks"),
    (lambda d: d["annotations"].append({"image_id": 99, "caption": "x"}), "image id 99"),
    (lambda d: d["annotations"].append({"image_id": 11, "caption": "  "}), "empty or non-text caption"),
    (lambda d: d["annotations"].append({"image_id": 11, "caption": 5}), "empty or non-text caption"),
    (lambda d: d["annotations"].append({"image_id": 11}), "annotations[4] lacks"),
    (lambda d: d["images"].append(dict(d["images"][0])), "listed twice"),
    (lambda d: d.update(annotations=[]), "no image has a caption"),
])
def test_coco_errors_name_file_and_problem(coco, mutate, what):
    path, imgs = coco
    data = json.loads(path.read_text())
    mutate(data)
    _write(path, data)
    with pytest.raises(DataError) as e:
        load_coco(path, imgs)
    msg = str(e.value)
    assert what in msg and "captions.json" in msg and "\n" not in msg


def test_missing_and_invalid_json(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_coco(tmp_path / "nope.json", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        load_captions(bad, tmp_path)
    with pytest.raises(DataError, match="no such image folder"):
        load_coco(_write(tmp_path / "c.json", _coco()), tmp_path / "nowhere")
    with pytest.raises(DataError, match="split 'dev'"):
        load_coco(tmp_path / "c.json", tmp_path, split="dev")


def test_missing_images_named_and_counted(coco):
    path, imgs = coco
    (imgs / "im1.png").unlink()
    (imgs / "im2.png").unlink()
    with pytest.raises(DataError) as e:
        load_coco(path, imgs)
    assert "im1.png is missing (2 of 3" in str(e.value)


def _karpathy(tmp_path):
    _image(tmp_path / "train2014" / "a.jpg")
    _image(tmp_path / "val2014" / "b.jpg")
    _image(tmp_path / "c.jpg")
    images = [
        {"filepath": "train2014", "filename": "a.jpg", "imgid": 0, "cocoid": 501, "split": "restval",
         "sentences": [{"raw": "A man rides a horse.", "tokens": ["a", "man", "rides", "a", "horse"]},
                       {"raw": "Someone on horseback .", "tokens": []}]},
        {"filepath": "val2014", "filename": "b.jpg", "imgid": 1, "cocoid": 502, "split": "val",
         "sentences": [{"raw": "A bowl of soup.", "tokens": []}]},
        {"filename": "c.jpg", "imgid": 2, "split": "test", "sentences": [{"tokens": ["two", "dogs"]}]},
    ]
    return _write(tmp_path / "dataset_x.json", {"dataset": "x", "images": images})


def test_load_karpathy(tmp_path):
    path = _karpathy(tmp_path)
    items = load_karpathy(path, tmp_path)
    assert [(it.image_id, it.split) for it in items] == [("501", "train"), ("502", "val"), ("2", "test")]
    assert items[0].image == (tmp_path / "train2014" / "a.jpg").resolve()
    assert items[0].captions == ["A man rides a horse.", "Someone on horseback ."]
    assert items[2].image.name == "c.jpg" and items[2].captions == ["two dogs"]  # tokens when raw is absent


@pytest.mark.parametrize("mutate, what", [
    (lambda d: d["images"][1].update(sentences=[]), "has no sentences"),
    (lambda d: d["images"][1].update(split="dev"), "split 'dev'"),
    (lambda d: d["images"][1]["sentences"].append({"raw": ""}), "empty or non-text caption"),
    (lambda d: d["images"][2].pop("imgid"), "neither \"imgid\" nor \"cocoid\""),
    (lambda d: d["images"][0].pop("filename"), "images[0] lacks"),
    (lambda d: d["images"][1].update(filename="gone.jpg"), "gone.jpg is missing (1 of 3"),
])
def test_karpathy_errors(tmp_path, mutate, what):
    path = _karpathy(tmp_path)
    data = json.loads(path.read_text())
    mutate(data)
    _write(path, data)
    with pytest.raises(DataError) as e:
        load_karpathy(path, tmp_path)
    assert what in str(e.value) and "dataset_x.json" in str(e.value)


def test_load_captions_detects_the_format(tmp_path, coco):
    path, imgs = coco
    assert [it.image_id for it in load_captions(path, imgs, split="test")] == ["10", "11", "12"]
    assert load_captions(path, imgs, split="test")[0].split == "test"
    kp = _karpathy(tmp_path)
    assert [it.split for it in load_captions(kp, tmp_path)] == ["train", "val", "test"]
    other = _write(tmp_path / "o.json", {"images": [{"file": "x"}]})
    with pytest.raises(DataError, match="neither a COCO caption file"):
        load_captions(other, tmp_path)


def _items(n_groups=40, per_group=3):
    return [CaptionItem(image=Path(f"/x/{g}_{v}.jpg"), captions=[f"thing {g}"], split="train", image_id=str(g * 10 + v),
                        group=f"g{g}") for g in range(n_groups) for v in range(per_group)]


def test_split_items_is_deterministic_and_keeps_groups_together():
    items = _items()
    a = split_items(items, 0.2, seed=3)
    shuffled = list(items)
    random.Random(0).shuffle(shuffled)
    b = {it.image_id: it.split for it in split_items(shuffled, 0.2, seed=3)}
    assert {it.image_id: it.split for it in a} == b  # independent of the input order
    by_group = {}
    for it in a:
        by_group.setdefault(it.group, set()).add(it.split)
    assert all(len(s) == 1 for s in by_group.values())
    assert sum(s == {"val"} for s in by_group.values()) == 8  # 20% of 40 groups
    others = [{it.image_id: it.split for it in split_items(items, 0.2, seed=s)} for s in (4, 5, 6)]
    assert any(o != b for o in others)
    assert [it.image_id for it in a] == [it.image_id for it in items]


def test_split_items_uses_image_id_without_group_and_leaves_test_alone():
    items = [CaptionItem(Path("/x/a.jpg"), ["a"], "train", str(i)) for i in range(10)]
    items.append(CaptionItem(Path("/x/t.jpg"), ["t"], "test", "t"))
    out = split_items(items, 0.3, seed=1)
    assert sum(it.split == "val" for it in out) == 3 and out[-1].split == "test"
    with pytest.raises(DataError, match="too few"):
        split_items(items[:1], 0.5, seed=1)
    with pytest.raises(DataError, match="between 0 and 1"):
        split_items(items, 1.5, seed=1)


def test_vocab_from_train_items_only():
    items = [CaptionItem(Path("/x/a.jpg"), ["A dog and a cat.", "A dog."], "train", "1"),
             CaptionItem(Path("/x/b.jpg"), ["A zebra."], "val", "2"),
             CaptionItem(Path("/x/c.jpg"), ["A giraffe."], "test", "3")]
    vocab = build_caption_vocab(items)
    assert vocab.tokens[:4] == list(SPECIALS)
    assert vocab.tokens[4:] == ["a", ".", "dog", "and", "cat"]  # by count, ties alphabetical
    assert "zebra" not in vocab.index and "giraffe" not in vocab.index
    assert build_caption_vocab(items, min_count=2).tokens[4:] == ["a", ".", "dog"]
    assert "A" in build_caption_vocab(items, lowercase=False).index
    with pytest.raises(DataError, match="no training items"):
        build_caption_vocab(items[1:])


def test_vocab_counts_a_caption_once_per_group():
    variants = [CaptionItem(Path(f"/x/owl_{v}.jpg"), ["An owl."], "train", str(v), group="birds/owl.png") for v in range(4)]
    other = [CaptionItem(Path("/x/cat.jpg"), ["A cat."], "train", "9")]
    vocab = build_caption_vocab(variants + other, min_count=2)
    assert vocab.tokens[4:] == ["."]  # "owl" is in 4 variants of one stamp: one piece of evidence
    assert "owl" in build_caption_vocab(variants + other).index
