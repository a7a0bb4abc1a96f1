"""`edge-s2s train babi`: train one End-To-End Memory Network on bAbI tasks into a run directory.

Several tasks train jointly (one vocabulary, one answer softmax over all their answers).
The run directory, as the other runs write theirs:

    config.json     task "answer", this BabiRunConfig (the MemN2NConfig under "model"),
                    the tasks, the vocabulary tokens and the answer classes
    last.pt         the network after the latest epoch (atomic, train/core/checkpoint.py)
    metrics.jsonl   one JSON line per epoch (phase, lr, train/val loss and error, seconds)
    steps.jsonl     one JSON line per optimizer step
    heldout.json    validation examples (never trained on) for the exporter's parity and
                    golden cases
    results.json    test error per task, training seconds

Training runs through the shared epoch loop (train/core/epochs.py): last.pt at every epoch
end, steps.jsonl, `--resume`, torchrun. A memory network keeps no best.pt: the paper trains a
fixed number of epochs and reports the last network, and so does this run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...runtime.text import Vocab
from ..core.checkpoint import LAST, load_checkpoint
from ..core.data_roots import shared_data
from ..core.epochs import Schedule, TaskHooks, run_epochs
from ..core.errors import RunError
from ..core.run_dir import CONFIG_FILE, save_schedule, write_json
from .babi import SIZES, TASKS, BabiError, Example, answer_vocab, build_vocab, load_tasks
from .model import MemN2N, MemN2NConfig, _loss_error, _take, encode_examples, evaluate, random_time_index

TASK = "answer"
HELDOUT_FILE = "heldout.json"
RESULTS_FILE = "results.json"
HELDOUT_PER_TASK = 50  # validation examples per task kept for export (parity and golden cases)


@dataclass
class BabiRunConfig:
    """What `train babi` trains: which tasks, which data, where to, with which network."""

    tasks: list[int]
    size: str = "1k"
    data_root: str = field(default_factory=lambda: str(shared_data("babi")))  # $EDGE_S2S_DATA or ../shared/data
    out_dir: str = "runs/babi"
    seed: int = 1
    model: MemN2NConfig = field(default_factory=MemN2NConfig)
    max_steps: int = 0  # stop after this many optimizer steps (0 = all epochs); --resume goes on

    def __post_init__(self) -> None:
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 0:
            raise ValueError(f"--max-steps must be an integer >= 0 (0 = all epochs), got {self.max_steps!r}")
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


def train_babi(cfg: BabiRunConfig, progress: Callable[[str], None] | None = None,
               resume: bool = False) -> tuple[Path, dict[int, float]]:
    """Train on the tasks' training files (a share held out), score each task's test file.

    Returns the run directory and {task: test error}. Every data file is found before
    training starts, so a missing one fails at once (BabiError, one line). resume=True
    continues the run's last.pt with its saved settings (the same data must be there); only
    max_steps and model.epochs come from `cfg` (how long to go on, as for every task's resume)
    and are written back into config.json.
    """
    say = progress or (lambda _: None)
    run = Path(cfg.out_dir)
    if resume:
        if not (run / LAST).is_file():
            raise RunError(f"cannot resume: {run / LAST} does not exist (start the run without --resume)")
        saved = _load_config(run)
        asked = cfg
        cfg = load_babi_run_config(run)
        cfg.max_steps, cfg.model.epochs = asked.max_steps, asked.model.epochs
        save_schedule(run, {"max_steps": cfg.max_steps, "model.epochs": cfg.model.epochs})
    elif (run / LAST).is_file():
        raise RunError(f"{run} already holds a training run ({LAST}): resume it with --resume, or choose another "
                       "--out directory")
    train_all = load_tasks(cfg.data_root, cfg.tasks, "train", cfg.size)
    test_all = load_tasks(cfg.data_root, cfg.tasks, "test", cfg.size)
    if len(train_all) < 2:
        raise BabiError(f"the training files of task(s) {cfg.tasks} hold {len(train_all)} question(s): "
                        "a memory network needs more")
    train_ex, val_ex = _split(train_all, cfg.model.val_fraction, cfg.seed)
    vocab, answers = build_vocab(train_ex + val_ex), answer_vocab(train_ex + val_ex)
    if resume:
        if vocab.tokens != list(saved["tokens"]) or answers != [str(a) for a in saved["answers"]]:
            raise RunError(f"the bAbI files under {cfg.data_root} are not the ones {run} was trained on (vocabulary "
                           "or answers differ): resume with the same data, or start a new run")
    else:
        run.mkdir(parents=True, exist_ok=True)
        write_json(run / CONFIG_FILE, {"task": TASK, "train": cfg.to_dict(), "tasks": list(cfg.tasks),
                                       "tokens": vocab.tokens, "answers": answers})
        held = [ex for t in cfg.tasks for ex in [e for e in val_ex if e.task == t][:HELDOUT_PER_TASK]]
        write_json(run / HELDOUT_FILE, {"examples": [example_json(ex) for ex in held]})
    m = cfg.model
    say(f"training a {m.hops}-hop memory network (d={m.dim}, memory {m.memory_size} sentences) on bAbI "
        f"task{'s' if len(cfg.tasks) > 1 else ''} {','.join(map(str, cfg.tasks))} ({cfg.size}): "
        f"{len(train_ex)} training, {len(val_ex)} validation questions")
    model, history = train_memn2n(train_ex, val_ex, cfg.model, cfg.seed, run_dir=run, resume=resume,
                                  progress=progress is not None, run_config=cfg, max_steps=cfg.max_steps)
    seconds = float(load_checkpoint(run / LAST)["position"]["seconds"])
    errors = {t: evaluate(model, [ex for ex in test_all if ex.task == t]) for t in cfg.tasks}
    write_json(run / RESULTS_FILE, {"test_error": {str(t): e for t, e in errors.items()},
                                    "mean_test_error": float(np.mean(list(errors.values()))),
                                    "test_questions": {str(t): sum(ex.task == t for ex in test_all)
                                                       for t in cfg.tasks},
                                    "train_seconds": round(seconds, 2), "epochs": len(history)})
    say(f"trained {len(history)} epochs in {seconds:.1f} s")
    for t, e in errors.items():
        say(f"task {t:>2} test error {100 * e:5.1f}%")
    if len(errors) > 1:
        say(f"mean     test error {100 * float(np.mean(list(errors.values()))):5.1f}%")
    return run, errors


def load_babi_run_config(run_dir: str | Path) -> BabiRunConfig:
    """The BabiRunConfig a memory network run was started with (RunError, one line, for anything else)."""
    t = _load_config(Path(run_dir))["train"]
    try:
        return BabiRunConfig(tasks=list(t["tasks"]), size=t["size"], data_root=t["data_root"], out_dir=str(run_dir),
                             seed=t["seed"], model=MemN2NConfig.from_dict(t["model"]), max_steps=t.get("max_steps", 0))
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{Path(run_dir, CONFIG_FILE)} is malformed ({e}): it was not written by edge-s2s training"
                       ) from None


def _load_config(run: Path) -> dict[str, Any]:
    """config.json of an answer run (RunError, one line, for anything else)."""
    path = run / CONFIG_FILE
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("task") != TASK:
            raise RunError(f"{run} is a {d.get('task', 'translate')!r} run, not a memory network (answer) run")
        d["train"]["model"], d["tokens"], d["answers"]  # noqa: B018  (present)
        return d
    except FileNotFoundError:
        raise RunError(f"{run} has no {CONFIG_FILE}: it is not a training run directory") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path} is malformed ({type(e).__name__}: {e}): train the run again") from None


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


# --- training through the shared epoch loop ------------------------------------------------

HISTORY_KEYS = ("epoch", "phase", "lr", "train_loss", "train_error", "val_loss", "val_error")


def train_memn2n(examples_train: Sequence[Example], examples_val: Sequence[Example] | None,
                 cfg: MemN2NConfig, seed: int = 1, run_dir: str | Path | None = None, resume: bool = False,
                 progress: bool = False, run_config=None, max_steps: int = 0) -> tuple[MemN2N, list[dict[str, Any]]]:
    """Train one network; returns it (softmax on, eval mode) and one history row per epoch.

    examples_val None holds out cfg.val_fraction of examples_train at random (seeded).
    The vocabulary and answer classes come from the training and validation examples.
    History rows: epoch (1-based, over both phases), phase ("linear" or "softmax"), lr,
    train_loss (mean NLL), train_error, val_loss, val_error.

    Runs through the shared epoch loop (train/core/epochs.py) with the paper's schedule as
    task hooks: SGD on the summed batch loss, the linear-start phase and its switch, the learning
    rate halved every lr_decay_every epochs, the order of each epoch a seeded permutation. With
    run_dir the loop writes checkpoints, metrics.jsonl and steps.jsonl there (`resume` continues
    them; run_config is what the checkpoints record as the training config, default cfg); without
    it the network trains in memory. max_steps > 0 stops after that many optimizer steps in all
    (the network as it is then). Deterministic for a seed (torch.manual_seed(seed) for the
    weights; numpy generators seeded from (seed, epoch) for the order and (seed, step) for RN).
    Under torchrun, train_error counts rank 0's share of each batch, and each rank draws RN for its
    share from the (seed, step) generator, so the noise differs from a single process's.
    """
    examples_train = list(examples_train)
    if examples_val is None:
        if len(examples_train) < 2:
            raise ValueError("train_memn2n needs at least 2 training examples to hold some out for validation")
        examples_train, examples_val = _split(examples_train, cfg.val_fraction, seed)
    examples_val = list(examples_val)
    if not examples_train or not examples_val:
        raise ValueError("train_memn2n needs training and validation examples (pass examples_val=None to hold out "
                         f"{cfg.val_fraction:.0%} of the training ones)")
    vocab = build_vocab(examples_train + examples_val)
    answers = answer_vocab(examples_train + examples_val)
    torch.manual_seed(seed)
    model = MemN2N(cfg, vocab, answers)
    train = encode_examples(examples_train, vocab, answers, cfg.memory_size)
    val = encode_examples(examples_val, vocab, answers, cfg.memory_size)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.0, weight_decay=0.0)
    N = train["answer"].shape[0]
    base_lr = cfg.ls_lr if cfg.linear_start else cfg.lr
    # the phase: linear start (no softmax) until its switch, then `epochs` epochs with the softmax
    phase = {"linear_start": cfg.linear_start, "phase_start": 0, "best_val": math.inf, "stale": 0}
    counts = {"wrong": 0, "seen": 0, "lr": base_lr}
    history: list[dict[str, Any]] = []

    def start_epoch(epoch: int) -> None:
        model.linear_start = phase["linear_start"]
        lr = base_lr if phase["linear_start"] else \
            base_lr * 0.5 ** ((epoch - phase["phase_start"]) // cfg.lr_decay_every)
        for group in opt.param_groups:
            group["lr"] = lr
        counts["lr"] = lr

    def batches(epoch: int) -> list[list[int]]:
        order = np.random.default_rng([seed, epoch]).permutation(N)
        return [order[s : s + cfg.batch_size].tolist() for s in range(0, N, cfg.batch_size)]

    def train_step(indices: list[int], step: int):
        idx = torch.tensor(indices)
        story, question, n = _take(train, idx)
        time = None
        if cfg.random_noise > 0:  # RN from a generator seeded with (seed, step): resume replays it exactly
            time = torch.from_numpy(random_time_index(n.numpy(), story.shape[1], cfg.random_noise,
                                                      np.random.default_rng([seed, step]), cfg.memory_size))
        logp, _ = model(story, question, n, time)
        answer = train["answer"][idx]
        loss = F.nll_loss(logp, answer, reduction="mean")  # the loop sums it back (Schedule.reduction)
        counts["wrong"] += int((logp.argmax(-1) != answer).sum())
        counts["seen"] += len(indices)
        return loss, len(indices), float(loss.detach())

    def evaluate_epoch():
        val_loss, val_error = _loss_error(model, val)
        metrics = {"phase": "linear" if phase["linear_start"] else "softmax", "lr": counts["lr"],
                   "train_error": counts["wrong"] / max(counts["seen"], 1), "val_loss": val_loss,
                   "val_error": val_error}
        return metrics, None, f", val loss {val_loss:.4f}, val error {100 * val_error:.1f}% ({metrics['phase']})"

    def end_epoch(metrics: dict) -> bool:
        """Record the epoch; end linear start when its time (or patience) is up; True once done."""
        history.append({k: metrics[k] for k in HISTORY_KEYS})
        counts.update(wrong=0, seen=0)
        epoch = metrics["epoch"]  # epochs done
        if phase["linear_start"]:
            phase["stale"] = 0 if metrics["val_loss"] < phase["best_val"] else phase["stale"] + 1
            phase["best_val"] = min(phase["best_val"], metrics["val_loss"])
            if (cfg.ls_patience and phase["stale"] >= cfg.ls_patience) or epoch >= cfg.ls_max_epochs:
                phase.update(linear_start=False, phase_start=epoch)  # re-insert the softmax, restart the schedule
                model.linear_start = False
        return not phase["linear_start"] and epoch - phase["phase_start"] >= cfg.epochs

    def load_state(d: dict) -> None:
        phase.update(d.get("phase", {}))
        counts.update(d.get("counts", {}))
        history[:] = d.get("history", [])

    schedule = Schedule(epochs=cfg.epochs + (cfg.ls_max_epochs if cfg.linear_start else 0), seed=seed,
                        batch_size=cfg.batch_size, clip=cfg.clip, max_steps=max_steps, reduction="sum")
    hooks = TaskHooks(schedule=schedule, batches=batches, start_epoch=start_epoch, end_epoch=end_epoch,
                      state_dict=lambda: {"phase": dict(phase), "counts": dict(counts), "history": list(history)},
                      load_state_dict=load_state,
                      complete=lambda epoch: not phase["linear_start"] and epoch - phase["phase_start"] >= cfg.epochs)
    model.train()
    run_epochs(Path(run_dir) if run_dir is not None else None, run_config or cfg, model, opt, N, [], train_step,
               evaluate_epoch, {"task": TASK, "tokens": vocab.tokens, "answers": answers}, resume, progress, hooks)
    model.linear_start = False
    model.eval()
    return model, history
