"""Heat maps of a trace over time, like the copy-task figures of Graves et al. 2014 (Fig. 6).

One panel per traced weighting and head ("write weighting, head 1": x = time step, y =
memory slot; a translator's attention: x = output token, y = source position), brightness
= weight (black 0, white = the panel's largest weight, through red and yellow, so
brightness grows with the weight, unlike the jet map of `attention_map`). The tokens are
written along the time axis (every one when the cells are wide enough, else every few),
forced prefix tokens in grey, and a cyan line marks where the forced prefix ends and the
model's own output begins. A tensor that is not a weighting (`--trace-memory` states) is
drawn over time when it is [T, D] (black = its min, white = its max), and as a snapshot
after the last step when it is [T, A, B] (the NTM memory matrix: y = slot, x = column).
Titles and axis names come from the bundle's state schema (`StateSpec.title`, `.axes`, copied
into the trace's info), so this module knows no model family.

Cells are scaled up (up to 16 px, at least 4 px while a 1600 px wide map allows it) and the
total size is capped, so 20-100 steps over 16-128 slots stay readable. Pillow + numpy only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..manifest import ATTENTION
from ..output_files import check_writable, write_atomic
from ..tools.trace import Trace
from .canvas import _fit, _format_for, _text, hot_colormap

MAX_CELL = 16  # px per cell at most (short traces, few slots)
MAX_MAP_WIDTH = 1600  # px of the widest heat map (cells shrink below MAX_CELL to fit)
MAX_MAPS_HEIGHT = 3200  # px of all heat maps together
MAX_PANEL_HEIGHT = 512  # px of one heat map
MIN_PANEL_HEIGHT = 96
MIN_WIDTH = 760  # room for the title and legend lines
MARGIN = 10
LINE = 14  # px per text line
TOKEN_CHARS = 10  # longer tokens are shortened on the time axis
BOUNDARY = (0, 190, 255)  # cyan: end of the forced prefix
FORCED_TEXT, TEXT = (130, 130, 130), (0, 0, 0)


@dataclass
class Panel:
    """One heat map: values [rows, columns] scaled to [0, 1], and what its axes mean."""

    title: str
    values: np.ndarray
    over_time: bool  # columns are the trace's steps (tokens under them), else a snapshot's columns
    axes: str  # "y = memory slot", ...
    legend: str  # what white and black stand for
    row_labels: list[str] | None = None

    @property
    def label(self) -> str:
        return f"{self.title}: {self.axes}; {self.legend}"


@dataclass
class Box:
    """Where a panel's heat map landed: top-left corner and cell size, in pixels."""

    x: int
    y: int
    cell_w: int
    cell_h: int
    rows: int
    cols: int


@dataclass
class TraceFigure:
    image: Image.Image
    panels: list[Panel]
    boxes: list[Box] = field(default_factory=list)


def _state_title(name: str, info: dict) -> str:
    """What the manifest calls a state ("write weighting"; its `title`), else its name."""
    return str((info.get("state_titles") or {}).get(name) or name)


def _state_axes(name: str, info: dict) -> list[str]:
    """The manifest's display names of a state's axes, row axis first ([] when it has none)."""
    return [str(a) for a in (info.get("state_axes") or {}).get(name) or []]


def _scaled(v: np.ndarray, weighting: bool) -> tuple[np.ndarray, str]:
    """Values -> [0, 1] and the legend: weightings by their max, anything else min..max."""
    v = np.nan_to_num(v.astype(np.float32))
    if weighting:
        hi = float(v.max()) if v.size else 0.0
        return (v / hi if hi > 0 else np.zeros_like(v)), f"white = {hi:.2f}"
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    return scaled, f"black = {lo:.2g}, white = {hi:.2g}"


