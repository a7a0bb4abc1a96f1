"""runtime/pictures/line_plot.py: ticks, the picture (where the lines land, in which colour) and the PNG file."""

import math

import numpy as np
import pytest
from PIL import Image

from edge_s2s.runtime.errors import InputError
from edge_s2s.runtime.pictures.line_plot import (
    PALETTE,
    Layout,
    Panel,
    draw_line_plot,
    nice_ticks,
    save_line_plot,
    tick_label,
)


def _mask(image: Image.Image, colour) -> np.ndarray:
    return np.all(np.asarray(image.convert("RGB")) == np.array(colour, np.uint8), axis=-1)


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (3.37, 5.91), (-2.0, 7.5), (1e-3, 4e-3), (17.0, 16021.0)])
def test_nice_ticks_are_round_evenly_spaced_and_inside(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 11
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_integer_ticks_for_epochs():
    assert nice_ticks(0.8, 8.2, integer=True) == [2, 4, 6, 8]
    assert nice_ticks(0.9, 5.1, integer=True) == [1, 2, 3, 4, 5]
    assert nice_ticks(0.9, 14.1) == [2.5, 5, 7.5, 10, 12.5]  # half epochs without `integer`
    assert nice_ticks(0.9, 14.1, integer=True) == [2, 4, 6, 8, 10, 12, 14]
    assert nice_ticks(1, 25, integer=True) == [5, 10, 15, 20, 25]


def test_tick_labels_have_the_digits_the_spacing_needs():
    assert [tick_label(t, 0.5) for t in (3.5, 4.0)] == ["3.5", "4.0"]
    assert tick_label(2.5, 2.5) == "2.5" and tick_label(5000, 5000) == "5000" and tick_label(0, 0.1) == "0"
    assert tick_label(0.05, 0.05) == "0.05"


def test_lines_land_where_the_data_says_in_their_series_colour():
    rising = [(x, x) for x in range(50)]
    falling = [(x, 100 - 2 * x) for x in range(50)]
    lay = Layout(panel_width=400, panel_height=300, columns=2)
    image = draw_line_plot([Panel("up", "x", "y", {"a": rising}), Panel("down", "x", "y", {"b": falling})],
                           title="t", layout=lay)
    assert image.size[0] == 2 * 400 + 3 * 12
    half = image.size[0] // 2
    for colour, panel_x, goes_up in ((PALETTE[0], 0, True), (PALETTE[1], half, False)):
        m = _mask(image, colour)
        ys, xs = np.nonzero(m[:, panel_x:panel_x + half])
        body = ys > 60  # below the legend swatch
        ys, xs = ys[body], xs[body]
        assert len(xs) > 100, "the series is drawn in its colour"
        left, right = ys[xs < np.median(xs)].mean(), ys[xs >= np.median(xs)].mean()
        assert (right < left) == goes_up  # screen y grows downwards
        other = _mask(image, PALETTE[1] if colour == PALETTE[0] else PALETTE[0])[:, panel_x:panel_x + half]
        assert other[60:].sum() == 0  # each panel holds only its own series


def test_same_series_same_colour_in_every_panel_and_one_legend():
    series = {"run-a": [(1, 3.0), (2, 2.0), (3, 1.5)], "run-b": [(1, 2.5), (2, 2.2), (3, 2.0)]}
    image = draw_line_plot([Panel("loss", "epoch", "nll", series), Panel("score", "epoch", "bleu", series)],
                           layout=Layout(columns=2))
    half = image.size[0] // 2
    for colour in PALETTE[:2]:
        m = _mask(image, colour)
        assert m[:, :half].sum() > 50 and m[:, half:].sum() > 50
    assert _mask(image, PALETTE[2]).sum() == 0  # two series, two colours


def test_gaps_empty_panels_and_log_axis_do_not_break_the_figure():
    pts = [(0, 1.0), (1, float("nan")), (2, None), (3, 0.5), (4, math.inf), (5, 0.25)]
    image = draw_line_plot([Panel("gaps", "x", "y", {"s": pts}), Panel("empty", "x", "y", {}),
                            Panel("log", "step", "loss", {"s": [(1, 10.0), (2, 1.0), (3, 0.1), (4, -1.0)]},
                                  log_y=True), Panel("one point", "x", "y", {"s": [(3, 2.0)]})],
                           layout=Layout(columns=2))
    assert image.size == (2 * 520 + 3 * 12, image.size[1]) and image.size[1] > 2 * 340
    assert _mask(image, PALETTE[0]).sum() > 50


def test_save_writes_a_png_atomically(tmp_path):
    out = tmp_path / "curves.png"
    assert save_line_plot(out, [Panel("p", "x", "y", {"s": [(0, 0.0), (1, 1.0)]})]) == out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB" and im.size[0] > 500
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_save_refuses_with_one_line(tmp_path):
    panel = Panel("p", "x", "y", {"s": [(0, 0.0), (1, 1.0)]})
    for out, words in ((tmp_path / "no" / "such" / "c.png", "does not exist"), (tmp_path, "is a directory"),
                       (tmp_path / "c.xyz", "cannot save")):
        with pytest.raises(InputError, match=words) as e:
            save_line_plot(out, [panel])
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="at least one panel"):
        save_line_plot(tmp_path / "c.png", [])
    assert list(tmp_path.iterdir()) == []
