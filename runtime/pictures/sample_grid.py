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
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InputError
from .attention_map import LABEL_HEIGHT, _label

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


def check_writable(path: str | os.PathLike) -> Path:
    """Fail before any work when `path` cannot be written: one line naming the reason."""
    path = Path(os.fsdecode(path))
    parent = path.parent

    def refuse(reason: str) -> InputError:
        return InputError(f"cannot write {path}: {reason}; choose a writable path")

    if path.is_dir():
        raise refuse("it is a directory, not a file name")
    if not parent.exists():
        raise refuse(f"directory {parent} does not exist")
    if not parent.is_dir():
        raise refuse(f"{parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise refuse(f"directory {parent} is not writable")
    return path


def _format_for(path: Path) -> str:
    """Pillow format from the suffix; no suffix means PNG."""
    if not path.suffix:
        return "PNG"
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"cannot write {path}: Pillow cannot save {path.suffix!r} files; choose a writable path "
                         "ending in .png")
    return fmt


def save_grid(path: str | os.PathLike, images: np.ndarray, levels: int, **kw) -> Path:
    """Write `grid_image(images, levels, **kw)` to path (format by suffix, PNG if none); return the path.

    Atomic: the picture goes to a temporary file in the same directory that replaces `path`
    only once complete, so a full disk or a crash never leaves half an image behind.
    """
    path = check_writable(path)
    fmt = _format_for(path)
    picture = grid_image(images, levels, **kw)
    return write_atomic(path, lambda f: picture.save(f, format=fmt))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(f)` on a temporary file next to `path`, which replaces `path` only once complete.

    A full disk or a crash never leaves half a file behind; any failure is one InputError
    line naming the path (shared by the PNG writers and `runtime.trace.save_trace`).
    """
    path = Path(os.fsdecode(path))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 lets the umask decide the final permissions (mkstemp would force 0600).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}; choose a writable path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError, KeyError) as e:
        tmp.unlink(missing_ok=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else " ".join(str(e).split())
        raise InputError(f"cannot write {path}: {reason}; choose a writable path") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def ascii_preview(image: np.ndarray, levels: int) -> str:
    """One [H, W] image as H lines of 2W characters (pixels are about twice as tall as a character is wide)."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise InputError(f"ascii_preview takes one [H, W] image, got shape {a.shape}: pass images[i]")
    q = _as_levels(a, levels)
    idx = np.rint(q * ((len(RAMP) - 1) / (int(levels) - 1))).astype(np.int64)
    chars = np.array(list(RAMP))[idx]
    return "\n".join("".join(ch * 2 for ch in row) for row in chars)
