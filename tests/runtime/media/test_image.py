"""Image preprocessing: every input kind gives the same pixels, every bad input one clear line."""

import io
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from PIL import Image

from edge_s2s.runtime.errors import BundleError, InputError
from edge_s2s.runtime.media.image import (
    IMAGE_EXTENSIONS,
    ImageSpec,
    describe,
    expand_image_paths,
    load_image,
    model_view,
    preprocess,
    preprocess_batch,
    to_pixels,
)


def _save(im, path, fmt=None, **kw):
    im.save(path, format=fmt, **kw)
    return path


def _encoded(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, format=fmt, **kw)
    return b.getvalue()


def _noise(w=64, h=48, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _assert_one_line_naming(excinfo, name):
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(name) in msg
    assert ": " in msg  # problem, then the fix


# --- bad files -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="no such file") as e:
        load_image(p)
    _assert_one_line_naming(e, p)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory") as e:
        load_image(tmp_path)
    _assert_one_line_naming(e, tmp_path)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as e:
        load_image(p)
    _assert_one_line_naming(e, p)


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated_file_is_an_error_not_padded(tmp_path, fmt, suffix):
    data = _encoded(_noise(), fmt)
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as e:
        load_image(p)
    _assert_one_line_naming(e, p)
    assert load_image(data).size == (64, 48)  # the whole file decodes


def test_text_file_named_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    with pytest.raises(InputError, match="not an image") as e:
        load_image(p)
    _assert_one_line_naming(e, p)


@pytest.mark.parametrize("name,content,kind", [
    ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    ("logo.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>\n', "SVG"),
    ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
])
def test_unsupported_format_is_named(tmp_path, name, content, kind):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputError, match=kind) as e:
        load_image(p)
    _assert_one_line_naming(e, p)
    assert "PNG or JPEG" in str(e.value)


def test_format_pillow_knows_but_we_do_not_decode(tmp_path):
    p = _save(Image.new("RGB", (8, 8)), tmp_path / "x.tga", "TGA")
    with pytest.raises(InputError, match="TGA") as e:
        load_image(p)
    _assert_one_line_naming(e, p)


def test_pixel_limit_checked_from_header(tmp_path):
    p = _save(Image.new("RGB", (200, 100)), tmp_path / "big.png")
    with pytest.raises(InputError, match="20,000 pixels") as e:
        load_image(p, ImageSpec(max_pixels=19_999))
    _assert_one_line_naming(e, p)
    assert load_image(p, ImageSpec(max_pixels=20_000)).size == (200, 100)


def test_decompression_bomb_header_never_decoded(tmp_path):
    # A PNG that declares 100000 x 100000 pixels and holds none: rejected from its header.
    png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
           + _png_chunk(b"IEND", b""))
    p = tmp_path / "bomb.png"
    p.write_bytes(png)
    for spec in (ImageSpec(), ImageSpec(max_pixels=10**11)):  # ours, then Pillow's hard limit
        with pytest.raises(InputError, match="too large|more than the limit") as e:
            load_image(p, spec)
        _assert_one_line_naming(e, p)


def test_min_side(tmp_path):
    p = _save(Image.new("RGB", (3, 40)), tmp_path / "thin.png")
    with pytest.raises(InputError, match="smaller than") as e:
        load_image(p, ImageSpec(min_side=4))
    _assert_one_line_naming(e, p)


def test_empty_bytes_and_unknown_type():
    with pytest.raises(InputError, match="bytes input.*empty"):
        load_image(b"")
    with pytest.raises(InputError, match="int"):
        load_image(42)
    with pytest.raises(InputError, match="bytes input is not an image"):
        load_image(b"\x00\x01garbage\xff" * 10)


# --- colour modes ----------------------------------------------------------------------


def _px(source, spec=ImageSpec(), xy=(0, 0)):
    im = load_image(source, spec)
    assert im.mode == "RGB"
    return im.getpixel(xy)


