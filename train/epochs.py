"""The epoch loop every model trains with: batches, optimizer steps, validation, checkpoints.

A task supplies two functions and this loop does the rest, identically for all tasks:

* `train_step(indices, step)` -> (loss to backpropagate, target tokens, token NLL as a float);
  `step` is the optimizer steps done so far (schedules such as scheduled sampling read it)
* `evaluate()` -> (metrics dict, score where higher is better, extra text for the log line)

Batches are a pure function of (seed, epoch) (`data.epoch_batches`), so a checkpoint only
needs the position (`Position`) plus model, optimizer and RNG states for `--resume` to
continue bit for bit. `last.pt` is written at every epoch end (and every
`checkpoint_every` steps), `best.pt` whenever the score improves; both atomically.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .checkpoint import BEST, LAST, CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import epoch_batches

METRICS_FILE = "metrics.jsonl"


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


def run_epochs(run: Path, cfg, model: torch.nn.Module, opt: torch.optim.Optimizer, n_examples: int,
               lengths: list[int], train_step: Callable, evaluate: Callable, checkpoint_extra: dict[str, Any],
               resume: bool, progress: bool) -> Path:
    """Train `model` on `n_examples` (cfg: epochs, batch_size, seed, clip, max_steps,
    checkpoint_every); returns the run directory."""
    last = run / LAST
    pos = Position()
    if resume:
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        pos = Position.from_checkpoint(ck)
        set_rng_state(ck["rng"])

    def save(path: Path, metrics: dict | None = None) -> None:
        save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "train_config": cfg.to_dict(), "model_config": asdict(cfg.model),
                               **checkpoint_extra, "position": asdict(pos), "step": pos.step,
                               "rng": rng_state(), "metrics": metrics or {}})

    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    while pos.epoch < cfg.epochs:
        t0 = time.time()
        batches = epoch_batches(n_examples, lengths, cfg.batch_size, cfg.seed, pos.epoch)
        bar = tqdm(total=len(batches), initial=pos.batch, desc=f"epoch {pos.epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False, dynamic_ncols=True)
        while pos.batch < len(batches):
            if cfg.max_steps and pos.step >= cfg.max_steps:
                bar.close()
                save(last)
                return run
            opt.zero_grad(set_to_none=True)
            loss, n, nll = train_step(batches[pos.batch], pos.step)
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            opt.step()
            pos.step += 1
            pos.batch += 1
            pos.loss_sum += nll * n
            pos.tokens += n
            bar.update(1)
            bar.set_postfix(loss=f"{nll:.3f}")
            if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                save(last)
        bar.close()
        train_loss = pos.loss_sum / max(pos.tokens, 1)
        metrics, score, shown = evaluate()
        model.train()
        metrics = {"epoch": pos.epoch + 1, "step": pos.step, "train_loss": train_loss, **metrics,
                   "seconds": round(time.time() - t0, 3)}
        is_best = score > pos.best
        if is_best:
            pos.best = score
        pos.epoch, pos.batch, pos.loss_sum, pos.tokens = pos.epoch + 1, 0, 0.0, 0
        save(last, metrics)
        if is_best:
            save(run / BEST, metrics)
        with open(run / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        if progress:
            tqdm.write(f"epoch {metrics['epoch']}: train loss {train_loss:.4f}{shown}")
    return run
