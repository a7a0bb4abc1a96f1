"""Writing a result file (picture, trace) so that a crash or a full disk never leaves half of it.

Shared by the picture writers (`runtime/pictures/`) and `tools.trace.save_trace`; every failure is
one InputError line naming the path.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import InputError


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
