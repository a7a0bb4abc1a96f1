"""Line plots to PNG with Pillow (no matplotlib): learning curves, schedules, any y over x.

A figure is a grid of panels; each panel has a title, axis labels and named series of
(x, y) points. A series keeps its colour in every panel (the same run is the same colour
in the loss and the score panel), and one legend above the panels names them all.
Axes get "nice" ticks (1, 2, 2.5, 5 x 10^k) with labels; non-finite points break a line
instead of wrecking the scale; short series get a dot on every point so that a curve of
three epochs still reads as three measurements.

    save_line_plot(Path("curves.png"), [Panel("training loss", "step", "loss", {"run": [(1, 2.3), ...]})])

Pillow only (it draws no tensors; a results script can pass any numbers).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..output_files import check_writable, write_atomic
from .canvas import _fit, _format_for, _text

# tab10: distinct on white, and what readers of learning curves are used to
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
TEXT, AXIS, GRID, WHITE = (0, 0, 0), (90, 90, 90), (228, 228, 228), (255, 255, 255)
MARGIN = 12
TICK = 4
DOTS_UP_TO = 60  # when no series of a panel has more points, each point gets a dot


@dataclass
class Panel:
    """One plot: `series` maps a name (legend entry) to its (x, y) points, drawn in x order."""

    title: str
    x_label: str
    y_label: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    log_y: bool = False  # logarithmic y axis (non-positive values are left out)


@dataclass
class Layout:
    """Pixel sizes of the figure; the defaults read well at 100% on a laptop screen."""

    panel_width: int = 520
    panel_height: int = 340
    columns: int = 3
    font_size: int = 13
    title_size: int = 15


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType: the bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, target: int = 6, integer: bool = False) -> list[float]:
    """About `target` round tick values inside [lo, hi] (steps of 1, 2, 2.5 or 5 x 10^k);
    `integer` keeps the steps whole (epochs: no 2.5)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got {lo}..{hi}")
    if hi <= lo:
        return [lo]
    mag = 10.0 ** math.floor(math.log10((hi - lo) / max(target, 1)))
    mults = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    steps = [m * mag * f for f in (0.1, 1, 10) for m in mults if not integer or m * mag * f >= 1] or [1.0]

    def count(step: float) -> int:
        return math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1

    step = min(steps, key=lambda st: (abs(count(st) - target), -st))  # closest to target; fewer on a tie
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks if ticks or not integer else nice_ticks(lo, hi, target)


def tick_label(v: float, step: float) -> str:
    """A tick value with just the digits its spacing needs (1e+04 style only for huge or tiny)."""
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-4:
        return f"{v:.2g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 2
    if step > 0 and round(step, decimals) != round(step, decimals + 1):
        decimals += 1  # 2.5 x 10^k needs one more digit
    return f"{v:.{decimals}f}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log axis: powers of ten, with 2 and 5 between them when the range is short."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a <= 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(a, b + 1) for m in mults]
    inside = [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]
    return inside if len(inside) >= 2 else [lo, hi]


