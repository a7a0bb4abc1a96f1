"""`edge-s2s train babi`: train one End-To-End Memory Network on bAbI tasks into a run directory.

Several tasks train jointly (one vocabulary, one answer softmax over all their answers).
The run directory, as the other runs write theirs:

    config.json     task "answer", this BabiRunConfig (the MemN2NConfig under "model"),
                    the tasks, the vocabulary tokens and the answer classes
    last.pt         the trained network (written atomically, train/checkpoint.py)
    metrics.jsonl   one JSON line per epoch (phase, lr, train/val loss and error)
    heldout.json    validation examples (never trained on) for the exporter's parity and
                    golden cases
    results.json    test error per task, training seconds

Training takes seconds to minutes on one CPU (train/memn2n.py), so there is no resume.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...runtime.text import Vocab
from ...runtime.tools.run_logs import METRICS_FILE
from ..core.checkpoint import LAST, atomic_write_bytes, load_checkpoint, save_checkpoint
from ..core.errors import RunError
from ..core.run_dir import CONFIG_FILE, write_json
from .babi import DEFAULT_ROOT, SIZES, TASKS, BabiError, Example, load_tasks
from .model import MemN2N, MemN2NConfig, evaluate, train_memn2n

TASK = "answer"
HELDOUT_FILE = "heldout.json"
RESULTS_FILE = "results.json"
HELDOUT_PER_TASK = 50  # validation examples per task kept for export (parity and golden cases)


@dataclass
class BabiRunConfig:
    """What `train babi` trains: which tasks, which data, where to, with which network."""

    tasks: list[int]
    size: str = "1k"
    data_root: str = str(DEFAULT_ROOT)
    out_dir: str = "runs/babi"
    seed: int = 1
    model: MemN2NConfig = field(default_factory=MemN2NConfig)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("no bAbI tasks given: pass --tasks 1, 1,2,3, 1-20 or all")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad:
            raise ValueError(f"unknown bAbI task {bad[0]}: use numbers from 1 to 20 (or all)")
        if self.size not in SIZES:
            raise ValueError(f"unknown bAbI size {self.size!r}: use one of {', '.join(SIZES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_tasks(text: str) -> list[int]:
    """ "1" -> [1], "1,2,3" -> [1, 2, 3], "1-3,5" -> [1, 2, 3, 5], "all" -> 1..20; ValueError otherwise."""
    if text.strip().lower() == "all":
        return sorted(TASKS)
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out += list(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"--tasks {text!r}: use task numbers like 1, 1,2,3, 1-20 or all") from None
    if not out:
        raise ValueError(f"--tasks {text!r} names no task: use task numbers like 1, 1,2,3, 1-20 or all")
    return list(dict.fromkeys(out))


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `fraction` of the examples at random (seeded), as train_memn2n does itself."""
    order = np.random.default_rng(seed).permutation(len(examples))
    n_val = max(1, int(round(fraction * len(examples))))
    return [examples[i] for i in np.sort(order[n_val:])], [examples[i] for i in order[:n_val]]


def example_json(ex: Example) -> dict[str, Any]:
    """An example as the run (and the exporter) keep it: words joined back into sentences."""
    return {"story": [" ".join(s) + "." for s in ex.story], "question": " ".join(ex.question) + "?",
            "answer": ex.answer, "task": ex.task}


