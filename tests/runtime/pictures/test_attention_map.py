"""The attention picture: one panel per word, heat where the decoder looked."""

import numpy as np
import pytest
from PIL import Image

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.media.image import ImageSpec
from edge_s2s.runtime.pictures.attention_map import (
    MARGIN,
    attention_figure,
    figure_size,
    heat_colormap,
    save_attention_figure,
)
from edge_s2s.runtime.pictures.canvas import LABEL_HEIGHT

PANEL = 224


def _image():
    return Image.fromarray(np.full((120, 160, 3), 128, np.uint8))  # flat grey: only the heat differs


def _peaked(words, region=0, grid=(7, 7)):
    att = np.full((len(words), grid[0] * grid[1]), 1e-4, np.float32)
    att[:, region] = 1.0
    return att / att.sum(axis=1, keepdims=True)


def _panel(fig, i, columns=5, panel=PANEL):
    r, c = divmod(i, columns)
    x, y = MARGIN + c * (panel + MARGIN), MARGIN + r * (panel + LABEL_HEIGHT + MARGIN)
    return np.asarray(fig.crop((x, y, x + panel, y + panel))).astype(int)


def test_writes_png_with_the_panel_grid(tmp_path):
    words = ["a", "dog", "runs", "on", "the", "grass", "."]
    out = tmp_path / "att.png"
    n = save_attention_figure(out, _image(), words, _peaked(words), columns=5)
    assert n == 1 + len(words)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        # 8 panels, 5 a row -> 5 columns x 2 rows of panel + label strip
        assert im.size == (5 * (PANEL + MARGIN) + MARGIN, 2 * (PANEL + LABEL_HEIGHT + MARGIN) + MARGIN)
        assert im.size == figure_size(8, 5, PANEL)


def test_few_words_use_fewer_columns():
    fig = attention_figure(_image(), ["hi"], _peaked(["hi"]), columns=5, panel=64)
    assert fig.size == (2 * (64 + MARGIN) + MARGIN, 64 + LABEL_HEIGHT + MARGIN + MARGIN)


def test_peak_on_region_zero_is_hot_top_left():
    words = ["a", "cat"]
    fig = attention_figure(_image(), words, _peaked(words, region=0))
    for i in (1, 2):
        p = _panel(fig, i)
        tl, br = p[:32, :32].mean(axis=(0, 1)), p[-32:, -32:].mean(axis=(0, 1))
        assert tl[0] - tl[2] > 40  # red over blue where it looked
        assert br[2] - br[0] > 40  # blue over red where it did not
    # the input panel is the plain model view
    assert np.abs(_panel(fig, 0) - 128).max() <= 1


def test_peak_moves_with_the_region():
    words = ["x"]
    fig = attention_figure(_image(), words, _peaked(words, region=48))  # bottom-right region of 7x7
    p = _panel(fig, 1)
    assert p[-32:, -32:, 0].mean() > p[:32, :32, 0].mean() + 40


def test_label_is_written_under_the_panel():
    fig = attention_figure(_image(), ["word"], _peaked(["word"]), panel=64)
    strip = np.asarray(fig)[MARGIN + 64: MARGIN + 64 + LABEL_HEIGHT, MARGIN + 64 + MARGIN: MARGIN + 2 * 64 + MARGIN]
    assert strip.min() < 100  # dark text pixels on the white strip


def test_uniform_attention_and_long_words_do_not_fail():
    words = ["supercalifragilisticexpialidocious" * 3, "ü"]
    att = np.full((2, 49), 1 / 49, np.float32)
    fig = attention_figure(_image(), words, att)
    assert fig.size == figure_size(3)
    assert np.isfinite(np.asarray(fig, dtype=float)).all()


def test_non_square_grid_and_image_input(tmp_path):
    p = tmp_path / "in.png"
    _image().save(p)
    att = _peaked(["w"], region=0, grid=(2, 3))
    fig = attention_figure(p, ["w"], att, grid=(2, 3), spec=ImageSpec(size=96), panel=96)
    assert fig.size == figure_size(2, 5, 96)


def test_colormap_ends():
    c = heat_colormap(np.array([0.0, 0.5, 1.0]))
    assert c.shape == (3, 3) and c.dtype == np.uint8
    assert c[0, 2] > c[0, 0] and c[2, 0] > c[2, 2] and c[1, 1] == 255


@pytest.mark.parametrize("words,shape,grid", [
    (["a", "b"], (3, 49), (7, 7)),
    (["a", "b"], (2, 48), (7, 7)),
    (["a"], (1, 49), (6, 6)),
    (["a"], (49,), (7, 7)),
])
def test_bad_shapes(words, shape, grid):
    with pytest.raises(InputError) as e:
        attention_figure(_image(), words, np.zeros(shape, np.float32), grid=grid)
    msg = str(e.value)
    assert str(shape) in msg and str((len(words), grid[0] * grid[1])) in msg and "\n" not in msg


def test_unwritable_destination(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "att.png"
    with pytest.raises(InputError, match="does not exist") as e:
        save_attention_figure(missing, _image(), ["a"], _peaked(["a"]))
    assert str(missing.parent) in str(e.value) and not missing.exists()
    with pytest.raises(InputError, match="directory"):
        save_attention_figure(tmp_path, _image(), ["a"], _peaked(["a"]))