def _clean(points: list[tuple[float, float]], log_y: bool) -> list[list[tuple[float, float]]]:
    """Points sorted by x, split into runs of finite values (a NaN or None breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in sorted(((float(x), y) for x, y in points if x is not None and math.isfinite(float(x))),
                       key=lambda p: p[0]):
        ok = y is not None and math.isfinite(float(y)) and (not log_y or float(y) > 0)
        if ok:
            runs[-1].append((x, float(y)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _range(values: list[float], pad: float, log: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo < 1e-12:
        d = abs(lo) * 0.1 or 1.0
        lo, hi = lo - d, hi + d
    else:
        lo, hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
    return (10.0 ** lo, 10.0 ** hi) if log else (lo, hi)


def _colours(panels: list[Panel]) -> dict[str, tuple[int, int, int]]:
    names = list(dict.fromkeys(name for p in panels for name in p.series))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _legend_rows(draw: ImageDraw.ImageDraw, names: list[str], width: int, font) -> list[list[str]]:
    rows: list[list[str]] = [[]]
    used = 0
    for name in names:
        w = 26 + draw.textlength(name, font=font) + 18
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0
        rows[-1].append(name)
        used += w
    return rows


def draw_line_plot(panels: list[Panel], title: str | None = None, layout: Layout | None = None) -> Image.Image:
    """The figure as an RGB image: optional title, the legend, then the panels row by row."""
    if not panels:
        raise InputError("nothing to plot: pass at least one panel")
    lay = layout or Layout()
    font, big = _font(lay.font_size), _font(lay.title_size)
    line = lay.font_size + 6
    cols = max(1, min(lay.columns, len(panels)))
    rows = math.ceil(len(panels) / cols)
    width = cols * lay.panel_width + (cols + 1) * MARGIN
    colours = _colours(panels)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    legend = _legend_rows(probe, list(colours), width - 2 * MARGIN, font) if colours else []
    top = MARGIN + (lay.title_size + 10 if title else 0) + len(legend) * line + (6 if legend else 0)
    height = top + rows * (lay.panel_height + MARGIN)
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    y = MARGIN
    if title:
        _text(draw, (MARGIN, y), _fit(draw, title, width - 2 * MARGIN, big), TEXT, big)
        y += lay.title_size + 10
    for names in legend:
        x = MARGIN
        for name in names:
            draw.line([(x, y + line // 2 - 2), (x + 20, y + line // 2 - 2)], fill=colours[name], width=3)
            _text(draw, (x + 26, y), name, TEXT, font)
            x += 26 + draw.textlength(name, font=font) + 18
        y += line
    for i, panel in enumerate(panels):
        r, c = divmod(i, cols)
        box = (MARGIN + c * (lay.panel_width + MARGIN), top + r * (lay.panel_height + MARGIN))
        _draw_panel(image, draw, panel, box, lay, colours, font, big)
    return image


def _draw_panel(image: Image.Image, draw: ImageDraw.ImageDraw, panel: Panel, box: tuple[int, int], lay: Layout,
                colours: dict, font, big) -> None:
    x0, y0 = box
    line = lay.font_size + 6
    _text(draw, (x0, y0), _fit(draw, panel.title, lay.panel_width, big), TEXT, big)
    curves = {name: _clean(pts, panel.log_y) for name, pts in panel.series.items()}
    xs = [x for runs in curves.values() for run in runs for x, _ in run]
    ys = [y for runs in curves.values() for run in runs for _, y in run]
    plot_top = y0 + lay.title_size + 10
    plot_bottom = y0 + lay.panel_height - 2 * line - 4  # room for the tick labels and the x label
    if not xs:
        _text(draw, (x0 + 10, (plot_top + plot_bottom) // 2), "no data", AXIS, font)
        return
    x_lo, x_hi = _range(xs, 0.02, False) if len(set(xs)) > 1 else (xs[0] - 1, xs[0] + 1)
    whole = all(float(x).is_integer() for x in xs)
    y_lo, y_hi = _range(ys, 0.05, panel.log_y)
    if panel.log_y:
        y_ticks = _log_ticks(y_lo, y_hi)
        y_labels = [f"{t:g}" for t in y_ticks]
    else:
        y_ticks = nice_ticks(y_lo, y_hi)
        step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 0.0
        y_labels = [tick_label(t, step) for t in y_ticks]
    x_ticks = nice_ticks(x_lo, x_hi, target=6, integer=whole)
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 0.0
    label_w = max(draw.textlength(t, font=font) for t in y_labels)
    plot_left = x0 + line + int(label_w) + TICK + 6  # the rotated y label, then the tick labels
    plot_right = x0 + lay.panel_width - 8

    def px(x: float) -> float:
        return plot_left + (x - x_lo) / (x_hi - x_lo) * (plot_right - plot_left)

    def py(y: float) -> float:
        if panel.log_y:
            f = (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        else:
            f = (y - y_lo) / (y_hi - y_lo)
        return plot_bottom - f * (plot_bottom - plot_top)

    for t, text in zip(y_ticks, y_labels):
        yy = py(t)
        draw.line([(plot_left, yy), (plot_right, yy)], fill=GRID)
        draw.line([(plot_left - TICK, yy), (plot_left, yy)], fill=AXIS)
        _text(draw, (plot_left - TICK - 3 - draw.textlength(text, font=font), yy - lay.font_size / 2 - 2), text,
              TEXT, font)
    for t in x_ticks:
        xx = px(t)
        text = tick_label(t, x_step)
        draw.line([(xx, plot_top), (xx, plot_bottom)], fill=GRID)
        draw.line([(xx, plot_bottom), (xx, plot_bottom + TICK)], fill=AXIS)
        w = draw.textlength(text, font=font)
        _text(draw, (min(max(xx - w / 2, plot_left - 10), plot_right - w), plot_bottom + TICK + 2), text, TEXT,
              font)
    draw.rectangle([plot_left, plot_top, plot_right, plot_bottom], outline=AXIS)
    xl = _fit(draw, panel.x_label, plot_right - plot_left, font)
    _text(draw, ((plot_left + plot_right - draw.textlength(xl, font=font)) / 2, plot_bottom + TICK + line), xl,
          TEXT, font)
    _y_label(image, panel.y_label, x0, (plot_top + plot_bottom) // 2, plot_bottom - plot_top, font, line)

    dots = max(sum(len(r) for r in runs) for runs in curves.values()) <= DOTS_UP_TO  # alike for the whole panel
    for name, runs in curves.items():
        colour = colours[name]
        for run in runs:
            pts = [(px(x), py(y)) for x, y in run]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=2, joint="curve")
            if dots:
                for x, y in pts:
                    draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)


def _y_label(image: Image.Image, text: str, x: int, cy: int, room: int, font, line: int) -> None:
    """The y axis label, written bottom to top, centred on the plot's height."""
    probe = ImageDraw.Draw(image)
    text = _fit(probe, text, room, font)
    w = max(1, int(math.ceil(probe.textlength(text, font=font))))
    label = Image.new("RGB", (w, line), WHITE)
    _text(ImageDraw.Draw(label), (0, 0), text, TEXT, font)
    label = label.rotate(90, expand=True)
    image.paste(label, (x, cy - w // 2))


def save_line_plot(out: str | os.PathLike, panels: list[Panel], title: str | None = None,
                   layout: Layout | None = None) -> Path:
    """Draw `panels` and write them to `out` (PNG unless the suffix says otherwise), atomically.

    Fails before drawing, with one line, when `out` cannot be written.
    """
    path = check_writable(out)
    fmt = _format_for(path)
    image = draw_line_plot(panels, title, layout)
    return write_atomic(path, lambda f: image.save(f, format=fmt))
