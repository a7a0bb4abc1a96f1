"""Generated images as a picture (PNG grid) and as terminal ASCII art."""

import os

import numpy as np
import pytest
from PIL import Image

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.pictures.canvas import LABEL_HEIGHT
from edge_s2s.runtime.pictures.sample_grid import (
    RAMP,
    SEPARATOR,
    ascii_preview,
    grid_image,
    grid_size,
    levels_to_gray,
    save_grid,
)

Q = 4  # levels
H, W = 7, 5  # non-square, so swapped axes show up


def _stack(n, value=0):
    return np.full((n, H, W), value, np.uint8)


def _tile(pic, i, cols, scale=4, pad=2, label=0):
    """Pixels of tile i (without its label strip) as an int array."""
    r, c = divmod(i, cols)
    x, y = pad + c * (W * scale + pad), pad + r * (H * scale + label + pad)
    return np.asarray(pic, dtype=int)[y:y + H * scale, x:x + W * scale]


# --- levels -> gray ---------------------------------------------------------------------

def test_levels_to_gray_is_linear_black_to_white():
    g = levels_to_gray(np.arange(Q, dtype=np.uint8), Q)
    assert g.dtype == np.uint8
    assert g.tolist() == [0, 85, 170, 255]
    assert levels_to_gray(np.array([0, 255]), 256).tolist() == [0, 255]
    assert levels_to_gray(np.array([[0, 1]]), 2).tolist() == [[0, 255]]


@pytest.mark.parametrize("bad", [np.array([Q]), np.array([-1]), np.array([0.5])])
def test_levels_out_of_range_or_fractional_are_refused(bad):
    with pytest.raises(InputError, match=r"0\.\.3"):
        levels_to_gray(bad, Q)


@pytest.mark.parametrize("levels", [1, 0, 257, 2.0, True])
def test_bad_levels_count_is_refused(levels):
    with pytest.raises(InputError, match="levels must be an integer"):
        levels_to_gray(np.zeros(3, np.uint8), levels)


# --- grid layout ------------------------------------------------------------------------

@pytest.mark.parametrize("n, cols, rows", [(1, 1, 1), (5, 3, 2), (16, 4, 4)])
def test_default_grid_is_nearly_square(n, cols, rows):
    pic = grid_image(_stack(n), Q, scale=3, pad=2)
    assert pic.mode == "L"
    assert pic.size == (cols * (W * 3 + 2) + 2, rows * (H * 3 + 2) + 2)
    assert pic.size == grid_size(n, H, W, scale=3, pad=2)


def test_explicit_columns_and_more_columns_than_images():
    assert grid_image(_stack(5), Q, columns=5, scale=1, pad=1).size == (5 * (W + 1) + 1, H + 2)
    assert grid_image(_stack(5), Q, columns=2, scale=1, pad=1).size == (2 * (W + 1) + 1, 3 * (H + 1) + 1)
    # 10 columns for 3 images: no empty grey columns on the right
    assert grid_image(_stack(3), Q, columns=10, scale=1, pad=0).size == (3 * W, H)


def test_single_2d_image_is_one_tile():
    assert grid_image(np.zeros((H, W), np.uint8), Q, scale=2, pad=0).size == (2 * W, 2 * H)


def test_white_tile_lands_scaled_at_its_place_and_separators_are_grey():
    imgs = _stack(5, 0)
    imgs[4] = Q - 1  # row 1, column 1 of a 3-column grid
    pic = grid_image(imgs, Q, scale=4, pad=2)
    a = np.asarray(pic, dtype=int)
    assert (_tile(pic, 4, 3) == 255).all()
    for i in (0, 1, 2, 3):
        assert (_tile(pic, i, 3) == 0).all()
    # frame and the gutters between tiles
    assert (a[:2] == SEPARATOR).all() and (a[-2:] == SEPARATOR).all()
    assert (a[:, :2] == SEPARATOR).all() and (a[:, -2:] == SEPARATOR).all()
    gutter_x = 2 + W * 4
    assert (a[:, gutter_x:gutter_x + 2] == SEPARATOR).all()
    gutter_y = 2 + H * 4
    assert (a[gutter_y:gutter_y + 2] == SEPARATOR).all()
    # the empty sixth cell stays grey
    assert (_tile(pic, 5, 3) == SEPARATOR).all()


