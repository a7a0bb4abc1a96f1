"""Pictures of generated images: a PNG grid for people with a viewer, ASCII art for those without.

An image is [H, W] pixel levels 0..levels-1 (uint8), as the pixel-by-pixel generators
produce them. Level 0 is black and levels-1 white, light-on-dark like MNIST. Tiles are
blown up with NEAREST so every generated pixel stays a crisp square, and a mid-grey
separator keeps black tile borders apart from each other.

Pillow + numpy only, like the rest of the runtime.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from ..output_files import check_writable, write_atomic
from .canvas import LABEL_HEIGHT, _format_for, _label

SEPARATOR = 128  # mid-grey between and around tiles: distinct from both black and white pixels
RAMP = " .:-=+*#%@"  # ascii_preview, dark to bright (the terminal background is the dark end)
MAX_LEVELS = 256  # levels must fit uint8


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 2 <= levels <= MAX_LEVELS:
        raise InputError(f"levels must be an integer in 2..{MAX_LEVELS}, got {levels!r}: pass the generator's levels")
    return int(levels)


def _as_levels(q: np.ndarray, levels: int, what: str = "pixel levels") -> np.ndarray:
    """Any array of whole numbers in 0..levels-1 -> int64 (a clear error for floats, NaN or out of range)."""
    levels = _check_levels(levels)
    a = np.asarray(q)
    if a.size == 0:
        raise InputError(f"{what} are empty (shape {a.shape}): pass at least one pixel")
    if a.dtype.kind == "f":
        # Whole-number floats (e.g. after a numpy round trip) are fine; anything else is a bug upstream.
        if not np.isfinite(a).all() or not np.array_equal(a, np.round(a)):
            raise InputError(f"{what} must be whole numbers 0..{levels - 1}, got non-integer floats: "
                             "pass the generator's uint8 output")
    elif a.dtype.kind not in "iub":
        raise InputError(f"{what} must be integers 0..{levels - 1}, got dtype {a.dtype}: "
                         "pass the generator's uint8 output")
    a = a.astype(np.int64)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= levels:
        raise InputError(f"{what} must be in 0..{levels - 1}, got {lo}..{hi}: pass the generator's levels "
                         "unchanged, or the matching `levels`")
    return a


def levels_to_gray(q: np.ndarray, levels: int) -> np.ndarray:
    """Pixel levels -> uint8 gray, linear with 0 -> 0 (black) and levels-1 -> 255 (white)."""
    a = _as_levels(q, levels)
    return np.rint(a * (255.0 / (int(levels) - 1))).astype(np.uint8)


def _as_stack(images: np.ndarray) -> np.ndarray:
    """[H, W] or [n, H, W] -> [n, H, W], refusing other shapes and empty stacks with one line."""
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(f"images must be [n, H, W] (or one [H, W] image) of pixel levels, got shape {a.shape}: "
                         "pass the generator's output as it is")
    if 0 in a.shape:
        raise InputError(f"images are empty (shape {a.shape}): pass at least one image of at least one pixel")
    return a


def _columns(n: int, columns: int | None) -> int:
    """Tiles per row: nearly square by default, never more than there are images."""
    if columns is None:
        return max(1, math.ceil(math.sqrt(n)))
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise InputError(f"columns must be an integer >= 1 (or None for a square grid), got {columns!r}")
    return min(int(columns), n)


def _check_layout(scale: int, pad: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise InputError(f"scale must be an integer >= 1 (screen pixels per image pixel), got {scale!r}")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise InputError(f"pad must be an integer >= 0 (separator width in pixels), got {pad!r}")


def grid_size(n: int, height: int, width: int, columns: int | None = None, scale: int = 4, pad: int = 2,
              labels: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of the grid `grid_image` draws for n images of height x width."""
    _check_layout(scale, pad)
    if n < 1:
        raise InputError(f"a grid needs at least one image, got n={n}")
    cols = _columns(n, columns)
    rows = math.ceil(n / cols)
    tile_h = height * scale + (LABEL_HEIGHT if labels else 0)
    return cols * (width * scale + pad) + pad, rows * (tile_h + pad) + pad


def grid_image(images: np.ndarray, levels: int, columns: int | None = None, scale: int = 4, pad: int = 2,
               labels: list[str] | None = None) -> Image.Image:
    """Tile images [n, H, W] (or one [H, W]) row by row into one grayscale ("L") picture.

    Every pixel becomes a scale x scale square; `pad` grey pixels separate tiles and frame
    the grid; `labels` (one short text per image) are written in a strip under each tile.
    """
    stack = _as_stack(images)
    gray = levels_to_gray(stack, levels)
    n, h, w = gray.shape
    if labels is not None:
        labels = [str(t) for t in labels]
        if len(labels) != n:
            raise InputError(f"got {len(labels)} labels for {n} images: pass one label per image, or none")
    size = grid_size(n, h, w, columns, scale, pad, labels is not None)
    cols = _columns(n, columns)
    tw, th = w * scale, h * scale
    cell_h = th + (LABEL_HEIGHT if labels is not None else 0)

    canvas = np.full((size[1], size[0]), SEPARATOR, np.uint8)
    tiles = gray.repeat(scale, axis=1).repeat(scale, axis=2)  # NEAREST upscaling, exactly
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = pad + c * (tw + pad), pad + r * (cell_h + pad)
        canvas[y:y + th, x:x + tw] = tiles[i]
    if labels is None:
        return Image.fromarray(canvas, mode="L")

    # The shared label helper draws in RGB; all-grey RGB converts back to "L" exactly.
    rgb = Image.fromarray(canvas, mode="L").convert("RGB")
    draw = ImageDraw.Draw(rgb)
    font = ImageFont.load_default()
    for i, text in enumerate(labels):
        r, c = divmod(i, cols)
        x, y = pad + c * (tw + pad), pad + r * (cell_h + pad)
        _label(draw, font, text, x, y + th, tw)
    return rgb.convert("L")


def save_grid(path: str | os.PathLike, images: np.ndarray, levels: int, **kw) -> Path:
    """Write `grid_image(images, levels, **kw)` to path (format by suffix, PNG if none); return the path.

    Atomic: the picture goes to a temporary file in the same directory that replaces `path`
    only once complete, so a full disk or a crash never leaves half an image behind.
    """
    path = check_writable(path)
    fmt = _format_for(path)
    picture = grid_image(images, levels, **kw)
    return write_atomic(path, lambda f: picture.save(f, format=fmt))


def ascii_preview(image: np.ndarray, levels: int) -> str:
    """One [H, W] image as H lines of 2W characters (pixels are about twice as tall as a character is wide)."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise InputError(f"ascii_preview takes one [H, W] image, got shape {a.shape}: pass images[i]")
    q = _as_levels(a, levels)
    idx = np.rint(q * ((len(RAMP) - 1) / (int(levels) - 1))).astype(np.int64)
    chars = np.array(list(RAMP))[idx]
    return "\n".join("".join(ch * 2 for ch in row) for row in chars)