def train_babi(cfg: BabiRunConfig, progress: Callable[[str], None] | None = None) -> tuple[Path, dict[int, float]]:
    """Train on the tasks' training files (a share held out), score each task's test file.

    Returns the run directory and {task: test error}. Every data file is found before
    training starts, so a missing one fails at once (BabiError, one line).
    """
    say = progress or (lambda _: None)
    run = Path(cfg.out_dir)
    if (run / LAST).is_file():
        raise RunError(f"{run} already holds a training run ({LAST}): choose another --out directory")
    train_all = load_tasks(cfg.data_root, cfg.tasks, "train", cfg.size)
    test_all = load_tasks(cfg.data_root, cfg.tasks, "test", cfg.size)
    if len(train_all) < 2:
        raise BabiError(f"the training files of task(s) {cfg.tasks} hold {len(train_all)} question(s): "
                        "a memory network needs more")
    train_ex, val_ex = _split(train_all, cfg.model.val_fraction, cfg.seed)
    m = cfg.model
    say(f"training a {m.hops}-hop memory network (d={m.dim}, memory {m.memory_size} sentences) on bAbI "
        f"task{'s' if len(cfg.tasks) > 1 else ''} {','.join(map(str, cfg.tasks))} ({cfg.size}): "
        f"{len(train_ex)} training, {len(val_ex)} validation questions")
    start = time.perf_counter()
    model, history = train_memn2n(train_ex, val_ex, cfg.model, cfg.seed)
    seconds = time.perf_counter() - start
    errors = {t: evaluate(model, [ex for ex in test_all if ex.task == t]) for t in cfg.tasks}

    run.mkdir(parents=True, exist_ok=True)
    write_json(run / CONFIG_FILE, {"task": TASK, "train": cfg.to_dict(), "tasks": list(cfg.tasks),
                                    "tokens": model.vocab.tokens, "answers": model.answers})
    lines = "".join(json.dumps(row) + "\n" for row in history)
    atomic_write_bytes(run / METRICS_FILE, lines.encode("utf-8"))
    held = [ex for t in cfg.tasks for ex in [e for e in val_ex if e.task == t][:HELDOUT_PER_TASK]]
    write_json(run / HELDOUT_FILE, {"examples": [example_json(ex) for ex in held]})
    write_json(run / RESULTS_FILE, {"test_error": {str(t): e for t, e in errors.items()},
                                     "mean_test_error": float(np.mean(list(errors.values()))),
                                     "test_questions": {str(t): sum(ex.task == t for ex in test_all)
                                                        for t in cfg.tasks},
                                     "train_seconds": round(seconds, 2), "epochs": len(history)})
    save_checkpoint(run / LAST, {"task": TASK, "model": model.state_dict(), "train_config": cfg.to_dict(),
                                 "step": len(history), "tokens": model.vocab.tokens, "answers": model.answers})
    say(f"trained {len(history)} epochs in {seconds:.1f} s")
    for t, e in errors.items():
        say(f"task {t:>2} test error {100 * e:5.1f}%")
    if len(errors) > 1:
        say(f"mean     test error {100 * float(np.mean(list(errors.values()))):5.1f}%")
    return run, errors


def load_memn2n_run(run_dir: str | Path, checkpoint: str | Path = "best") -> tuple[MemN2N, dict[str, Any], Path]:
    """(the network in eval mode, the run's config.json, the checkpoint path) of an answer run."""
    from ..core.checkpoint import BEST

    run = Path(run_dir)
    if not run.is_dir():
        raise RunError(f"run directory {run} does not exist: pass the directory `edge-s2s train babi` wrote")
    path = run / CONFIG_FILE
    try:
        run_cfg = json.loads(path.read_text(encoding="utf-8"))
        if run_cfg.get("task") != TASK:
            raise RunError(f"{run} is a {run_cfg.get('task', 'translate')!r} run, not a memory network (answer) run")
        cfg = MemN2NConfig.from_dict(run_cfg["train"]["model"])
        vocab, answers = Vocab(list(run_cfg["tokens"])), [str(a) for a in run_cfg["answers"]]
    except FileNotFoundError:
        raise RunError(f"{run} has no {CONFIG_FILE}: it is not a training run directory") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise RunError(f"{path} is malformed ({type(e).__name__}: {e}): train the run again") from None
    if str(checkpoint) in ("best", "last"):
        ck_path = run / (BEST if str(checkpoint) == "best" and (run / BEST).is_file() else LAST)
    else:
        ck_path = Path(checkpoint) if Path(checkpoint).is_absolute() else run / checkpoint
    ck = load_checkpoint(ck_path)
    if ck.get("task") != TASK or list(ck.get("tokens", [])) != vocab.tokens or list(ck.get("answers", [])) != answers:
        raise RunError(f"{ck_path} does not belong to {path} (task, vocabulary or answers differ): "
                       "the run directory is inconsistent, train again")
    model = MemN2N(cfg, vocab, answers)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, run_cfg, ck_path


def read_heldout(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's held-out examples (story sentences, question, answer, task)."""
    path = Path(run_dir, HELDOUT_FILE)
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except FileNotFoundError:
        raise RunError(f"{run_dir} has no {HELDOUT_FILE}: export needs held-out questions, train again") from None
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path} is malformed ({type(e).__name__}: {e}): train again") from None
    if not examples:
        raise RunError(f"{path} holds no examples: export needs held-out questions, train again")
    return list(examples)


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """results.json (test errors), {} when absent."""
    path = Path(run_dir, RESULTS_FILE)
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return {}


__all__ = ["BabiRunConfig", "parse_tasks", "train_babi", "load_memn2n_run", "read_heldout", "read_results",
           "example_json", "TASK"]