def trace_panels(trace: Trace, names: Sequence[str] | None = None) -> list[Panel]:
    """The panels for `names` (default: the trace's weightings, or every tensor when it has none)."""
    if names:
        unknown = [n for n in names if n not in trace.tensors]
        if unknown:
            raise InputError(f"the trace has no tensor {', '.join(map(repr, unknown))}: choose from "
                             f"{', '.join(trace.tensors)}")
        names = list(dict.fromkeys(names))
    else:
        names = trace.weightings or list(trace.tensors)
    states = trace.info.get("states", {})
    source = trace.info.get("source_tokens")
    panels: list[Panel] = []
    for name in names:
        v = np.asarray(trace.tensors[name])
        if v.dtype.kind not in "fiub":
            raise InputError(f"trace tensor {name!r} is not numeric ({v.dtype}): trace the output again")
        T = v.shape[0]
        title, axes = _state_title(name, trace.info), _state_axes(name, trace.info)
        if name in trace.weightings:
            positional = name == ATTENTION or (states.get(name) or [None])[-1] == "L"
            y_name = axes[-1] if axes else "source position" if positional else "position"
            labels = list(source) if positional and source and len(source) == v.shape[-1] else None
            heads = v.reshape(T, -1, v.shape[-1])  # middle axes: one head each
            for h in range(heads.shape[1]):
                values, legend = _scaled(heads[:, h].T, True)
                head = f", head {h + 1}" if v.ndim > 2 else ""
                panels.append(Panel(f"{title}{head}", values, True, f"y = {y_name}", legend, labels))
        elif v.ndim == 3:
            values, legend = _scaled(v[-1], False)
            y_name, x_name = (axes[1], axes[2]) if len(axes) == 3 else ("row", "column")
            panels.append(Panel(f"{title} after the last step", values, False, f"x = {x_name}, y = {y_name}",
                                legend))
        else:
            values, legend = _scaled(v.reshape(T, -1).T, False)
            panels.append(Panel(title, values, True, f"y = {axes[-1] if axes else 'unit'}", legend))
    return panels


def _font():
    return ImageFont.load_default()


def _short(token: str) -> str:
    return token if len(token) <= TOKEN_CHARS else token[: TOKEN_CHARS - 2] + ".."


def _every(px_per_item: int) -> int:
    """Label every k-th item so that labels LINE px tall do not overlap (k from 1, 2, 4, 5, 10, ...)."""
    need = math.ceil(LINE / max(px_per_item, 1))
    for k in (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100):
        if k >= need:
            return k
    return need