def test_one_by_one_image_is_upscaled(tmp_path):
    p = _save(Image.new("RGB", (1, 1), (255, 127, 0)), tmp_path / "dot.png")
    x = preprocess(p)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 100, 100], [1.0, 0.0, -127 / 128], atol=1e-6)
    assert np.ptp(x, axis=(1, 2)).max() < 1e-6  # every pixel the same colour


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    a = np.array([[65535, 32896], [0, 257]], dtype=np.uint16)  # 255, 128, 0, 1 in 8 bits
    p = _save(Image.fromarray(a), tmp_path / "deep.png")
    assert Image.open(p).mode.startswith("I")
    im = load_image(p)
    assert [im.getpixel(xy) for xy in [(0, 0), (1, 0), (0, 1), (1, 1)]] == [(255,) * 3, (128,) * 3, (0,) * 3, (1,) * 3]
    assert _px(Image.fromarray(a.astype(np.int32))) == (255, 255, 255)  # mode "I"


def test_cmyk_jpeg_red(tmp_path):
    p = _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(p).mode == "CMYK"
    r, g, b = _px(p, xy=(8, 8))
    assert r > 240 and g < 15 and b < 15


def test_grey_and_bilevel_and_float(tmp_path):
    assert _px(_save(Image.new("L", (4, 4), 77), tmp_path / "l.png")) == (77, 77, 77)
    assert _px(_save(Image.new("1", (4, 4), 1), tmp_path / "one.png")) == (255, 255, 255)
    assert _px(_save(Image.new("1", (4, 4), 0), tmp_path / "zero.bmp")) == (0, 0, 0)
    assert _px(Image.new("F", (4, 4), 200.0)) == (200, 200, 200)


def test_transparency_composited_on_background(tmp_path):
    blue = ImageSpec(background=(0, 0, 255))
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (255, 0, 0, 128))
    p = _save(rgba, tmp_path / "rgba.png")
    assert _px(p) == (255, 255, 255)  # fully transparent -> default white
    assert _px(p, blue) == (0, 0, 255)
    assert _px(p, xy=(1, 0)) == (255, 0, 0)  # opaque stays
    r, g, b = _px(p, xy=(2, 0))
    assert r == 255 and 120 <= g <= 135 and g == b  # half red over white

    la = Image.new("LA", (4, 4), (100, 0))
    la.putpixel((1, 0), (100, 255))
    p = _save(la, tmp_path / "la.png")
    assert _px(p, blue) == (0, 0, 255)
    assert _px(p, blue, (1, 0)) == (100, 100, 100)


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    pal.putpixel((0, 0), 0)
    p = _save(pal, tmp_path / "p.png")
    assert _px(p, xy=(1, 1)) == (10, 200, 30)
    assert _px(p) == (0, 0, 0)
    p = _save(pal, tmp_path / "pt.png", transparency=0)
    assert Image.open(p).mode == "P" and "transparency" in Image.open(p).info
    assert _px(p, ImageSpec(background=(1, 2, 3))) == (1, 2, 3)  # transparent index -> background
    assert _px(p, xy=(1, 1)) == (10, 200, 30)


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((48, 32, 3), np.uint8)  # 32 wide, 48 tall
    a[:16, :16] = (255, 0, 0)  # red block top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = _save(Image.fromarray(a), tmp_path / "phone.jpg", quality=95, exif=exif.tobytes())
    im = load_image(p)
    assert im.size == (48, 32)
    r, g, b = im.getpixel((40, 8))  # top-left block is now top-right
    assert r > 200 and g < 60 and b < 60
    assert max(im.getpixel((8, 8))) < 60
    assert im.getexif().get(0x0112, 1) == 1


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=50)
    assert getattr(Image.open(p), "n_frames", 1) == 3
    assert _px(p, xy=(4, 4)) == (255, 0, 0)


# --- every input kind gives identical pixels ---------------------------------------------


def test_bytes_pil_numpy_match_path(tmp_path):
    p = _save(_noise(50, 30), tmp_path / "n.png")
    want = preprocess(p)
    assert preprocess(str(p)).tobytes() == want.tobytes()
    assert np.array_equal(preprocess(p.read_bytes()), want)
    assert np.array_equal(preprocess(Image.open(p)), want)
    assert np.array_equal(preprocess(np.asarray(Image.open(p))), want)
    assert np.array_equal(preprocess(np.asarray(Image.open(p)).astype(np.float32) / 255.0), want)


def test_pil_input_not_mutated(tmp_path):
    src = Image.new("RGBA", (10, 6), (255, 0, 0, 0))
    before = src.tobytes()
    x = preprocess(src)
    assert src.mode == "RGBA" and src.size == (10, 6) and src.tobytes() == before
    assert np.allclose(x, 1.0)  # transparent -> white -> (255 - 127) / 128