def test_every_pixel_is_a_scale_square_in_raster_order():
    img = np.arange(H * W, dtype=np.int64).reshape(H, W) % Q
    pic = grid_image(img, Q, scale=3, pad=0)
    a = np.asarray(pic, dtype=int)
    gray = levels_to_gray(img, Q).astype(int)
    assert (a[::3, ::3] == gray).all() and (a[2::3, 2::3] == gray).all()
    assert (a == np.kron(gray, np.ones((3, 3), int))).all()


def test_labels_make_the_grid_taller_and_are_drawn_under_tiles():
    plain = grid_image(_stack(4), Q, scale=4, pad=2)
    pic = grid_image(_stack(4), Q, scale=4, pad=2, labels=["0", "1", "Sneaker", "a very long label indeed"])
    assert pic.mode == "L"
    assert pic.size == (plain.size[0], plain.size[1] + 2 * LABEL_HEIGHT)
    assert pic.size == grid_size(4, H, W, scale=4, pad=2, labels=True)
    a = np.asarray(pic, dtype=int)
    strip = a[2 + H * 4:2 + H * 4 + LABEL_HEIGHT, 2:2 + W * 4]  # under tile 0
    assert (strip < SEPARATOR).any()  # dark text on the grey strip
    assert (_tile(pic, 3, 2, label=LABEL_HEIGHT) == 0).all()  # labels leave the tiles alone


def test_wrong_number_of_labels_is_refused():
    with pytest.raises(InputError, match="2 labels for 3 images"):
        grid_image(_stack(3), Q, labels=["a", "b"])


@pytest.mark.parametrize("images, match", [
    (np.zeros((0, H, W), np.uint8), "empty"),
    (np.zeros((2, 0, W), np.uint8), "empty"),
    (np.zeros(5, np.uint8), r"\[n, H, W\]"),
    (np.zeros((1, 1, H, W), np.uint8), r"\[n, H, W\]"),
    (np.full((2, H, W), Q, np.uint8), r"0\.\.3"),
    (np.array([[["a"]]]), "dtype"),
])
def test_bad_images_are_refused(images, match):
    with pytest.raises(InputError, match=match):
        grid_image(images, Q)


@pytest.mark.parametrize("kw, match", [
    ({"columns": 0}, "columns"), ({"scale": 0}, "scale"), ({"pad": -1}, "pad"), ({"columns": 1.5}, "columns"),
])
def test_bad_layout_is_refused(kw, match):
    with pytest.raises(InputError, match=match):
        grid_image(_stack(2), Q, **kw)


# --- saving -----------------------------------------------------------------------------

def _mixed(n=5):
    rng = np.random.default_rng(0)
    return rng.integers(0, Q, size=(n, H, W)).astype(np.uint8)


def test_save_png_reads_back_equal_to_grid_image(tmp_path):
    imgs = _mixed()
    out = save_grid(tmp_path / "grid.png", imgs, Q, columns=2, labels=list("abcde"))
    assert out == tmp_path / "grid.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "L"
        assert np.array_equal(np.asarray(im), np.asarray(grid_image(imgs, Q, columns=2, labels=list("abcde"))))
    assert os.listdir(tmp_path) == ["grid.png"]  # no temp file left behind


def test_save_format_follows_suffix_and_defaults_to_png(tmp_path):
    bmp = save_grid(tmp_path / "grid.BMP", _mixed(), Q)
    with Image.open(bmp) as im:
        assert im.format == "BMP"
        assert np.array_equal(np.asarray(im.convert("L")), np.asarray(grid_image(_mixed(), Q)))
    bare = save_grid(tmp_path / "grid", _mixed(), Q)
    assert bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match=r"cannot write .*\.nope"):
        save_grid(tmp_path / "grid.nope", _mixed(), Q)
    assert not (tmp_path / "grid.nope").exists()


def test_save_replaces_an_existing_file(tmp_path):
    out = tmp_path / "g.png"
    out.write_bytes(b"old")
    save_grid(out, _stack(1, Q - 1), Q, scale=1, pad=0)
    with Image.open(out) as im:
        assert np.asarray(im).tolist() == [[255] * W] * H


