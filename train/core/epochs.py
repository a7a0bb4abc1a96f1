"""The epoch loop every model trains with: batches, optimizer steps, validation, checkpoints.

A task supplies two functions and this loop does the rest, identically for all tasks:

* `train_step(indices, step)` -> (loss to backpropagate, target tokens, token NLL as a float);
  `step` is the optimizer steps done so far (schedules such as scheduled sampling read it)
* `evaluate()` -> (metrics dict, score, extra text for the log line); the score is a number or
  a tuple compared in order (higher is better), or None when the task keeps no best.pt

and, when it needs more, `TaskHooks`: its own batch plan (the NTM tasks draw fresh examples for
every step; memory networks shuffle with numpy as their authors did), per-epoch settings (a
learning-rate schedule, a training phase), an end-of-epoch check that can finish training early,
resumable state of its own, and the `Schedule` (epochs, clipping, summed or mean loss) when it
is not read from the config.

Batches are a pure function of (seed, epoch) (`epoch_batches`), so a checkpoint only
needs the position (`Position`) plus model, optimizer, RNG and task states for `--resume` to
continue bit for bit. `last.pt` is written at every epoch end (and every
`checkpoint_every` steps), `best.pt` whenever the score improves; both atomically.

What the loop writes into the run directory (besides the task's own files):

    last.pt, best.pt  checkpoints (`checkpoint.py`)
    epoch-NNN.pt      the last `keep_epochs` epoch ends, weights only, when the config asks (for averaging)
    metrics.jsonl     one JSON line per epoch: epoch, step, train_loss, the task's validation
                      metrics, seconds
    steps.jsonl       one JSON line per `log_every` optimizer steps: step, epoch, loss, tokens,
                      tokens_per_s, lr, time (`step_log.py`; trimmed to the checkpoint on --resume)

`run=None` trains in memory (no files, no resume): library code that trains many small networks
for a table (memory networks) uses the same loop without a run directory each.

Under torchrun (WORLD_SIZE > 1) the same loop runs on every process with DistributedDataParallel
(`distributed.py`): each rank takes its share of every global batch, the loss and token counts
are summed over ranks, and rank 0 alone evaluates, writes checkpoints and logs and shows progress,
the others waiting at a barrier. One process without torchrun is the plain loop, unchanged.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ...runtime.tools.run_logs import METRICS_FILE
from .checkpoint import (
    BEST,
    EPOCH_PATTERN,
    LAST,
    CheckpointError,
    epoch_checkpoint_name,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .distributed import Ddp, world_from_env
from .step_log import StepLog

LOG_EVERY = 1  # steps.jsonl line every N optimizer steps when the config has no `log_every` (a line is ~20 us)
REDUCTIONS = ("mean", "sum")
Score = float | tuple | list | None


@dataclass
class Schedule:
    """How long and how the loop trains; `Schedule.of(cfg)` reads it from a task's training config.

    reduction: "mean" (train_step's loss is the batch's mean, what the optimizer sees) or "sum"
    (the optimizer sees the batch's summed loss, as memory networks train in their paper); either
    way train_step returns its items' mean, and the loop scales it.
    """

    epochs: int
    seed: int
    batch_size: int = 1
    clip: float = 0.0
    max_steps: int = 0
    checkpoint_every: int = 0
    log_every: int = LOG_EVERY
    reduction: str = "mean"
    keep_epochs: int = 0  # also keep the last N epoch-end checkpoints as epoch-NNN.pt (for averaging)

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {self.reduction!r}")

    @classmethod
    def of(cls, cfg) -> Schedule:
        return cls(cfg.epochs, cfg.seed, cfg.batch_size, cfg.clip, cfg.max_steps, cfg.checkpoint_every,
                   getattr(cfg, "log_every", LOG_EVERY), keep_epochs=getattr(cfg, "keep_epochs", 0))


@dataclass
class TaskHooks:
    """What a task may add to the loop besides train_step and evaluate; every field is optional."""

    schedule: Schedule | None = None  # default Schedule.of(cfg)
    batches: Callable[[int], list[list[int]]] | None = None  # epoch -> batches of item indices, a pure function
    start_epoch: Callable[[int], None] | None = None  # before an epoch's first step (also when resumed inside it)
    end_epoch: Callable[[dict], bool] | None = None  # sees the epoch's metrics line; True = training is complete
    state_dict: Callable[[], dict] | None = None  # the task's own resumable state, saved in every checkpoint
    load_state_dict: Callable[[dict], None] | None = None
    # on resume, after load_state_dict: is training complete after this many epochs? (default: the saved
    # `done`); lets a run whose length was raised (`--resume --extend`) go on after end_epoch said done
    complete: Callable[[int], bool] | None = None


def _key(score: Score) -> tuple:
    """Scores compare as tuples: a number is a 1-tuple, so -inf (nothing yet) is below any score."""
    return tuple(score) if isinstance(score, (tuple, list)) else (float(score),)


@dataclass
class Position:
    """Where training stands: what a checkpoint must hold besides the weights."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch done
    step: int = 0  # optimizer steps in total
    best: float | list = -math.inf  # best validation score so far (higher is better; a list compares in order)
    loss_sum: float = 0.0  # token NLL summed over the current epoch
    tokens: int = 0
    seconds: float = 0.0  # training time over all sessions of the run (evaluation included)
    done: bool = False  # the task said training is complete (TaskHooks.end_epoch)

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any]) -> Position:
        if "position" in ck:
            return cls(**ck["position"])
        try:  # checkpoints written before the shared loop (edge-s2s 0.1 development versions)
            best = ck["best_score"] if "best_score" in ck else -ck["best_val_loss"]
            return cls(ck["epoch"], ck["batch"], ck["step"], best, ck["epoch_loss_sum"], ck["epoch_tokens"])
        except KeyError as e:
            raise CheckpointError(f"checkpoint lacks the training position ({e}): it cannot be resumed, "
                                  "start a new run") from None


