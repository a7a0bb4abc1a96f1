"""Merging caption sets into one Karpathy file: splits and groups kept, ids renumbered, paths resolvable."""

import importlib.util
import json

import pytest
from paths import REPO
from PIL import Image

from edge_s2s.train.caption.composite import Frame, write_caption_files
from edge_s2s.train.caption.data import CaptionSource, load_captions, merge_caption_sets
from edge_s2s.train.core.errors import DataError

SCRIPT = REPO / "scripts" / "merge_captions.py"


def _set(root, name, n):
    """A converter-style set: images/ + captions_*.json + dataset_<name>.json, two frames per group."""
    (root / "images").mkdir(parents=True)
    frames = []
    for i in range(n):
        split = ("train", "val", "test")[i % 3]
        for v in range(2 if split == "train" else 1):
            fname = f"{name}{i}_{v}.jpg"
            Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(root / "images" / fname)
            frames.append(Frame(fname, f"a {name} number {i}", split, {"group": f"g{i}", "variant": v}))
    write_caption_files(root, name, frames, 8, {"description": name})
    return root


@pytest.fixture
def sets(tmp_path):
    return _set(tmp_path / "a", "apple", 6), _set(tmp_path / "b", "bus", 3)


def test_merge_keeps_splits_groups_and_images(sets, tmp_path):
    a, b = sets
    out = tmp_path / "merged" / "dataset_merged.json"
    counts = merge_caption_sets([CaptionSource("apple", a / "dataset_apple.json", a),
                                 CaptionSource("bus", b / "captions_val.json", b / "images", split="val")], out)
    items = load_captions(out, out.parent)
    originals = load_captions(a / "dataset_apple.json", a) + load_captions(b / "captions_val.json", b / "images", "val")
    assert len(items) == len(originals) == sum(sum(c.values()) for c in counts.values())
    assert counts == {"apple": {"train": 4, "val": 2, "test": 2}, "bus": {"train": 0, "val": 1, "test": 0}}
    assert [(it.image.resolve(), it.captions, it.split) for it in items] == \
        [(it.image.resolve(), it.captions, it.split) for it in originals]
    assert len({it.image_id for it in items}) == len(items)
    assert {it.group for it in items} == {f"apple/g{i}" for i in range(6)} | {"bus/g1"}
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["dataset"] == "apple+bus" and data["images"][0]["filepath"] == "../a/images"
    assert data["images"][0]["source"] == "apple" and data["images"][0]["source_id"] == "1"


def test_merge_needs_two_named_sets(sets, tmp_path):
    a, b = sets
    with pytest.raises(DataError, match="two or more"):
        merge_caption_sets([CaptionSource("apple", a / "dataset_apple.json", a)], tmp_path / "m.json")
    with pytest.raises(DataError, match="distinct"):
        merge_caption_sets([CaptionSource("x", a / "dataset_apple.json", a),
                            CaptionSource("x", b / "dataset_bus.json", b)], tmp_path / "m.json")


def test_merge_script(sets, tmp_path, capsys):
    a, b = sets
    spec = importlib.util.spec_from_file_location("merge_captions", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "m" / "all.json"
    assert script.main(["--out", str(out), "--source", "apple", str(a / "dataset_apple.json"), str(a),
                        "--source", "bus", str(b / "dataset_bus.json"), str(b)]) == 0
    assert len(load_captions(out, out.parent)) == 8 + 4
    assert script.main(["--out", str(out), "--source", "apple", str(a / "nope.json"), str(a),
                        "--source", "bus", str(b / "dataset_bus.json"), str(b)]) == 1
    assert "nope.json" in capsys.readouterr().err