def test_numpy_grey_and_rgba():
    grey = np.full((5, 7), 127, np.uint8)
    assert np.allclose(preprocess(grey), 0.0)
    assert np.allclose(preprocess(grey[:, :, None]), 0.0)
    rgba = np.zeros((5, 7, 4), np.uint8)  # fully transparent black
    assert np.allclose(preprocess(rgba), 1.0)


@pytest.mark.parametrize("arr,words", [
    (np.zeros((2, 3, 4, 5), np.uint8), "(2, 3, 4, 5)"),
    (np.zeros((4, 5, 2), np.uint8), "(4, 5, 2)"),
    (np.zeros((0, 5, 3), np.uint8), "(0, 5, 3)"),
    (np.zeros((4, 5), np.int64), "int64"),
    (np.full((4, 5, 3), 2.0), "float64"),
    (np.full((4, 5, 3), np.nan, np.float32), "float32"),
])
def test_bad_arrays(arr, words):
    with pytest.raises(InputError) as e:
        load_image(arr)
    assert words in str(e.value) and "array input" in str(e.value)


# --- resize, crop, normalise --------------------------------------------------------------


def _bands():
    """400 x 200: red | green (middle half) | blue."""
    a = np.zeros((200, 400, 3), np.uint8)
    a[:, :100] = (255, 0, 0)
    a[:, 100:300] = (0, 255, 0)
    a[:, 300:] = (0, 0, 255)
    return Image.fromarray(a)


def test_crop_keeps_the_centre():
    v = model_view(_bands(), ImageSpec(size=100, resize="crop"))
    assert v.size == (100, 100) and v.mode == "RGB"
    # scaled to 200 x 100, the centre 100 columns are the green band (50..150 scaled)
    for x in (5, 50, 94):
        r, g, b = v.getpixel((x, 50))
        assert g > 240 and r < 15 and b < 15


def test_squash_keeps_everything():
    v = model_view(_bands(), ImageSpec(size=100, resize="squash"))
    assert v.size == (100, 100)
    assert v.getpixel((5, 50))[0] > 240  # red on the left
    assert v.getpixel((50, 50))[1] > 240  # green in the middle
    assert v.getpixel((95, 50))[2] > 240  # blue on the right


def test_crop_tall_image_shorter_side_is_size():
    a = np.zeros((300, 100, 3), np.uint8)
    a[:100] = 255  # white top third
    v = model_view(Image.fromarray(a), ImageSpec(size=50))
    assert v.size == (50, 50)
    assert np.asarray(v).max() < 30  # the crop is the (black) middle third


def test_to_pixels_normalisation_and_layout():
    a = np.zeros((8, 8, 3), np.uint8)
    a[..., 0], a[..., 1], a[..., 2] = 127, 255, 0
    x = to_pixels(Image.fromarray(a), ImageSpec(size=8))
    assert x.shape == (3, 8, 8) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    assert np.all(x[0] == 0.0) and np.all(x[1] == 1.0) and np.allclose(x[2], -127 / 128)
    y = to_pixels(Image.fromarray(a), ImageSpec(size=8, mean=(0, 0, 0), std=(255, 255, 255)))
    assert np.allclose(y[1], 1.0) and np.allclose(y[0], 127 / 255)


def test_to_pixels_is_bit_for_bit_the_textbook_normalisation():
    """Channels-first in-place arithmetic (the fast path) equals (hwc - mean) / std, transposed."""
    for k, (h, w) in enumerate([(224, 224), (300, 181), (97, 403)]):
        a = _noise(w, h, seed=k)
        spec = ImageSpec(size=224, resize="crop" if k % 2 else "squash", mean=(123.7, 116.3, 103.5),
                         std=(58.4, 57.1, 57.4))
        hwc = np.asarray(model_view(a, spec), np.float32)
        want = ((hwc - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)).transpose(2, 0, 1)
        assert to_pixels(a, spec).tobytes() == np.ascontiguousarray(want).tobytes()


def test_preprocess_is_deterministic(tmp_path):
    p = _save(_noise(333, 251, seed=3), tmp_path / "n.jpg")
    assert preprocess(p).tobytes() == preprocess(p).tobytes()


# --- batches ----------------------------------------------------------------------------


