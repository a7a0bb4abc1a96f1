"""Drawing helpers every picture writer shares: text that survives the bitmap font, text cut to
fit, the hot colour map, a label strip, and the Pillow format named by an output suffix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import InputError


def _format_for(path: Path) -> str:
    """Pillow format from the suffix; no suffix means PNG."""
    if not path.suffix:
        return "PNG"
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"cannot write {path}: Pillow cannot save {path.suffix!r} files; choose a writable path "
                         "ending in .png")
    return fmt


def hot_colormap(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB [..., 3]: black, red, yellow, white (brightness grows with x)."""
    x = np.clip(np.nan_to_num(np.asarray(x, dtype=np.float32)), 0.0, 1.0)[..., None]
    rgb = np.clip(3.0 * x - np.array([0.0, 1.0, 2.0], dtype=np.float32), 0.0, 1.0)
    return np.rint(rgb * 255.0).astype(np.uint8)


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill, font) -> None:
    try:
        draw.text(xy, text, fill=fill, font=font)
    except UnicodeEncodeError:  # the bitmap fallback font is Latin-1 only
        draw.text(xy, text.encode("latin-1", "replace").decode("latin-1"), fill=fill, font=font)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: float, font) -> str:
    """`text` shortened with '..' until it fits `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".."

LABEL_HEIGHT = 20  # the text strip under every panel


def _label(draw: ImageDraw.ImageDraw, font, text: str, x: int, y: int, width: int) -> None:
    """Write `text` centred in a strip of `width` at (x, y), shortened with … when too wide."""
    def fits(t: str) -> bool:
        return draw.textlength(t, font=font) <= width - 4

    try:
        if not fits(text):
            while text and not fits(text + "…"):
                text = text[:-1]
            text += "…"
        w = draw.textlength(text, font=font)
        draw.text((x + (width - w) / 2, y + 4), text, fill=(0, 0, 0), font=font)
    except UnicodeEncodeError:  # the bitmap fallback font is Latin-1 only
        safe = text.encode("latin-1", "replace").decode("latin-1")
        draw.text((x + 2, y + 4), safe, fill=(0, 0, 0), font=font)