def draw_trace(trace: Trace, names: Sequence[str] | None = None) -> TraceFigure:
    """The whole figure: a title, then the panels stacked, each with its label, map and time axis."""
    panels = trace_panels(trace, names)
    if not panels:
        raise InputError("the trace has nothing to draw: trace again with --trace-memory")
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    T = trace.steps
    widest = max(p.values.shape[1] for p in panels)
    cell_w = max(1, min(MAX_CELL, MAX_MAP_WIDTH // max(T, 1)))
    snap_w = max(1, min(MAX_CELL, MAX_MAP_WIDTH // max(widest, 1)))
    budget = max(MIN_PANEL_HEIGHT, min(MAX_PANEL_HEIGHT, MAX_MAPS_HEIGHT // len(panels)))
    cells_h = [max(1, min(MAX_CELL, budget // p.values.shape[0])) for p in panels]
    row_texts = [_row_labels(p, ch) for p, ch in zip(panels, cells_h)]
    left = MARGIN + max([probe.textlength(t, font=font) for rows in row_texts for _, t in rows] + [20]) + 6
    left = int(math.ceil(left))
    tokens = [_short(t) for t in trace.tokens]
    token_h = int(math.ceil(max(probe.textlength(t, font=font) for t in tokens))) + 8 if tokens else LINE
    maps_w = [(cell_w if p.over_time else snap_w) * p.values.shape[1] for p in panels]
    width = max(left + max(maps_w) + MARGIN, MIN_WIDTH)

    heights = [LINE + 4 + ch * p.values.shape[0] + (token_h if p.over_time else 6) + MARGIN
               for p, ch in zip(panels, cells_h)]
    top = MARGIN + 2 * LINE + 6
    canvas = Image.new("RGB", (width, top + sum(heights)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    _title(draw, trace, font, width)

    boxes: list[Box] = []
    y = top
    P = trace.prefix_length
    for p, ch, rows, h in zip(panels, cells_h, row_texts, heights):
        cw = cell_w if p.over_time else snap_w
        R, C = p.values.shape
        _text(draw, (MARGIN, y), _fit(draw, p.label, width - 2 * MARGIN, font), TEXT, font)
        my = y + LINE + 4
        tile = hot_colormap(p.values).repeat(ch, axis=0).repeat(cw, axis=1)
        canvas.paste(Image.fromarray(tile), (left, my))
        for r, text in rows:
            ty = my + r * ch + ch / 2 - LINE / 2
            _text(draw, (left - 6 - draw.textlength(text, font=font), ty), text, TEXT, font)
        if p.over_time:
            _time_axis(canvas, draw, tokens, trace.forced, left, my + R * ch, cw, font)
            if 0 < P < T:
                bx = left + P * cw - 1
                draw.line([(bx, my - 2), (bx, my + R * ch + token_h - 4)], fill=BOUNDARY, width=2)
        boxes.append(Box(left, my, cw, ch, R, C))
        y += h
    return TraceFigure(canvas, panels, boxes)


def _row_labels(p: Panel, cell_h: int) -> list[tuple[int, str]]:
    """(row, text) pairs for the y axis: every row's source token when it fits, else every k-th index."""
    R = p.values.shape[0]
    k = _every(cell_h)
    if p.row_labels is not None and k == 1:
        return [(r, _short(t)) for r, t in enumerate(p.row_labels)]
    return [(r, str(r)) for r in range(0, R, k)]


def _time_axis(canvas: Image.Image, draw: ImageDraw.ImageDraw, tokens: list[str], forced: list[bool], x0: int,
               y0: int, cell_w: int, font) -> None:
    """Ticks and the tokens, written top to bottom under their columns (every k-th when narrow)."""
    k = _every(cell_w)
    for t in range(0, len(tokens), k):
        cx = x0 + t * cell_w + cell_w // 2
        draw.line([(cx, y0), (cx, y0 + 2)], fill=TEXT)
        w = max(1, int(math.ceil(draw.textlength(tokens[t], font=font))))
        label = Image.new("RGB", (w, LINE), (255, 255, 255))
        _text(ImageDraw.Draw(label), (0, 0), tokens[t], FORCED_TEXT if forced[t] else TEXT, font)
        label = label.rotate(270, expand=True)  # reads top to bottom, hanging from the axis
        canvas.paste(label, (cx - LINE // 2, y0 + 5))


def _title(draw: ImageDraw.ImageDraw, trace: Trace, font, width: int) -> None:
    info = trace.info
    model = info.get("model") or {}
    arch = model.get("architecture") or model.get("decoder") or ""
    what = " ".join(x for x in (str(info.get("task", "")), str(arch)) if x)
    P, T = trace.prefix_length, trace.steps
    bundle = Path(str(info["bundle"])).name if info.get("bundle") else ""
    line1 = (f"{what} trace: {T} steps, {P} forced + {T - P} generated, log p = {trace.log_prob:.2f}"
             + (f"  ({bundle})" if bundle else ""))
    x_name = "output token" if info.get("source_tokens") else "time step"
    line2 = (f"x = {x_name} (the token it produced); brightness = weight; grey tokens forced, "
             "cyan line = end of the forced prefix")
    _text(draw, (MARGIN, MARGIN), _fit(draw, line1, width - 2 * MARGIN, font), TEXT, font)
    _text(draw, (MARGIN, MARGIN + LINE + 2), _fit(draw, line2, width - 2 * MARGIN, font), FORCED_TEXT, font)


def save_trace_figure(path: str | os.PathLike, trace: Trace, names: Sequence[str] | None = None) -> TraceFigure:
    """Draw the trace and write it atomically (PNG, or the format of the suffix)."""
    path = check_writable(path)
    fmt = _format_for(Path(os.fsdecode(path)))
    fig = draw_trace(trace, names)
    write_atomic(path, lambda f: fig.image.save(f, format=fmt))
    return fig