def _assert_one_line_cannot_write(e: pytest.ExceptionInfo):
    msg = str(e.value)
    assert msg.startswith("cannot write ") and msg.endswith("; choose a writable path")
    assert "\n" not in msg


def test_missing_directory_is_refused(tmp_path):
    target = tmp_path / "nope" / "grid.png"
    with pytest.raises(InputError, match="does not exist") as e:
        save_grid(target, _stack(1), Q)
    _assert_one_line_cannot_write(e)
    assert not target.parent.exists()


def test_directory_as_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory") as e:
        save_grid(tmp_path, _stack(1), Q)
    _assert_one_line_cannot_write(e)
    assert os.listdir(tmp_path) == []


def test_file_as_directory_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a directory") as e:
        save_grid(tmp_path / "f" / "grid.png", _stack(1), Q)
    _assert_one_line_cannot_write(e)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable") as e:
            save_grid(ro / "grid.png", _stack(1), Q)
        _assert_one_line_cannot_write(e)
        assert os.listdir(ro) == []
    finally:
        ro.chmod(0o755)


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "grid.png"
    out.write_bytes(b"previous grid")

    def half_then_disk_full(self, fp, format=None, **params):
        fp.write(b"\x89PNG\r\n\x1a\nhalf an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_then_disk_full)
    with pytest.raises(InputError, match="No space left on device") as e:
        save_grid(out, _mixed(), Q)
    _assert_one_line_cannot_write(e)
    assert out.read_bytes() == b"previous grid"
    assert os.listdir(tmp_path) == ["grid.png"]  # the temp file is gone too


def test_failed_first_write_creates_nothing(tmp_path, monkeypatch):
    def boom(self, fp, format=None, **params):
        fp.write(b"partial")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(InputError, match="cannot write"):
        save_grid(tmp_path / "grid.png", _mixed(), Q)
    assert os.listdir(tmp_path) == []


def test_bad_images_fail_before_anything_is_written(tmp_path):
    with pytest.raises(InputError, match="empty"):
        save_grid(tmp_path / "grid.png", np.zeros((0, H, W), np.uint8), Q)
    assert os.listdir(tmp_path) == []


# --- ascii preview ----------------------------------------------------------------------

def test_ascii_preview_shape_is_h_lines_of_2w_chars():
    text = ascii_preview(_mixed(1)[0], Q)
    lines = text.split("\n")
    assert len(lines) == H
    assert all(len(line) == 2 * W for line in lines)
    assert all(line[j] == line[j + 1] for line in lines for j in range(0, 2 * W, 2))


def test_ascii_preview_dark_and_bright_map_to_the_ramp_ends():
    img = np.zeros((H, W), np.uint8)
    img[0, 0] = Q - 1
    lines = ascii_preview(img, Q).split("\n")
    assert lines[0][:2] == RAMP[-1] * 2
    assert lines[0][2:] == RAMP[0] * (2 * W - 2)
    assert set("".join(lines[1:])) == {RAMP[0]}
    mid = ascii_preview(np.arange(256, dtype=np.uint8).reshape(16, 16), 256)
    assert mid[0] == RAMP[0] and mid[-1] == RAMP[-1]
    assert set(mid) - {"\n"} == set(RAMP)  # every shade of the ramp is used on a full gradient


@pytest.mark.parametrize("image, match", [
    (np.zeros((2, H, W), np.uint8), r"\[H, W\]"),
    (np.zeros(W, np.uint8), r"\[H, W\]"),
    (np.zeros((0, W), np.uint8), "empty"),
    (np.full((H, W), Q, np.uint8), r"0\.\.3"),
])
def test_ascii_preview_bad_input_is_refused(image, match):
    with pytest.raises(InputError, match=match):
        ascii_preview(image, Q)


def test_unwritable_directory_is_refused_even_as_root(tmp_path, monkeypatch):
    """The permission check itself, where root would bypass a real read-only directory."""
    real_access = os.access
    monkeypatch.setattr(os, "access",
                        lambda p, mode: False if os.fspath(p) == os.fspath(tmp_path) else real_access(p, mode))
    with pytest.raises(InputError, match="not writable") as e:
        save_grid(tmp_path / "grid.png", _stack(1), Q)
    _assert_one_line_cannot_write(e)
    assert os.listdir(tmp_path) == []
