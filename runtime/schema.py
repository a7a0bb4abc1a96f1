"""Field checks for manifest.json and golden.json: a bundle is untrusted input.

Each helper checks one value's type and range and raises one `BundleError` line naming the field
("manifest.json: tokens.eos_id must be an integer from 0 to 99, got 'three': re-export the
bundle"), so no malformed bundle reaches the loop as a traceback. File names a bundle gives are
plain names inside the bundle directory: no separators, no '..', nothing absolute, and a
symbolic link may not lead out of the directory (`bundle_path`).

Kept by hand rather than with a schema library: the runtime's install stays numpy + onnxruntime,
and these checks import in well under a millisecond.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from .errors import BundleError

FIX = "re-export the bundle with `edge-s2s export`"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(where: str, what: str, got: Any, source: str = "manifest.json") -> BundleError:
    return BundleError(f"{source}: {where} must be {what}, got {_show(got)}: {FIX}")


def dict_field(d: Any, where: str, source: str = "manifest.json") -> dict:
    if not isinstance(d, dict):
        raise fail(where, "a JSON object", d, source)
    return d


def list_field(v: Any, where: str, source: str = "manifest.json") -> list:
    if not isinstance(v, list):
        raise fail(where, "a JSON list", v, source)
    return v


def require(d: dict, key: str, where: str, source: str = "manifest.json") -> Any:
    if key not in d:
        raise BundleError(f"{source}: {where + '.' if where else ''}{key} is missing: {FIX}")
    return d[key]


def int_field(v: Any, where: str, lo: int | None = None, hi: int | None = None,
              source: str = "manifest.json") -> int:
    """An integer (never a bool or a string of digits) within [lo, hi]."""
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = (f" from {lo} to {hi}" if lo is not None and hi is not None else f" >= {lo}" if lo is not None
               else f" <= {hi}" if hi is not None else "")
        raise fail(where, f"an integer{rng}", v, source)
    return v


def number_field(v: Any, where: str, source: str = "manifest.json") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise fail(where, "a finite number", v, source)
    return float(v)


def str_field(v: Any, where: str, choices: tuple[str, ...] | None = None, source: str = "manifest.json") -> str:
    if not isinstance(v, str) or (choices is not None and v not in choices):
        raise fail(where, f"one of {', '.join(choices)}" if choices else "a string", v, source)
    return v


def bool_field(v: Any, where: str, source: str = "manifest.json") -> bool:
    if not isinstance(v, bool):
        raise fail(where, "true or false", v, source)
    return v


def sha256_field(v: Any, where: str, source: str = "manifest.json") -> str:
    if not isinstance(v, str) or not _SHA256.match(v):
        raise fail(where, "a sha256 (64 lower-case hex digits)", v, source)
    return v


def plain_name(v: Any, where: str, source: str = "manifest.json") -> str:
    """A file name inside the bundle: no directory part, not '.' or '..', nothing absolute."""
    if (not isinstance(v, str) or not v or v in (".", "..") or "/" in v or "\\" in v or "\x00" in v
            or v != v.strip() or len(v) > 255):
        raise BundleError(f"{source}: {where} must be a plain file name inside the bundle (no folders, no '..'), "
                          f"got {_show(v)}: {FIX}")
    return v


def bundle_path(directory: str | Path, name: Any, where: str, source: str = "manifest.json") -> Path:
    """directory / name for a plain name whose real path (links followed) stays inside the bundle."""
    root = Path(directory)
    path = root / plain_name(name, where, source)
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a link loop
        inside = False
    if not inside:
        raise BundleError(f"{source}: {where} {name!r} leads outside the bundle (a link to elsewhere): {FIX}")
    return path
