"""The epoch loop every model trains with: batches, optimizer steps, validation, checkpoints.

A task supplies two functions and this loop does the rest, identically for all tasks:

* `train_step(indices, step)` -> (loss to backpropagate, target tokens, token NLL as a float);
  `step` is the optimizer steps done so far (schedules such as scheduled sampling read it)
* `evaluate()` -> (metrics dict, score where higher is better, extra text for the log line)

Batches are a pure function of (seed, epoch) (`data.epoch_batches`), so a checkpoint only
needs the position (`Position`) plus model, optimizer and RNG states for `--resume` to
continue bit for bit. `last.pt` is written at every epoch end (and every
`checkpoint_every` steps), `best.pt` whenever the score improves; both atomically.

What the loop writes into the run directory (besides the task's own files):

    last.pt, best.pt  checkpoints (`checkpoint.py`)
    metrics.jsonl     one JSON line per epoch: epoch, step, train_loss, the task's validation
                      metrics, seconds
    steps.jsonl       one JSON line per `log_every` optimizer steps: step, epoch, loss, tokens,
                      tokens_per_s, lr, time (`step_log.py`; trimmed to the checkpoint on --resume)

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ...runtime.tools.run_logs import METRICS_FILE
from .checkpoint import BEST, LAST, CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import Ddp, world_from_env
from .step_log import StepLog

LOG_EVERY = 1  # steps.jsonl line every N optimizer steps when the config has no `log_every` (a line is ~20 us)


@dataclass
class Position:
    """Where training stands: what a checkpoint must hold besides the weights."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch done
    step: int = 0  # optimizer steps in total
    best: float = -math.inf  # best validation score so far (higher is better)
    loss_sum: float = 0.0  # token NLL summed over the current epoch
    tokens: int = 0

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


def run_epochs(run: Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, n_examples: int,
               lengths: list[int], train_step: Callable, evaluate: Callable, checkpoint_extra: dict[str, Any],
               resume: bool, progress: bool) -> Path:
    """Train `model` on `n_examples` (cfg: epochs, batch_size, seed, clip, max_steps,
    checkpoint_every, optional log_every); returns the run directory."""
    world = world_from_env()
    ddp = Ddp(world, model) if world else None
    try:
        return _run(run, cfg, model, opt, n_examples, lengths, train_step, evaluate, checkpoint_extra, resume,
                    progress, ddp)
    finally:
        if ddp:
            ddp.close()


def _run(run: Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, n_examples: int, lengths: list[int],
         train_step: Callable, evaluate: Callable, checkpoint_extra: dict[str, Any], resume: bool, progress: bool,
         ddp: Ddp | None) -> Path:
    main = ddp is None or ddp.world.main
    last = run / LAST
    pos = Position()
    if resume:  # under DDP every rank loads the same last.pt
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        pos = Position.from_checkpoint(ck)
        set_rng_state(ck["rng"])
        if main:
            _restore_epoch_line(run, ck.get("metrics") or {})
    if main:  # a kill inside an atomic write leaves its temp file (a whole checkpoint's size)
        for tmp in run.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
    if ddp:
        ddp.wrap(train_step, cfg.seed, pos.step)
        step_fn = ddp.step
    else:
        step_fn = train_step
    log = StepLog.open(run, pos.step, getattr(cfg, "log_every", LOG_EVERY)) if main else None

    def save(*paths: Path, metrics: dict | None = None) -> None:
        """Rank 0 writes the checkpoint(s); under DDP the other ranks wait until it has."""
        if main:
            for path in paths:
                save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "train_config": cfg.to_dict(), "model_config": asdict(cfg.model),
                                       **checkpoint_extra, "position": asdict(pos), "step": pos.step,
                                       "rng": rng_state(), "metrics": metrics or {}})
        if ddp:
            ddp.barrier()

    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    try:
        while pos.epoch < cfg.epochs:
            t0 = time.time()
            batches = epoch_batches(n_examples, lengths, cfg.batch_size, cfg.seed, pos.epoch)
            bar = tqdm(total=len(batches), initial=pos.batch, desc=f"epoch {pos.epoch + 1}/{cfg.epochs}",
                       disable=not (progress and main), leave=False, dynamic_ncols=True)
            bar_tokens = 0
            while pos.batch < len(batches):
                if cfg.max_steps and pos.step >= cfg.max_steps:
                    bar.close()
                    save(last)
                    return run
                opt.zero_grad(set_to_none=True)
                loss, n, nll = step_fn(batches[pos.batch], pos.step)
                loss.backward()
                if cfg.clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.clip)
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
                if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                    save(last)
            bar.close()
            train_loss = pos.loss_sum / max(pos.tokens, 1)
            metrics, score, shown = evaluate() if main else ({}, -math.inf, "")
            model.train()
            metrics = {"epoch": pos.epoch + 1, "step": pos.step, "train_loss": train_loss, **metrics,
                       "seconds": round(time.time() - t0, 3)}
            is_best = score > pos.best  # rank 0's decision; the other ranks' `best` is never saved
            if is_best:
                pos.best = score
            pos.epoch, pos.batch, pos.loss_sum, pos.tokens = pos.epoch + 1, 0, 0.0, 0
            # best.pt before last.pt: a kill between the two then replays the epoch on --resume and
            # writes best.pt again, where the other order would record the new best score with no best.pt
            save(*([run / BEST] if is_best else []), last, metrics=metrics)
            if main:
                with open(run / METRICS_FILE, "a", encoding="utf-8") as f:
                    f.write(json.dumps(metrics) + "\n")
            if progress and main:
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
