"""Experiments over many small memory networks, each trained in memory and scored on bAbI's
test files: the per-task table (`run_table`, `train_and_score`) and the paper's joint training.

The paper's "joint" columns (Sukhbaatar et al. 2015, Table 1) train ONE network on the
training files of all 20 tasks together: one vocabulary, one answer softmax over every
task's answers, one random 10% of all the questions held out. The settings are the
authors' config_babi_joint.m (MemN2N-babi-matlab), which differ from the per-task ones:
d = 50, linear start 30 epochs, then 60 epochs with the learning rate halved every 15.
`edge-s2s train babi --tasks all` trains the same thing into a run directory for export;
this module is the table's (scripts/babi_table.py): no files, errors per task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .babi import TASKS, Example, load_task, load_tasks
from .loop import train_memn2n
from .model import MemN2N, MemN2NConfig, evaluate


@dataclass
class RunScore:
    """One trained network's errors: test, and the last epoch's training and validation ones."""

    test_error: float
    train_error: float  # during the last epoch (RN on), what the paper picks its best run by
    val_error: float
    seconds: float  # training only
    epochs: int
    ls_epochs: int


def train_and_score(train_ex: Sequence[Example], test_ex: Sequence[Example], cfg: MemN2NConfig,
                    seed: int = 1) -> tuple[MemN2N, RunScore]:
    """train_memn2n (cfg.val_fraction of train_ex held out) and the test error on test_ex."""
    start = time.perf_counter()
    model, history = train_memn2n(train_ex, None, cfg, seed)
    seconds = time.perf_counter() - start
    last = history[-1]
    return model, RunScore(evaluate(model, test_ex), last["train_error"], last["val_error"], round(seconds, 2),
                           len(history), sum(h["phase"] == "linear" for h in history))


def run_table(root: str | Path, tasks: Sequence[int], hops: int | Sequence[int], cfg: MemN2NConfig | None = None,
              seed: int = 1, size: str = "1k",
              progress: Callable[[str], None] | None = None) -> dict[int, dict[int, float]]:
    """Test error per task and number of hops: {task: {hops: error}}, one network each.

    Each task trains alone on its training file (cfg.val_fraction held out for validation)
    and is scored on its test file, as the paper's per-task tables; several seeds and the
    joint column are scripts/babi_table.py's. progress, when given, gets one line per run
    with the error and the training seconds.
    """
    cfg = cfg or MemN2NConfig()
    hop_list = [hops] if isinstance(hops, int) else list(hops)
    table: dict[int, dict[int, float]] = {}
    for task in tasks:
        train_ex = load_task(root, task, "train", size)
        test_ex = load_task(root, task, "test", size)
        for k in hop_list:
            _, score = train_and_score(train_ex, test_ex, replace(cfg, hops=k), seed)
            table.setdefault(task, {})[k] = score.test_error
            if progress is not None:
                progress(f"task {task} hops {k}: test error {score.test_error:.3f} ({score.seconds:.1f} s training)")
    return table


# config_babi_joint.m: input_dim 50, nepochs 60, lrate_decay_step 15, ls_nepochs 30 (lr 0.01/2 throughout LS)
JOINT_CONFIG = MemN2NConfig(dim=50, epochs=60, lr_decay_every=15, ls_max_epochs=30)


@dataclass
class JointScore:
    """One joint network: its overall run (RunScore over all tasks) and the test error of each task."""

    run: RunScore
    errors: dict[int, float]

    @property
    def mean_error(self) -> float:
        return sum(self.errors.values()) / len(self.errors)


def train_joint(root: str | Path, tasks: Sequence[int] = tuple(TASKS), cfg: MemN2NConfig = JOINT_CONFIG,
                seed: int = 1, size: str = "1k",
                progress: Callable[[str], None] | None = None) -> tuple[MemN2N, JointScore]:
    """Train one network on the tasks' training files together; test error per task.

    Every file is found before any training starts (babi.load_tasks), so a missing one
    fails at once with a BabiError naming it.
    """
    tasks = list(tasks)
    train_ex = load_tasks(root, tasks, "train", size)
    test_ex = load_tasks(root, tasks, "test", size)
    model, run = train_and_score(train_ex, test_ex, cfg, seed)
    errors = {t: evaluate(model, [ex for ex in test_ex if ex.task == t]) for t in tasks}
    score = JointScore(run, errors)
    if progress is not None:
        progress(f"joint {len(tasks)} tasks, {cfg.hops} hops, seed {seed}: mean test error "
                 f"{100 * score.mean_error:.1f}% ({run.seconds:.0f} s training)")
    return model, score


__all__ = ["RunScore", "train_and_score", "run_table", "JOINT_CONFIG", "JointScore", "train_joint"]
