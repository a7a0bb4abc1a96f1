"""`edge-s2s caption`, `train caption`, `export` and `evaluate` for captioners, and the bad-image list."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from edge_s2s.cli.app import run
from edge_s2s.runtime.pictures.attention_map import figure_size


def _cli(capsys, args):
    rc = run(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_one_image_prints_its_caption(capsys, caption_bundle, shapes_data):
    rc, out, err = _cli(capsys, ["caption", "-b", str(caption_bundle), str(shapes_data["images"] / "red_circle_2.jpg")])
    assert rc == 0, err
    assert len(out.splitlines()) == 1 and out.strip()


def test_directory_and_files_json_beam_nbest(capsys, caption_bundle, shapes_data, tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("blue_square_2.jpg", "green_triangle_2.jpg"):
        (d / name).write_bytes((shapes_data["images"] / name).read_bytes())
    extra = shapes_data["images"] / "yellow_circle_2.jpg"
    rc, out, err = _cli(capsys, ["caption", "-b", str(caption_bundle), str(d), str(extra), "--beam", "3",
                                 "--n-best", "2", "--json"])
    assert rc == 0, err
    objs = [json.loads(x) for x in out.splitlines()]
    assert [o["image"].rsplit("/", 1)[-1] for o in objs] == ["blue_square_2.jpg", "green_triangle_2.jpg",
                                                             "yellow_circle_2.jpg"]
    assert all(len(o["hypotheses"]) == 2 and o["hypotheses"][0]["score"] >= o["hypotheses"][1]["score"] for o in objs)
    rc, out, _ = _cli(capsys, ["caption", "-b", str(caption_bundle), str(d)])
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2 and all("\t" in x for x in lines)  # path<TAB>caption when several


def test_attention_picture_has_one_panel_per_word(capsys, caption_bundle, shapes_data, tmp_path):
    img = shapes_data["images"] / "red_square_2.jpg"
    rc, out, err = _cli(capsys, ["caption", "-b", str(caption_bundle), str(img), "--json"])
    words = json.loads(out)["hypotheses"][0]["tokens"]
    target = tmp_path / "att.png"
    rc, out, err = _cli(capsys, ["caption", "-b", str(caption_bundle), str(img), "--attention", str(target)])
    assert rc == 0, err
    with Image.open(target) as im:
        assert im.format == "PNG"
        assert im.size == figure_size(1 + len(words))


def test_attention_directory_for_several_images(capsys, caption_bundle, shapes_data, tmp_path):
    imgs = [str(shapes_data["images"] / n) for n in ("red_square_2.jpg", "blue_circle_2.jpg")]
    rc, _, err = _cli(capsys, ["caption", "-b", str(caption_bundle), *imgs, "--attention", str(tmp_path / "maps")])
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["blue_circle_2.attention.png",
                                                                     "red_square_2.attention.png"]


def _png16(path):
    Image.fromarray(np.full((20, 30), 40000, np.uint16)).save(path)


def _bad_files(tmp_path, good):
    """name -> path of each case in the issue's bad-input list (and whether it must fail)."""
    cases = {}
    cases["missing"] = (tmp_path / "nope.jpg", False)
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases["zero-byte"] = (tmp_path / "empty.jpg", False)
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    cases["truncated jpeg"] = (tmp_path / "cut.jpg", False)
    (tmp_path / "text.jpg").write_text("hello, I am not a picture\n")
    cases["text named .jpg"] = (tmp_path / "text.jpg", False)
    # a PNG header claiming 60000 x 60000 pixels (3.6 gigapixels), a decompression bomb
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    (tmp_path / "bomb.png").write_bytes(png)
    cases["decompression bomb"] = (tmp_path / "bomb.png", False)
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")
    cases["unsupported format"] = (tmp_path / "doc.pdf", False)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tmp_path / "one.png")
    cases["1x1"] = (tmp_path / "one.png", True)
    frames = [Image.new("P", (40, 30), i) for i in (3, 120)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cases["animated gif"] = (tmp_path / "anim.gif", True)
    _png16(tmp_path / "deep.png")
    cases["16-bit png"] = (tmp_path / "deep.png", True)
    Image.open(good).convert("CMYK").save(tmp_path / "cmyk.jpg")
    cases["cmyk jpeg"] = (tmp_path / "cmyk.jpg", True)
    Image.open(good).convert("L").save(tmp_path / "gray.jpg")
    cases["grayscale"] = (tmp_path / "gray.jpg", True)
    return cases


def test_bad_input_list_one_line_each_and_the_rest_captioned(capsys, caption_bundle, shapes_data, tmp_path):
    good = shapes_data["images"] / "green_circle_2.jpg"
    cases = _bad_files(tmp_path, good)
    paths = [str(good)] + [str(p) for p, _ in cases.values()] + [str(good)]
    rc, out, err = _cli(capsys, ["caption", "-b", str(caption_bundle), *paths])
    assert rc == 1
    assert "Traceback" not in err
    captioned = {line.split("\t")[0] for line in out.splitlines()}
    err_lines = err.splitlines()
    for name, (path, ok) in cases.items():
        if ok:
            assert str(path) in captioned, f"{name} should be captioned; stderr: {err}"
        else:
            mine = [e for e in err_lines if str(path) in e]
            assert len(mine) == 1 and mine[0].startswith("error: "), f"{name}: {mine}"
            assert str(path) not in captioned
    assert str(good) in captioned
    n_bad = sum(not ok for _, ok in cases.values())
    assert f"{n_bad} of {len(paths)} images could not be captioned" in err


@pytest.mark.parametrize("args,needle", [
    (["caption"], "no images"),
    (["caption", "EMPTYDIR"], "no image"),
    (["caption", "IMG", "--bundle", "NOBUNDLE"], "does not exist"),
    (["caption", "IMG", "--beam", "0"], "beam"),
])
def test_usage_errors_are_one_line(capsys, caption_bundle, shapes_data, tmp_path, args, needle):
    empty = tmp_path / "emptydir"
    empty.mkdir()
    img = str(shapes_data["images"] / "red_circle_2.jpg")
    args = [{"EMPTYDIR": str(empty), "IMG": img, "NOBUNDLE": str(tmp_path / "nob")}.get(a, a) for a in args]
    if "--bundle" not in args and len(args) > 1 and args[1] == img:
        args += ["--bundle", str(caption_bundle)]
    rc, out, err = _cli(capsys, args)
    assert rc != 0
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0].lower() and "Traceback" not in err


