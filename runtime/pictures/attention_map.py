"""Where the captioner looked: the Show, Attend and Tell picture, one panel per word.

Panel 0 is the image as the model saw it (`image.model_view`); panel i is that view with
word i's attention over the grid of CNN regions laid on top as a heat map, the word
written underneath. The attention rows come straight from the decoder step's
`attention` output, one row per generated word. A captioner with label slots attends over
the regions and then its K ImageNet labels: each panel gets a bar per label under it (how much
of the word was copied from that label, the pointer-generator's (1 - g) ptr_k; in bundles exported
before that was added, the label's share of the word's attention), and panel 0 lists the labels.

Pillow + numpy only (no matplotlib), like the rest of the runtime.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..media.image import ImageInput, ImageSpec, load_image, model_view
from .canvas import LABEL_HEIGHT, _label

MARGIN = 4  # white space around and between panels
ALPHA = 0.6  # weight of the heat map over the image
BAR_ROW = 12  # height of one label's bar row under a panel
BAR_COLOUR = (214, 39, 40)


def heat_colormap(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB [..., 3], a jet-like map: dark blue (cold) to dark red (hot)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0], dtype=np.float32)  # where R, G, B peak on a 0..4 scale
    rgb = np.clip(1.5 - np.abs(4.0 * x - centres), 0.0, 1.0)
    return np.rint(rgb * 255.0).astype(np.uint8)


def figure_size(panels: int, columns: int = 5, panel: int = 224, labels: int = 0) -> tuple[int, int]:
    """(width, height) of a figure of `panels` panels laid out `columns` per row (`labels` bar rows
    under each)."""
    cols = max(1, min(columns, panels))
    rows = max(1, math.ceil(panels / columns))
    return cols * (panel + MARGIN) + MARGIN, rows * (panel + LABEL_HEIGHT + labels * BAR_ROW + MARGIN) + MARGIN


def _label_bars(draw: ImageDraw.ImageDraw, font, names: list[str], weights: np.ndarray | None, x: int, y: int,
                width: int) -> None:
    """One row per label: its name, and a bar as long as its weight for the word (0..1)."""
    name_w = width // 2
    for k, name in enumerate(names):
        top = y + k * BAR_ROW
        text = name
        while text and draw.textlength(text, font=font) > name_w - 4:
            text = text[:-1]
        try:
            draw.text((x + 2, top), text if text == name else text[:-1] + "…", fill=(0, 0, 0), font=font)
        except UnicodeEncodeError:
            draw.text((x + 2, top), text.encode("ascii", "replace").decode(), fill=(0, 0, 0), font=font)
        if weights is not None:
            length = int(round(float(np.clip(weights[k], 0.0, 1.0)) * (width - name_w - 2)))
            draw.rectangle([x + name_w, top + 2, x + name_w + max(length, 1), top + BAR_ROW - 3], fill=BAR_COLOUR)


def _attention_map(row: np.ndarray, grid: tuple[int, int], panel: int) -> np.ndarray:
    """One word's attention over the grid -> a smooth [panel, panel] map normalised to [0, 1]."""
    a = row.reshape(grid).astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    # Uniform attention has no peak to show: it stays all cold rather than 0/0.
    a = (a - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(a)
    up = Image.fromarray(a).resize((panel, panel), Image.BICUBIC, reducing_gap=None)
    return np.clip(np.asarray(up, dtype=np.float32), 0.0, 1.0)


def attention_figure(image: Image.Image | ImageInput, words: list[str], attention: np.ndarray,
                     grid: tuple[int, int] = (7, 7), spec: ImageSpec = ImageSpec(), columns: int = 5,
                     panel: int = 224, labels: list[str] | None = None) -> Image.Image:
    """The figure: model view labelled "input", then one heat-map panel per word, `columns` per row.

    attention: [len(words), grid_h * grid_w (+ len(labels))], one row per word (rows sum to ~1);
    with `labels` the last columns are the label slots. `image` is the RGB image as loaded
    (`load_image`); any other input is loaded with `spec` first.
    """
    words = [str(w) for w in words]
    labels = [str(x) for x in labels or []]
    att = np.asarray(attention, dtype=np.float32)
    gh, gw = int(grid[0]), int(grid[1])
    want = (len(words), gh * gw + len(labels))
    if att.ndim != 2 or att.shape != want:
        slots = f" and {len(labels)} label slots" if labels else ""
        raise InputError(
            f"attention has shape {tuple(att.shape)} but {len(words)} words on a {gh}x{gw} grid{slots} need {want}: "
            "pass one attention row per word, as the decoder returned them"
        )
    if not np.isfinite(att).all():
        raise InputError("attention contains NaN or infinite values: pass the decoder's attention output unchanged")
    if columns < 1 or panel < 1:
        raise InputError(f"columns ({columns}) and panel ({panel}) must be at least 1: pass positive values")
    if not isinstance(image, Image.Image):
        image = load_image(image, spec)

    view = model_view(image, spec)
    if view.size != (panel, panel):
        view = view.resize((panel, panel), Image.BICUBIC, reducing_gap=None)
    base = np.asarray(view, dtype=np.float32)

    n = 1 + len(words)
    canvas = Image.new("RGB", figure_size(n, columns, panel, len(labels)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    regions = gh * gw
    for i in range(n):
        if i == 0:
            tile, text = view, "input" + (" (labels:)" if labels else "")
        else:
            heat = heat_colormap(_attention_map(att[i - 1, :regions], (gh, gw), panel)).astype(np.float32)
            tile = Image.fromarray(np.rint((1.0 - ALPHA) * base + ALPHA * heat).astype(np.uint8))
            text = words[i - 1]
        r, c = divmod(i, columns)
        x = MARGIN + c * (panel + MARGIN)
        y = MARGIN + r * (panel + LABEL_HEIGHT + len(labels) * BAR_ROW + MARGIN)
        canvas.paste(tile, (x, y))
        _label(draw, font, text, x, y + panel, panel)
        if labels:
            _label_bars(draw, font, labels, None if i == 0 else att[i - 1, regions:], x, y + panel + LABEL_HEIGHT,
                        panel)
    return canvas


def save_attention_figure(path: str | os.PathLike, image: Image.Image | ImageInput, words: list[str],
                          attention: np.ndarray, grid: tuple[int, int] = (7, 7), spec: ImageSpec = ImageSpec(),
                          columns: int = 5, labels: list[str] | None = None) -> int:
    """Write the figure as PNG (whatever the suffix) and return the number of panels, 1 + len(words)."""
    path = Path(os.fsdecode(path))
    parent = path.parent
    if path.is_dir():
        raise InputError(f"cannot write the attention picture to {path}: it is a directory; pass a file name such as {path / 'attention.png'}")
    if not parent.is_dir():
        raise InputError(f"cannot write the attention picture {path}: directory {parent} does not exist; create it first or pick another path")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write the attention picture {path}: directory {parent} is not writable; pick another path")
    fig = attention_figure(image, words, attention, grid=grid, spec=spec, columns=columns, labels=labels)
    try:
        fig.save(path, format="PNG")
    except OSError as e:
        raise InputError(f"cannot write the attention picture {path} ({' '.join(str(e).split())}): check the disk and the path") from None
    return 1 + len(words)
