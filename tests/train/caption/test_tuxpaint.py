"""The Tux Paint converter on a small generated stamp tree: scan, split by stamp, composites, determinism."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from paths import REPO
from PIL import Image, ImageDraw

from edge_s2s.train.caption.data import load_coco, load_karpathy
from edge_s2s.train.caption.tuxpaint import (
    ConvertError,
    composite,
    convert,
    find_stamps,
    read_description,
    svg_rasteriser_error,
)
from edge_s2s.train.core.errors import DataError
from edge_s2s.train.core.splits import assign_splits

SCRIPT = REPO / "scripts" / "tuxpaint_to_coco.py"
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
       '<rect x="2" y="2" width="36" height="16" fill="#0a0"/></svg>')


def _cutout(path, colour, shape="ellipse", size=(48, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    getattr(ImageDraw.Draw(im), shape)((4, 4, size[0] - 5, size[1] - 5), fill=colour)
    im.save(path)


def _stamp(root, rel, text=None, colour=(200, 30, 30, 255), **kw):
    _cutout(root / rel, colour, **kw)
    if text is not None:
        (root / rel).with_suffix(".txt").write_text(text, encoding="utf-8")


def make_tree(root: Path) -> Path:
    for i in range(10):
        _stamp(root, f"shapes/shape{i}.png", f"A shape number {i}.\nde.utf8=Eine Form {i}.\n",
               colour=(20 * i, 255 - 20 * i, 90, 255), shape="rectangle" if i % 2 else "ellipse")
    _stamp(root, "animals/cat.png", "A cat.\nde.utf8=Eine Katze.\nfr.utf8=Un chat.\n")
    _stamp(root, "animals/dog.png", "A \u201chappy\u201d  dog.   \r\nde.utf8=Ein Hund.\n", colour=(120, 80, 20, 255))
    _stamp(root, "animals/dog_mirror.png", colour=(120, 80, 20, 255))  # pre-drawn mirror: no text of its own
    _stamp(root, "misc/notext.png")
    _stamp(root, "misc/german.png", "de.utf8=Nur Deutsch.\n")
    Image.new("RGB", (40, 30), (255, 255, 255)).save(root / "misc/opaque.png")
    (root / "misc/opaque.txt").write_text("A white card.\n", encoding="utf-8")
    _stamp(root, "food/apple.png", "An apple.\n")
    (root / "food/apple.svg").write_text(SVG, encoding="utf-8")  # the PNG twin wins
    _stamp(root, "people/fireman.png", "A fireman.\n", colour=(250, 0, 0, 255))
    _stamp(root, "military/fireman.png", "A fireman.\n", colour=(250, 0, 0, 255))  # byte-identical twin
    _stamp(root, "letters/A.png", "The letter A.\n", colour=(0, 0, 0, 255), shape="rectangle")
    (root / "letters/A.dat").write_text("colorable\nnoflip\n", encoding="utf-8")
    (root / "seasonal").mkdir()
    (root / "seasonal/gift.txt").write_text("A gift.\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_tree(tmp_path_factory.mktemp("stamps"))
    out = tmp_path_factory.mktemp("out")
    report = convert(root, out, seed=5, train_variants=3, size=64, workers=1)
    return root, out, report


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_scan_reads_english_first_lines_and_reports_skips(built):
    root, _, report = built
    scan = report.scan
    caps = {s.rel: s.caption for s in scan.stamps}
    assert len(caps) == 17
    assert caps["animals/cat.png"] == "A cat."
    assert caps["animals/dog.png"] == 'A "happy" dog.'
    assert scan.no_text == ["misc/german.png", "misc/notext.png"]
    assert scan.mirrors == ["animals/dog_mirror.png"]
    assert scan.svg_with_png == ["food/apple.svg"]
    assert scan.text_without_image == ["seasonal/gift.txt"]
    groups = {s.rel: s.group for s in scan.stamps}
    assert groups["people/fireman.png"] == groups["military/fireman.png"] == "military/fireman.png"
    assert [s.colorable for s in scan.stamps if s.rel == "letters/A.png"] == [True]


def test_split_by_stamp_and_variants_only_in_train(built):
    _, out, _ = built
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        d = _json(out / f"captions_{split}.json")
        per_stamp: dict[str, list[int]] = {}
        for im in d["images"]:
            assert seen.setdefault(im["stamp"], split) == split  # one split per stamp
            per_stamp.setdefault(im["stamp"], []).append(im["variant"])
        want = [0, 1, 2] if split == "train" else [0]
        assert per_stamp and all(sorted(v) == want for v in per_stamp.values())
        assert len(d["annotations"]) == len(d["images"])
    assert len(seen) == 17
    record = _json(out / "split.json")
    assert record["seed"] == 5 and record["fractions"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert record["counts"]["val"]["groups"] == record["counts"]["test"]["groups"] == 2  # round(16 groups * 0.1)
    assert record["counts"]["train"]["images"] == 3 * record["counts"]["train"]["stamps"]
    assert "GPL-2+" in record["licence"] and "GPL-2+" in (out / "README.md").read_text()
    fire = {seen["people/fireman.png"], seen["military/fireman.png"]}
    assert len(fire) == 1


def test_captions_load_back_in_both_formats(built):
    root, out, _ = built
    caps = {s.rel: s.caption for s in built[2].scan.stamps}
    coco_items = [it for split in ("train", "val", "test")
                  for it in load_coco(out / f"captions_{split}.json", out / "images", split=split)]
    karpathy = load_karpathy(out / "dataset_tuxpaint.json", out)
    assert sorted((it.image_id, it.split, it.image) for it in coco_items) == \
        sorted((it.image_id, it.split, it.image) for it in karpathy)
    by_id = {str(im["id"]): im["stamp"]
             for s in ("train", "val", "test") for im in _json(out / f"captions_{s}.json")["images"]}
    assert all(it.captions == [caps[by_id[it.image_id]]] for it in karpathy)
    assert all(it.group for it in karpathy)
    assert "de.utf8" not in (out / "dataset_tuxpaint.json").read_text()


def test_composites_are_rgb_full_frames(built):
    _, out, _ = built
    files = sorted((out / "images").glob("*.jpg"))
    assert len(files) == len(list(_json(out / "dataset_tuxpaint.json")["images"]))
    corners_white = 0
    for f in files:
        with Image.open(f) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
            a = np.asarray(im, dtype=int)
        corners = a[[0, 0, -1, -1], [0, -1, 0, -1]]
        corners_white += bool((corners > 245).all())
    assert corners_white == 0
    for f in (out / "images").glob("misc__opaque_*.jpg"):  # an opaque stamp still gets a margin
        assert (np.asarray(Image.open(f), dtype=int).min(axis=2) > 240).mean() < 0.9


def test_same_seed_same_bytes_other_seed_differs(built, tmp_path):
    root, out, _ = built
    again = tmp_path / "again"
    convert(root, again, seed=5, train_variants=3, size=64, workers=1)
    for name in ("captions_train.json", "captions_val.json", "captions_test.json", "dataset_tuxpaint.json", "split.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    jpgs = sorted(p.name for p in (out / "images").glob("*.jpg"))
    assert jpgs == sorted(p.name for p in (again / "images").glob("*.jpg"))
    assert all((again / "images" / n).read_bytes() == (out / "images" / n).read_bytes() for n in jpgs)
    other = tmp_path / "other"
    convert(root, other, seed=6, train_variants=3, size=64, workers=1)
    assert (other / "dataset_tuxpaint.json").read_bytes() != (out / "dataset_tuxpaint.json").read_bytes()


def test_composite_scale_and_margin():
    square = Image.new("RGBA", (30, 30), (255, 0, 255, 255))
    for seed in range(6):
        a = np.asarray(composite(square, np.random.default_rng(seed), 80), dtype=int)
        magenta = (np.abs(a - [255, 0, 255]).max(axis=2) < 60).mean()
        assert 0.45**2 * 0.8 <= magenta < 0.95


def test_assign_splits_fractions_and_determinism():
    groups = [f"g{i:03d}" for i in range(100)]
    a = assign_splits(groups, seed=13)
    assert a == assign_splits(list(reversed(groups)), seed=13)
    assert sorted(a.values()).count("val") == 10 and sorted(a.values()).count("test") == 10
    assert a != assign_splits(groups, seed=14)
    with pytest.raises(DataError, match="at least 3"):
        assign_splits(["a", "b"], seed=1)


def test_read_description(tmp_path):
    p = tmp_path / "x.txt"
    p.write_bytes("\ufeff  A calculator.  6x7=42 \nde.utf8=Ein Rechner.\n".encode())
    assert read_description(p) == "A calculator. 6x7=42"
    p.write_text("fr.utf8=Une chose.\n", encoding="utf-8")
    assert read_description(p) == ""


def test_missing_stamps_folder(tmp_path, capsys):
    with pytest.raises(ConvertError, match="apt-get install -y tuxpaint-stamps-default"):
        find_stamps(tmp_path / "nope")
    spec = importlib.util.spec_from_file_location("tuxpaint_to_coco", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--stamps", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "sudo apt-get install -y tuxpaint-stamps-default" in capsys.readouterr().err


def test_svg_stamp_is_rasterised(tmp_path):
    if svg_rasteriser_error():
        pytest.skip(svg_rasteriser_error())
    root = tmp_path / "stamps"
    _stamp(root, "a/one.png", "One.\n")
    _stamp(root, "a/two.png", "Two.\n", colour=(10, 10, 200, 255))
    (root / "a/star.svg").write_text(SVG, encoding="utf-8")
    (root / "a/star.txt").write_text("A green bar.\n", encoding="utf-8")
    report = convert(root, tmp_path / "out", seed=1, train_variants=2, size=64, workers=1)
    assert "a/star.svg" in {s.rel for s in report.scan.stamps}
    for f in (tmp_path / "out/images").glob("a__star_*.jpg"):
        a = np.asarray(Image.open(f), dtype=int)
        green = (a[..., 1] > 120) & (a[..., 0] < 60) & (a[..., 2] < 60)
        assert green.mean() > 0.1  # the bar was drawn, large
