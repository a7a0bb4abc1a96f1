"""A training run directory: its config.json and tokens.txt, starting and resuming a run.

Every task's loop writes the same layout (config.json with the task name and the training
config, tokens.txt, checkpoints, metrics.jsonl, steps.jsonl), so export and `edge-s2s plot`
read any run alike.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write_bytes
from .errors import RunError

CONFIG_FILE = "config.json"
TOKENS_FILE = "tokens.txt"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (a run is a pure function of its seed)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resumed_config(cfg, config_cls: type, task: str):
    """The run's saved config, with only epochs and max_steps (and out_dir) taken from `cfg`."""
    saved = load_run_config(cfg.out_dir, config_cls, task)
    saved.epochs, saved.max_steps, saved.out_dir = cfg.epochs, cfg.max_steps, cfg.out_dir
    return saved


def load_run_config(run_dir: str | Path, config_cls: type, task: str):
    """The training config a run directory was started with (`config_cls` for its task)."""
    path = Path(run_dir, CONFIG_FILE)
    if not path.is_file():
        raise RunError(f"{run_dir} has no {CONFIG_FILE}: it is not a training run directory")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        got = d.get("task", "translate")
        cfg = config_cls.from_dict(d["train"]) if got == task else None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise RunError(f"{path} is malformed ({e}): it was not written by edge-s2s training") from None
    if cfg is None:
        raise RunError(f"{run_dir} is a {got!r} run, not a {task!r} run: resume it with `edge-s2s train {got}`")
    return cfg


def write_json(path: Path, obj, indent: int = 2) -> None:
    """Write `obj` as JSON atomically (a run's config.json and result files)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode("utf-8"))
