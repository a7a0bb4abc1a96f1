"""Atomic checkpoints: a crash at any moment leaves either the old file or the new one.

Write to a temporary file in the same directory, flush and fsync it, `os.replace` it over
the final name, then fsync the directory so the rename itself is durable.
A checkpoint holds everything `--resume` needs to continue bit for bit: model and optimizer
state, both configs, step / epoch / position in the epoch's batch list, best validation
loss, and the python, numpy and torch RNG states.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...runtime.errors import EdgeS2SError

LAST = "last.pt"
BEST = "best.pt"
FORMAT = "edge-s2s-checkpoint"


class CheckpointError(EdgeS2SError, ValueError):
    """A checkpoint is missing, truncated, corrupt or not an edge-s2s checkpoint."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same dir, fsync, rename, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; a run directory is ordinary files
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save `payload` (plus format tag) atomically to `path`."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint; CheckpointError (one line) when it is missing, truncated or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train first, or pass the run directory that holds it")
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, random bytes, unpickling errors
        msg = " ".join(str(e).split())[:160]
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {msg}): "
                              "use the other checkpoint (last.pt / best.pt) or train again") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an edge-s2s checkpoint: pass a last.pt or best.pt written by training")
    for key in ("model", "train_config", "step"):
        if key not in ck:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}: it is incomplete, train again")
    return ck


