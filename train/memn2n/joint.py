"""Joint training of one End-To-End Memory Network on several bAbI tasks, scored per task.

The paper's "joint" columns (Sukhbaatar et al. 2015, Table 1) train ONE network on the
training files of all 20 tasks together: one vocabulary, one answer softmax over every
task's answers, one random 10% of all the questions held out. The settings are the
authors' config_babi_joint.m (MemN2N-babi-matlab), which differ from the per-task ones:
d = 50, linear start 30 epochs, then 60 epochs with the learning rate halved every 15.
`edge-s2s train babi --tasks all` trains the same thing into a run directory for export;
this module is the table's (scripts/babi_table.py): no files, errors per task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .babi import TASKS, load_tasks
from .model import MemN2N, MemN2NConfig, RunScore, evaluate, train_and_score

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


__all__ = ["JOINT_CONFIG", "JointScore", "train_joint"]