def test_text_bundle_is_refused_by_caption(capsys, cli_bundle, shapes_data):
    rc, out, err = _cli(capsys, ["caption", "-b", str(cli_bundle), str(shapes_data["images"] / "red_circle_2.jpg")])
    assert rc == 1 and err.startswith("error: ") and "not a 'caption' one: run it with `edge-s2s translate`" in err


@pytest.mark.slow
def test_train_export_evaluate_through_the_cli(capsys, shapes_data, caption_cache, tmp_path):
    run_dir, bundle = tmp_path / "run", tmp_path / "bundle"
    rc, out, err = _cli(capsys, ["train", "caption", "--captions", str(shapes_data["coco_train"]), "--val-captions",
                                 str(shapes_data["coco_val"]), "--images", str(shapes_data["images"]), "--out",
                                 str(run_dir), "--epochs", "2", "--batch-size", "8", "--emb-dim", "16", "--dec-hidden",
                                 "32", "--region-dim", "32", "--att-dim", "16", "--vocab-min-count", "1",
                                 "--doubly-stochastic", "0.5", "--tau", "fixed", "--no-progress"])
    assert rc == 0, err
    rc, out, err = _cli(capsys, ["export", str(run_dir), "--out", str(bundle), "--int8", "--int8-parts", "linear"])
    assert rc == 0, err
    assert "parity" in out and "edge-s2s caption" in out
    rc, out, err = _cli(capsys, ["evaluate", str(shapes_data["karpathy"]), "--bundle", str(bundle), "--images",
                                 str(shapes_data["images"]), "--split", "val", "--json"])
    assert rc == 0, err
    scores = json.loads(out)
    assert scores["images"] == 12 and {"BLEU-1", "BLEU-4", "CIDEr-D"} <= set(scores)
    assert 0.0 <= scores["BLEU-1"] <= 1.0


def test_resuming_a_caption_run_as_a_translator_is_one_clear_line(capsys, caption_run):
    rc, out, err = _cli(capsys, ["train", "translate", "--out", str(caption_run), "--resume", "--no-progress"])
    assert rc == 1 and "Traceback" not in err
    assert err.startswith("error: ") and "'caption' run" in err and "edge-s2s train caption" in err


def test_info_summarises_a_caption_bundle(capsys, caption_bundle):
    rc, out, err = _cli(capsys, ["info", str(caption_bundle)])
    assert rc == 0, err
    assert "task        caption" in out and "type=image" in out and "pixels" in out
    assert "6 epochs" in out and "decodes identical" in out
    assert '"history"' not in out  # summarised, not dumped
