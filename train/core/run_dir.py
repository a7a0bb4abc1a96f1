"""A training run directory: its config.json and tokens.txt, starting and resuming a run.

Every task's loop writes the same layout (config.json with the task name and the training
config, tokens.txt, checkpoints, metrics.jsonl, steps.jsonl), so export and `edge-s2s plot`
read any run alike.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import LAST, atomic_write_bytes, load_checkpoint
from .epochs import Position
from .errors import RunError

CONFIG_FILE = "config.json"
TOKENS_FILE = "tokens.txt"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (a run is a pure function of its seed)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resumed_config(cfg, config_cls: type, task: str):
    """The run's saved config, with only the schedule (epochs, max_steps, and keep_epochs where the
    config has it) and out_dir taken from `cfg`.

    The library's resume: the caller's code says how long to go on and which epoch ends to keep;
    the model and data stay the run's. The new values are written back into config.json, so that a
    later plain `--resume` continues the same plan.
    """
    saved = load_run_config(cfg.out_dir, config_cls, task)
    schedule = {"epochs": cfg.epochs, "max_steps": cfg.max_steps}
    if hasattr(saved, "keep_epochs"):
        schedule["keep_epochs"] = cfg.keep_epochs
    for name, value in schedule.items():
        setattr(saved, name, value)
    saved.out_dir = cfg.out_dir
    save_schedule(cfg.out_dir, schedule)
    return saved


def save_schedule(run_dir: str | Path, values: Mapping[str, Any], section: str = "train") -> None:
    """Record a resumed run's new length (epochs, max_steps, ...) in config.json's `section`.

    config.json is what `--resume` continues, so it must say where the run is now headed;
    written only when something changed (under torchrun every rank would write the same file).
    """
    path = Path(run_dir, CONFIG_FILE)
    d = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        part = d[section]
        for name in parents:
            part = part[name]
        if part.get(leaf) != value:
            part[leaf], changed = value, True
    if changed:
        write_json(path, d)


@dataclass(frozen=True)
class RunLength:
    """How long a run trains: the config field (dotted) that sets it, the option a user types for it,
    and what of a checkpoint's position it counts ("epoch", "step"; None: only the task's own
    `done`, for schedules whose total is decided while training, like a memory network's)."""

    field: str = "epochs"
    flag: str = "--epochs"
    counts: str | None = "epoch"


@dataclass
class ResumePlan:
    """What a `--resume` from the command line does: go on with `config` (the saved one, its length
    and stop decided), or nothing when the run is already finished (`finished` says so, one line)."""

    config: Any
    finished: str | None = None


@dataclass(frozen=True)
class Given:
    """One option the user typed: its flag, the value as typed, and the config fields it sets."""

    flag: str
    value: Any
    paths: tuple[str, ...]


def _get(cfg, dotted: str):
    for name in dotted.split("."):
        cfg = getattr(cfg, name)
    return cfg


def _set(cfg, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        cfg = getattr(cfg, name)
    setattr(cfg, leaf, value)


def setting_path(cfg, name: str) -> str:
    """The config field an option named `name` sets: `name` itself, else `model.name`."""
    if hasattr(cfg, name):
        return name
    if is_dataclass(getattr(cfg, "model", None)) and hasattr(cfg.model, name):
        return f"model.{name}"
    raise KeyError(f"no config field for option {name!r}")


def _same(asked, saved, as_path: bool) -> bool:
    if asked == saved:
        return True
    if as_path and asked is not None and saved is not None:
        return Path(str(asked)).expanduser().resolve() == Path(str(saved)).expanduser().resolve()
    return False


def _shown(value) -> str:
    return str(value) if not isinstance(value, (list, tuple)) else ",".join(map(str, value))


def plan_resume(run_dir: str | Path, load_saved: Callable[[], Any], asked, given: list[Given], extend: bool,
                command: str, length: RunLength = RunLength()) -> ResumePlan:
    """Decide what `--resume` continues: the run as configured in its config.json.

    Every setting comes from the saved run; an option the user typed must agree with it (a
    different --emb-dim cannot apply to trained weights, and silently ignoring it would mislead):
    a conflict is one RunError line naming the flag, the saved value and the fix. The run's length
    (`length.flag`) changes only with `extend` (a new total, so the same line can be rerun after an
    interruption) and never shrinks. max_steps is a stop, not the end: a saved stop not yet reached
    is kept, a reached one is dropped (the run goes on to its length), a typed one replaces it.
    A finished run gives `finished` (nothing to train) and how to extend it. `asked` is the config
    built from the command line, so a typed value compares in the config's own form;
    `command` is the command line that resumes this run (shown in the fixes).
    """
    run = Path(run_dir)
    if not (run / LAST).is_file():
        raise RunError(f"cannot resume: {run / LAST} does not exist (start the run without --resume)")
    saved = load_saved()
    pos = Position.from_checkpoint(load_checkpoint(run / LAST))
    typed = {g.flag: g for g in given}
    has_stop = length.field != "max_steps" and hasattr(saved, "max_steps")
    for g in given:
        if g.flag == length.flag or (has_stop and "max_steps" in g.paths):
            continue
        for path in g.paths:
            got, want = _get(asked, path), _get(saved, path)
            if not _same(got, want, isinstance(g.value, Path)):
                was = f"{g.flag} {_shown(want)}" if path.split(".")[-1] == g.flag.lstrip("-").replace("-", "_") \
                    else f"{path} = {_shown(want)}"
                now = g.flag if isinstance(g.value, bool) else f"{g.flag} {_shown(g.value)}"
                raise RunError(f"{now} conflicts with the run in {run}, which was trained with {was}: resume "
                               f"without {g.flag} (settings come from its config.json), or start a new run with "
                               "--out ELSEWHERE")
    cfg = copy.deepcopy(saved)
    cfg.out_dir = str(run)  # the directory may have moved since
    total = _get(saved, length.field)
    if length.flag in typed:
        new = _get(asked, length.field)
        if new < total:
            raise RunError(f"{length.flag} {new} is less than the run's {length.flag} {total}: a run is not "
                           f"shortened; resume without {length.flag}, or start a new run with --out ELSEWHERE")
        if new > total and not extend:
            raise RunError(f"{length.flag} {new} differs from the run's {length.flag} {total}: to train it on to "
                           f"{new}, add --extend ({command} --resume --extend {length.flag} {new}); --resume "
                           f"alone continues to {total}")
        _set(cfg, length.field, new)
    elif extend:
        raise RunError(f"--extend needs the run's new total length: add {length.flag} N (more than its "
                       f"{length.flag} {total})")
    grown = _get(cfg, length.field) > total
    if has_stop:
        stop = _get(asked, "max_steps") if "--max-steps" in typed else saved.max_steps
        if "--max-steps" in typed and stop and stop <= pos.step:
            raise RunError(f"--max-steps {stop}: the run in {run} is already at step {pos.step}; give a later "
                           "step, or leave --max-steps out to train to its end")
        cfg.max_steps = stop if stop > pos.step else 0
    done = pos.done and not grown if length.counts is None else \
        (pos.done and not grown) or getattr(pos, length.counts) >= _get(cfg, length.field)
    if done:
        return ResumePlan(None, f"{run} is finished ({length.flag} {total}, all trained): nothing to resume; "
                                f"to train it longer give a new total: {command} --resume --extend "
                                f"{length.flag} N (N > {total})")
    return ResumePlan(cfg)


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