def test_batch_shape_and_rows(tmp_path):
    p = _save(_noise(40, 30), tmp_path / "a.png")
    grey = np.full((9, 9), 255, np.uint8)
    x = preprocess_batch([p, grey, p.read_bytes()], ImageSpec(size=32))
    assert x.shape == (3, 3, 32, 32) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    assert np.array_equal(x[0], preprocess(p, ImageSpec(size=32)))
    assert np.array_equal(x[0], x[2]) and np.allclose(x[1], 1.0)


def test_batch_error_names_the_item(tmp_path):
    good = _save(Image.new("RGB", (4, 4)), tmp_path / "ok.png")
    with pytest.raises(InputError, match=r"^bytes input 2 ") as e:
        preprocess_batch([good, b"not an image", good])
    assert "\n" not in str(e.value)
    missing = tmp_path / "gone.png"
    with pytest.raises(InputError, match="gone.png"):
        preprocess_batch([good, missing])
    with pytest.raises(InputError, match="array input 3"):
        preprocess_batch([good, good, np.zeros((2, 2), np.int8)])
    with pytest.raises(InputError, match="no images"):
        preprocess_batch([])


def test_describe():
    assert describe("a/b.jpg") == "a/b.jpg"
    assert describe(b"x", 3) == "bytes input 4"  # positions count from 1 in messages
    assert describe(Image.new("RGB", (1, 1)), 2) == "PIL image 3"
    assert describe(np.zeros(1), 0) == "array input 1"
    assert describe(b"x") == "bytes input"


# --- the manifest -----------------------------------------------------------------------


def test_spec_manifest_round_trip():
    spec = ImageSpec(size=160, resize="squash", mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0), background=(0, 10, 20),
                     max_pixels=1000, min_side=2)
    d = spec.to_manifest()
    assert d["type"] == "image" and d["resample"] == "bicubic" and d["mean"] == [1.0, 2.0, 3.0]
    import json
    assert ImageSpec.from_manifest(json.loads(json.dumps(d))) == spec
    assert ImageSpec.from_manifest(ImageSpec().to_manifest()) == ImageSpec()


@pytest.mark.parametrize("change,words", [
    ({"type": "text"}, "not 'image'"),
    ({"size": "big"}, "size"),
    ({"size": 0}, "size"),
    ({"resize": "stretch"}, "resize"),
    ({"mean": [1, 2]}, "mean"),
    ({"std": [1, 0, 1]}, "std"),
    ({"background": [0, 0, 300]}, "background"),
    ({"resample": "bilinear"}, "bilinear"),
    ({"crop_fraction": 0.875}, "crop_fraction"),
])
def test_spec_bad_manifest(change, words):
    d = {**ImageSpec().to_manifest(), **change}
    with pytest.raises(BundleError, match=words) as e:
        ImageSpec.from_manifest(d)
    assert "\n" not in str(e.value)


def test_spec_missing_key_and_not_a_dict():
    d = ImageSpec().to_manifest()
    del d["size"]
    with pytest.raises(BundleError, match="size"):
        ImageSpec.from_manifest(d)
    with pytest.raises(BundleError):
        ImageSpec.from_manifest(["image"])


# --- directories ------------------------------------------------------------------------


def test_expand_image_paths(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("b.png", "a.jpg", "C.JPEG", "notes.txt", ".hidden.jpg", "d.webp"):
        (d / name).write_bytes(b"x")
    (d / "sub.png").mkdir()  # a directory with an image suffix is not an image
    (d / "sub.png" / "e.png").write_bytes(b"x")
    missing = tmp_path / "missing.jpg"
    odd = tmp_path / "scan.dat"
    out = expand_image_paths([odd, d, str(missing)])
    assert out == [odd, d / "C.JPEG", d / "a.jpg", d / "b.png", d / "d.webp", missing]
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_EXTENSIONS)


def test_expand_image_paths_empty_directory(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="no image files") as e:
        expand_image_paths([d])
    _assert_one_line_naming(e, d)


# --- the runtime never needs torch ----------------------------------------------------------


def test_image_modules_do_not_import_torch():
    code = textwrap.dedent("""
        import sys
        import edge_s2s.runtime.media.image, edge_s2s.runtime.pictures.attention_map
        bad = sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "onnx", "matplotlib"))
        print("ok" if not bad else bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