def _restore_epoch_line(run: Path, metrics: dict) -> None:
    """A kill between the epoch-end save of last.pt and the metrics.jsonl append loses that
    epoch's line; the epoch-end checkpoint carries it, so --resume writes it back."""
    if "epoch" not in metrics:
        return
    path, done = run / METRICS_FILE, set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line).get("epoch"))
            except (ValueError, AttributeError):
                pass
    if metrics["epoch"] not in done:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")


def run_epochs(run: Path | None, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, n_examples: int,
               lengths: list[int], train_step: Callable, evaluate: Callable, checkpoint_extra: dict[str, Any],
               resume: bool, progress: bool, hooks: TaskHooks | None = None) -> Path | None:
    """Train `model` on `n_examples` (the schedule from `hooks.schedule` or cfg: epochs, batch_size,
    seed, clip, max_steps, checkpoint_every, optional log_every); returns the run directory."""
    world = world_from_env()
    ddp = Ddp(world, model) if world else None
    try:
        return _run(run, cfg, model, opt, n_examples, lengths, train_step, evaluate, checkpoint_extra, resume,
                    progress, ddp, hooks or TaskHooks())
    finally:
        if ddp:
            ddp.close()


def _run(run: Path | None, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, n_examples: int,
         lengths: list[int], train_step: Callable, evaluate: Callable, checkpoint_extra: dict[str, Any], resume: bool,
         progress: bool, ddp: Ddp | None, hooks: TaskHooks) -> Path | None:
    main = ddp is None or ddp.world.main
    files = main and run is not None  # this process writes the run directory
    plan = hooks.schedule or Schedule.of(cfg)
    batches_of = hooks.batches or (lambda epoch: epoch_batches(n_examples, lengths, plan.batch_size, plan.seed,
                                                                epoch))
    pos = Position()
    if resume:  # under DDP every rank loads the same last.pt
        if run is None:
            raise ValueError("resume needs a run directory")
        ck = load_checkpoint(run / LAST)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        pos = Position.from_checkpoint(ck)
        set_rng_state(ck["rng"])
        if hooks.load_state_dict:
            hooks.load_state_dict(ck.get("task_state") or {})
        if hooks.complete:
            pos.done = hooks.complete(pos.epoch)
        if main:
            _restore_epoch_line(run, ck.get("metrics") or {})
    if files:  # a kill inside an atomic write leaves its temp file (a whole checkpoint's size)
        for tmp in run.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    if ddp:
        ddp.wrap(train_step, plan.seed, pos.step)
        step_fn = ddp.step
    else:
        step_fn = train_step
    log = StepLog.open(run, pos.step, plan.log_every) if files else None
    model_config = asdict(cfg.model) if is_dataclass(getattr(cfg, "model", None)) else {}

    def save(*paths: Path, metrics: dict | None = None, weights_only: tuple[Path, ...] = ()) -> None:
        """Rank 0 writes the checkpoint(s), and `weights_only` copies without the optimizer state (an
        epoch kept for averaging needs the weights, at a third of the size); under DDP the other
        ranks wait until it has."""
        if files:
            state = hooks.state_dict() if hooks.state_dict else {}
            payload = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                       "train_config": cfg.to_dict(), "model_config": model_config,
                       **checkpoint_extra, "position": asdict(pos), "step": pos.step,
                       "rng": rng_state(), "task_state": state, "metrics": metrics or {}}
            for path in weights_only:  # first: a kill before last.pt replays the epoch and writes it again
                save_checkpoint(path, {k: v for k, v in payload.items() if k != "optimizer"})
            for path in paths:
                save_checkpoint(path, payload)
        if ddp:
            ddp.barrier()

    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    try:
        while pos.epoch < plan.epochs and not pos.done:
            t0 = time.time()
            if hooks.start_epoch:
                hooks.start_epoch(pos.epoch)
            batches = batches_of(pos.epoch)
            bar = tqdm(total=len(batches), initial=pos.batch, desc=f"epoch {pos.epoch + 1}/{plan.epochs}",
                       disable=not (progress and main), leave=False, dynamic_ncols=True)
            bar_tokens = 0
            while pos.batch < len(batches):
                if plan.max_steps and pos.step >= plan.max_steps:
                    bar.close()
                    pos.seconds += time.time() - t0
                    if run is not None:
                        save(run / LAST)
                    return run
                opt.zero_grad(set_to_none=True)
                loss, n, nll = step_fn(batches[pos.batch], pos.step)
                if plan.reduction == "sum":  # the items' mean times their number (all ranks' under DDP)
                    loss = loss * n
                loss.backward()
                if plan.clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, plan.clip)
                opt.step()
                pos.step += 1
                pos.batch += 1
                pos.loss_sum += nll * n
                pos.tokens += n
                if log:
                    log.add(pos.step, pos.epoch + 1, nll, n, opt.param_groups[0]["lr"])
                bar.update(1)
                if not bar.disable:  # throughput of this session's part of the epoch
                    bar_tokens += n
                    elapsed = max(time.time() - t0, 1e-9)
                    bar.set_postfix(loss=f"{nll:.3f}", tok_s=f"{bar_tokens / elapsed:.0f}",
                                    steps_s=f"{(bar.n - bar.initial) / elapsed:.2f}")
                if plan.checkpoint_every and pos.step % plan.checkpoint_every == 0 and run is not None:
                    save(run / LAST)
            bar.close()
            train_loss = pos.loss_sum / max(pos.tokens, 1)
            metrics, score, shown = evaluate() if main else ({}, None, "")
            model.train()
            seconds = time.time() - t0
            pos.seconds += seconds
            metrics = {"epoch": pos.epoch + 1, "step": pos.step, "train_loss": train_loss, **metrics,
                       "seconds": round(seconds, 3)}
            # rank 0's decision; the other ranks' `best` is never saved
            is_best = score is not None and _key(score) > _key(pos.best)
            if is_best:
                pos.best = list(score) if isinstance(score, (tuple, list)) else score
            if hooks.end_epoch and hooks.end_epoch(metrics):
                pos.done = True
            pos.epoch, pos.batch, pos.loss_sum, pos.tokens = pos.epoch + 1, 0, 0.0, 0
            # best.pt before last.pt: a kill between the two then replays the epoch on --resume and
            # writes best.pt again, where the other order would record the new best score with no best.pt
            if run is not None:
                kept = (run / epoch_checkpoint_name(pos.epoch),) if plan.keep_epochs else ()
                save(*([run / BEST] if is_best else []), run / LAST, metrics=metrics, weights_only=kept)
                if files and plan.keep_epochs:
                    for old in sorted(run.glob(EPOCH_PATTERN))[:-plan.keep_epochs]:
                        old.unlink(missing_ok=True)
            if files:
                with open(run / METRICS_FILE, "a", encoding="utf-8") as f:
                    f.write(json.dumps(metrics) + "\n")
            if files:  # the epoch line stays with --no-progress (only the bar goes); in-memory runs stay quiet
                tqdm.write(f"epoch {metrics['epoch']}: train loss {train_loss:.4f}{shown}")
    finally:
        if log:
            log.close()
    return run


def epoch_batches(n: int, lengths: list[int], batch_size: int, seed: int, epoch: int,
                  bucket_batches: int = 50) -> list[list[int]]:
    """The batches (lists of indices) of one epoch; a pure function of (seed, epoch).

    Shuffle, cut into buckets of `bucket_batches` batches, sort each bucket by source
    length (less padding), cut into batches, shuffle the batch order. Resuming recomputes
    the same list and skips the batches already done.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    idx = list(range(n))
    rng.shuffle(idx)
    bucket = batch_size * bucket_batches
    batches: list[list[int]] = []
    for start in range(0, n, bucket):
        chunk = sorted(idx[start : start + bucket], key=lambda i: lengths[i])
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches
