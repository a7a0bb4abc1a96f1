"""Atomic checkpoints: a crash at any moment leaves either the old file or the new one.

Write to a temporary file in the same directory, flush and fsync it, `os.replace` it over
the final name, then fsync the directory so the rename itself is durable.
A checkpoint holds everything `--resume` needs to continue bit for bit: model and optimizer
state, both configs, step / epoch / position in the epoch's batch list, best validation
loss, and the python, numpy and torch RNG states.

Checkpoints are untrusted input (a `best.pt` from someone else): they are read with
`torch.load(weights_only=True)`, which unpickles tensors, numbers, strings and containers only
and never runs code. So everything saved is one of those: the numpy RNG state is stored as a
dict with its keys as a tensor, not as numpy objects. A checkpoint written by an older version
(numpy objects inside) is refused with one line; `edge-s2s convert-checkpoint` rewrites it once,
for a file the user trusts.
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
EPOCH_PATTERN = "epoch-*.pt"  # epoch-end copies kept for averaging (Schedule.keep_epochs)
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


def _numpy_state_dict(state: tuple) -> dict[str, Any]:
    """np.random.get_state() as plain values: what weights_only loading accepts."""
    kind, keys, pos, has_gauss, cached = state
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": _numpy_state_dict(np.random.get_state()),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
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
        ck = torch.load(str(path), map_location="cpu", weights_only=True)  # never runs code from the file
    except Exception as e:  # truncated zip, random bytes, unpickling errors
        msg = " ".join(str(e).split())
        if "Unsupported global" in msg:  # a pickled Python object: an older edge-s2s (or a hostile file)
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects (edge-s2s before 0.2 wrote numpy RNG states), "
                "which edge-s2s no longer loads because unpickling can run code: if you trust the file, convert it "
                f"once with `edge-s2s convert-checkpoint {path}`") from None
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {msg[:160]}): "
                              "use the other checkpoint (last.pt / best.pt) or train again") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an edge-s2s checkpoint: pass a last.pt or best.pt written by training")
    for key in ("model", "train_config", "step"):
        if key not in ck:
            raise CheckpointError(f"checkpoint {path} lacks {key!r}: it is incomplete, train again")
    return ck


def convert_legacy_checkpoint(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite a checkpoint of an older edge-s2s (numpy objects pickled inside) in today's format.

    This unpickles the file with weights_only=False, which can run code hidden in it: only for a
    file the user trusts (the command says so). The result loads with weights_only=True. `out`
    defaults to the same path (replaced atomically).
    """
    path, out = Path(path), Path(out) if out is not None else Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: pass the last.pt or best.pt to convert")
    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}): it cannot be "
                              "converted, train again") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an edge-s2s checkpoint: nothing to convert")
    rng = ck.get("rng")
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        rng["numpy"] = _numpy_state_dict(rng["numpy"])
    if "data_rng" in ck:  # the NTM tasks' old data generator: examples are now drawn per step from the seed
        del ck["data_rng"]
    ck = {k: v for k, v in ck.items() if k != "format"}
    save_checkpoint(out, ck)
    load_checkpoint(out)  # what was written must load the safe way
    return out


def epoch_checkpoint_name(epoch: int) -> str:
    """The file an epoch-end checkpoint is kept in (epochs counted from 1)."""
    return f"epoch-{epoch:03d}.pt"


def average_checkpoints(paths: list[Path], out: Path) -> Path:
    """Write the parameter average of checkpoints of one run to `out` (Vaswani et al. 2017, sec. 6.1:
    averaging the last checkpoints; also Junczys-Dowmunt et al. 2016 for RNN translation).

    Floating-point tensors are averaged; integer buffers and everything else (configs, vocabulary)
    come from the newest checkpoint, whose optimizer state is dropped (an average is for export, not
    for resuming). Checkpoints of different models are refused in one line."""
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs at least 2 checkpoints, got {len(paths)}: keep more epochs "
                              "(keep_epochs) or train longer")
    cks = [load_checkpoint(p) for p in paths]
    newest = max(cks, key=lambda c: int(c["step"]))
    names = set(newest["model"])
    for p, ck in zip(paths, cks):
        if set(ck["model"]) != names or any(ck["model"][k].shape != newest["model"][k].shape for k in names):
            raise CheckpointError(f"{p} holds a different model from the others: average checkpoints of one run")
    model = {}
    for k, v in newest["model"].items():
        if v.is_floating_point():
            model[k] = sum(ck["model"][k].to(torch.float64) for ck in cks).div(len(cks)).to(v.dtype)
        else:
            model[k] = v
    payload = {k: v for k, v in newest.items() if k not in ("format", "model", "optimizer")}
    save_checkpoint(out, {**payload, "model": model, "averaged_from": [Path(p).name for p in paths]})
    return out
