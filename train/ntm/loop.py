"""Training the Neural Turing Machine on copy and associative recall (Graves et al. 2014,
Section 4), and an LSTM of similar size trained the same way, as token generators.

Every example is a forced prefix (the task input ending <delim>) and a target (train/
tasks.py). Both models read prefix + target teacher-forced, one token a step; the
cross-entropy covers the target positions only: at test time the prefix is forced
(`prefix=` of the runtime loop), so predicting it is no part of the task. Batches mix
lengths (padding is masked out with the prefix); the largest length grows by one every
`curriculum_steps` steps (`tasks.curriculum_size`), and every example is drawn fresh.

Training runs through the shared epoch loop (train/core/epochs.py), so it has torchrun,
steps.jsonl, atomic checkpoints and exact resume like every other task. An "epoch" here is
`eval_every` steps, ended by an evaluation; example i of step s is drawn from its own generator
seeded with (seed, s * batch_size + i), so any step's batch is a pure function of the seed
(resume and DDP sharding need no stored data-generator state).

Run directory (cfg.out_dir), laid out like the other generator runs so that `edge-s2s
export` makes a "generate" bundle of it (export/generate.py):

    config.json     {"task": "generate", "generator": "ntm-task", "train": NTMTaskConfig, ...}
    tokens.txt      task_vocab(): specials, the 256 patterns, <delim> <item> <query>
    last.pt/best.pt atomic checkpoints (best = fewest bit errors on a fixed evaluation set,
                    then the lowest evaluation loss)
    metrics.jsonl   one line per evaluation: epoch, step, train loss, curriculum size, eval loss,
                    bit errors, accuracy, seconds
    steps.jsonl     one line per optimizer step
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...runtime.text import Vocab
from ..core.checkpoint import BEST, LAST, load_checkpoint
from ..core.epochs import Schedule, TaskHooks, run_epochs
from ..core.errors import RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, seed_everything, write_json
from ..generate.config import GeneratorConfig
from ..generate.model import RasterGenerator
from .cell import CONTROLLERS, MEMORY_INITS, NTMConfig
from .model import NTMDecoder
from .tasks import TASKS, TaskExample, bit_errors, bit_inputs, curriculum_size, make_example, task_vocab

TASK = "generate"
GENERATOR = "ntm-task"  # config.json "generator": tells the exporter how to rebuild the model
MODELS = ("ntm", "lstm")
OPTIMIZERS = ("adam", "rmsprop")
DEFAULT_SIZES = {"copy": (1, 10), "recall": (2, 6)}  # the paper's training ranges (copy up to 20 there)


def _flag(name: str) -> str:
    """The `edge-s2s train ntm` option of a config field (messages name what the user typed)."""
    return "--" + {"min_size": "min-length", "max_size": "max-length"}.get(name, name.replace("_", "-"))


@dataclass
class NTMTaskConfig:
    """One run. model: "ntm" (NTMDecoder) or "lstm" (the baseline: RasterGenerator, one layer).
    min_size/max_size: the training range (copy length, or recall items); 0 = the task default.
    curriculum_steps: steps per curriculum stage (0 = reach max_size a third of the way through).
    """

    task: str = "copy"
    model: str = "ntm"
    controller: str = "lstm"
    controller_size: int = 100
    memory_slots: int = 128
    memory_width: int = 20
    shift_range: int = 1
    memory_init: str = "constant"  # learned the copy task faster here (as in Collier & Beel 2018)
    emb_dim: int = 32
    inputs: str = "embedding"  # or "bits": the pattern's 8 bits as input channels (tasks.bit_inputs)
    lstm_hidden: int = 120  # ~114k parameters, the default NTM has ~111k
    min_size: int = 0
    max_size: int = 0
    curriculum_steps: int = 0
    steps: int = 10000
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    clip: float = 10.0
    seed: int = 1
    eval_every: int = 250
    eval_sequences: int = 64
    checkpoint_every: int = 0
    out_dir: str = "runs/ntm-copy"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name, allowed in (("task", TASKS), ("model", MODELS), ("controller", CONTROLLERS),
                              ("memory_init", MEMORY_INITS), ("optimizer", OPTIMIZERS),
                              ("inputs", ("embedding", "bits"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{_flag(name)} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("controller_size", "memory_slots", "memory_width", "emb_dim", "lstm_hidden", "steps",
                     "batch_size", "eval_every", "eval_sequences"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{_flag(name)} must be a positive integer, got {v!r}")
        for name in ("min_size", "max_size", "curriculum_steps", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{_flag(name)} must be an integer >= 0, got {v!r}")
        lo, hi = self.sizes
        floor = DEFAULT_SIZES[self.task][0]
        if lo < floor:
            raise ValueError(f"{self.task} needs sizes >= {floor} ({'items' if self.task == 'recall' else 'patterns'}),"
                             f" got --min-length {lo}")
        if hi < lo:
            raise ValueError(f"--max-length {hi} is below the shortest training size {lo}: raise it")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive number, got {self.lr}")
        if not self.clip >= 0:
            raise ValueError(f"--clip must be >= 0 (0 = off), got {self.clip}")
        if self.model == "ntm" and 2 * self.shift_range + 1 > self.memory_slots:
            raise ValueError(f"--shift-range {self.shift_range} needs at least {2 * self.shift_range + 1} memory "
                             f"slots, got --memory-slots {self.memory_slots}")
        if self.model == "ntm":
            self.ntm_config()  # its own checks

    @property
    def sizes(self) -> tuple[int, int]:
        """(shortest, longest) training size: copy length or number of recall items."""
        lo, hi = DEFAULT_SIZES[self.task]
        return self.min_size or lo, self.max_size or hi

    def ntm_config(self) -> NTMConfig:
        return NTMConfig(controller=self.controller, controller_size=self.controller_size,
                         memory_slots=self.memory_slots, memory_width=self.memory_width,
                         shift_range=self.shift_range, memory_init=self.memory_init)

    def schedule(self) -> Schedule:
        """The epoch loop's view: one epoch per evaluation (`eval_every` steps), `steps` in all."""
        return Schedule(epochs=math.ceil(self.steps / self.eval_every), seed=self.seed, batch_size=self.batch_size,
                        clip=self.clip, max_steps=self.steps, checkpoint_every=self.checkpoint_every)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NTMTaskConfig:
        return cls(**d)


# --- models -------------------------------------------------------------------------------

def build_task_model(cfg: NTMTaskConfig, vocab_size: int) -> nn.Module:
    """The NTM decoder, or the LSTM baseline; both never emit <pad>, <unk> or <s>."""
    if cfg.model == "ntm":
        table = bit_inputs(task_vocab()) if cfg.inputs == "bits" else None
        return NTMDecoder(cfg.ntm_config(), vocab_size, emb_dim=cfg.emb_dim, input_table=table)
    gen = GeneratorConfig(unit="word", arch="lstm", emb_dim=cfg.emb_dim, hidden=cfg.lstm_hidden,
                          blocked_ids=[Vocab.pad_id, Vocab.unk_id, Vocab.bos_id])
    return RasterGenerator(gen, vocab_size)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_model(cfg: NTMTaskConfig) -> str:
    """A short name for tables and the manifest."""
    if cfg.model == "lstm":
        return f"LSTM {cfg.lstm_hidden}"
    return (f"NTM ({cfg.controller} controller {cfg.controller_size}, memory {cfg.memory_slots}x{cfg.memory_width}, "
            f"shifts -{cfg.shift_range}..{cfg.shift_range})")


# --- batches and the loss -------------------------------------------------------------------

def task_batch(examples: list[TaskExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sequences prefix + target [B, T] padded with <pad>, target mask [B, T] bool).

    The mask is True exactly where the model writes the task's output (end token included).
    """
    T = max(len(e.prefix) + len(e.target) for e in examples)
    seqs = torch.full((len(examples), T), Vocab.pad_id, dtype=torch.long)
    mask = torch.zeros(len(examples), T, dtype=torch.bool)
    for i, e in enumerate(examples):
        n, m = len(e.prefix), len(e.target)
        seqs[i, : n + m] = torch.tensor(e.prefix + e.target)
        mask[i, n : n + m] = True
    return seqs, mask


def target_nll(logprobs: torch.Tensor, seqs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed NLL over the masked positions, their count). Selecting with `where` (not
    multiplying by the mask) matters: <pad> and the other blocked ids have log-prob -inf."""
    picked = logprobs.gather(-1, seqs.unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, torch.zeros_like(picked)).sum(), int(mask.sum())


def training_examples(cfg: NTMTaskConfig, step: int, items: list[int], vocab: Vocab) -> list[TaskExample]:
    """The examples `items` of a batch at optimizer step `step`: example k is drawn (its size by the
    curriculum at this step, then its content) from a generator seeded with (seed, k)."""
    lo, hi = cfg.sizes
    out = []
    for k in items:
        rng = np.random.default_rng([cfg.seed, k])
        out.append(make_example(cfg.task, rng, curriculum_size(step, lo, hi, cfg.curriculum_steps, rng), vocab))
    return out


def fixed_examples(task: str, sizes: list[int], n: int, seed: int, vocab: Vocab) -> list[TaskExample]:
    """`n` examples cycling through `sizes`, the same for a given seed (the evaluation set)."""
    rng = np.random.default_rng(seed)
    return [make_example(task, rng, sizes[i % len(sizes)], vocab) for i in range(n)]


# --- PyTorch greedy (progress during training) --------------------------------------------------

@torch.no_grad()
def greedy_outputs(model: nn.Module, prefixes: list[list[int]], max_new: int) -> list[list[int]]:
    """What each row writes after its forced prefix (the end token included when reached), greedily,
    through the model's own step (the computation the bundle exports)."""
    B = len(prefixes)
    device = next(model.parameters()).device
    states = model.initial_states(model.encode(torch.zeros(B, dtype=torch.long, device=device)))
    rows = torch.arange(B, device=device)
    token = torch.full((B,), Vocab.bos_id, dtype=torch.long, device=device)
    outs: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    for t in range(max(len(p) for p in prefixes) + max_new):
        lp, _, new = model.step_core(token, rows, rows, {}, states)
        states = {n: new[n] for n in states}
        pick = model.decode_logprobs(lp).argmax(-1).tolist()
        nxt = []
        for i, p in enumerate(prefixes):
            if t < len(p):
                nxt.append(p[t])
                continue
            if not done[i]:
                outs[i].append(pick[i])
                done[i] = pick[i] == Vocab.eos_id or len(outs[i]) >= max_new
            nxt.append(pick[i])
        if all(done):
            break
        token = torch.tensor(nxt, dtype=torch.long, device=device)
    return outs


def score_outputs(outputs: list[list[int]], examples: list[TaskExample]) -> dict[str, float]:
    """Mean bit errors per sequence and exact-sequence accuracy (end token required)."""
    errs = [bit_errors(o, e.target) for o, e in zip(outputs, examples)]
    exact = [o == e.target for o, e in zip(outputs, examples)]
    return {"bit_errors": float(np.mean(errs)), "accuracy": float(np.mean(exact))}


@torch.no_grad()
def evaluate_model(model: nn.Module, examples: list[TaskExample], batch_size: int = 64) -> dict[str, float]:
    """Teacher-forced target NLL per token, and greedy bit errors / accuracy, in PyTorch."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, outs = 0.0, 0, []
    for s in range(0, len(examples), batch_size):
        chunk = examples[s : s + batch_size]
        seqs, mask = task_batch(chunk)
        seqs, mask = seqs.to(device), mask.to(device)
        nll, n = target_nll(model(seqs, torch.zeros(len(chunk), dtype=torch.long, device=device)), seqs, mask)
        total, count = total + float(nll), count + n
        outs += greedy_outputs(model, [e.prefix for e in chunk], 2 * max(len(e.target) for e in chunk))
    model.train(was)
    return {"eval_loss": total / max(count, 1), **score_outputs(outs, examples)}


# --- the run ----------------------------------------------------------------------------------

def is_ntm_task_run(run_dir: str | Path) -> bool:
    """True when config.json says the run was written by `train_ntm_task`."""
    path = Path(run_dir, CONFIG_FILE)
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def load_ntm_task_config(run_dir: str | Path) -> NTMTaskConfig:
    path = Path(run_dir, CONFIG_FILE)
    if not path.is_file():
        raise RunError(f"{run_dir} has no {CONFIG_FILE}: it is not a training run directory")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("generator") != GENERATOR:
            raise RunError(f"{run_dir} is not an NTM-task run (no \"generator\": \"{GENERATOR}\" in {CONFIG_FILE})")
        return NTMTaskConfig.from_dict(d["train"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path} is malformed ({e}): it was not written by `edge-s2s train ntm`") from None


def load_ntm_task_run(run_dir: str | Path, checkpoint: str | Path = "best"
                      ) -> tuple[nn.Module, Vocab, NTMTaskConfig, Path]:
    """(model in eval mode, vocab, config, checkpoint path); checkpoint: best, last or a path."""
    run = Path(run_dir)
    cfg = load_ntm_task_config(run)
    if str(checkpoint) in ("best", "last"):
        ck_path = run / BEST if checkpoint == "best" and (run / BEST).is_file() else run / LAST
    else:
        ck_path = Path(checkpoint) if Path(checkpoint).exists() else run / checkpoint
    ck = load_checkpoint(ck_path)
    vocab = Vocab.load(run / TOKENS_FILE)
    model = build_task_model(cfg, len(vocab))
    model.load_state_dict(ck["model"])
    return model.eval(), vocab, cfg, ck_path


def _optimizer(cfg: NTMTaskConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=cfg.lr, momentum=0.9, alpha=0.95)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def _start(cfg: NTMTaskConfig, resume: bool, vocab: Vocab) -> NTMTaskConfig:
    """Create (or check) the run directory; returns the config the run goes on with."""
    run = Path(cfg.out_dir)
    if resume:
        if not (run / LAST).is_file():
            raise RunError(f"cannot resume: {run / LAST} does not exist (start the run without --resume)")
        saved = load_ntm_task_config(run)
        saved.steps, saved.out_dir = cfg.steps, cfg.out_dir
        d = json.loads((run / CONFIG_FILE).read_text(encoding="utf-8"))
        write_json(run / CONFIG_FILE, {**d, "train": saved.to_dict()})  # the step target the run now has
        return saved
    if (run / LAST).is_file():
        raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
    lo, hi = cfg.sizes
    if not cfg.curriculum_steps:  # resolved once and saved, so --resume with more steps keeps the schedule
        cfg.curriculum_steps = max(1, cfg.steps // (3 * (hi - lo + 1)))
    run.mkdir(parents=True, exist_ok=True)
    vocab.save(run / TOKENS_FILE)
    params = parameter_count(build_task_model(cfg, len(vocab)))
    write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "task": TASK, "generator": GENERATOR,
                                    "vocab_size": len(vocab), "model": describe_model(cfg), "parameters": params})
    return cfg


def train_ntm_task(cfg: NTMTaskConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) one model on one task through the shared epoch loop; returns the run directory."""
    vocab = task_vocab()
    cfg = _start(cfg, resume, vocab)
    run, device = Path(cfg.out_dir), torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = build_task_model(cfg, len(vocab)).to(device)
    opt = _optimizer(cfg, model)
    lo, hi = cfg.sizes
    eval_set = fixed_examples(cfg.task, list(range(lo, hi + 1)), cfg.eval_sequences, cfg.seed + 10_000, vocab)
    schedule = cfg.schedule()
    last_step = [0]

    def batches(epoch: int) -> list[list[int]]:
        """The steps of this evaluation interval; a batch is its examples' global numbers."""
        first = epoch * cfg.eval_every
        return [list(range(s * cfg.batch_size, (s + 1) * cfg.batch_size))
                for s in range(first, min(first + cfg.eval_every, cfg.steps))]

    def train_step(items: list[int], step: int):
        last_step[0] = step + 1
        seqs, mask = task_batch(training_examples(cfg, step, items, vocab))
        seqs, mask = seqs.to(device), mask.to(device)
        nll, n = target_nll(model(seqs, torch.zeros(len(items), dtype=torch.long, device=device)), seqs, mask)
        loss = nll / max(n, 1)
        return loss, n, float(loss.detach())

    def evaluate():
        m = {"curriculum_max": min(hi, lo + last_step[0] // cfg.curriculum_steps), **evaluate_model(model, eval_set)}
        shown = (f", eval loss {m['eval_loss']:.4f}, bit errors/seq {m['bit_errors']:.2f}, exact "
                 f"{m['accuracy']:.2f} (sizes {lo}..{hi}), curriculum up to {m['curriculum_max']}")
        return m, (-m["bit_errors"], -m["eval_loss"]), shown

    if progress:
        print(f"{describe_model(cfg)} on {cfg.task} sizes {lo}..{hi}: {parameter_count(model)} parameters, "
              f"{cfg.steps} steps, curriculum +1 every {cfg.curriculum_steps} steps", flush=True)
    return run_epochs(run, cfg, model, opt, 0, [], train_step, evaluate,
                      {"task": TASK, "generator": GENERATOR, "vocab_size": len(vocab)}, resume, progress,
                      TaskHooks(schedule=schedule, batches=batches))


# --- evaluation through the runtime ---------------------------------------------------------------

def generalisation_sizes(cfg: NTMTaskConfig) -> dict[str, int]:
    """The sizes the table reports: inside the training range, the longest trained, 2x and 4x."""
    lo, hi = cfg.sizes
    return {"in range": (lo + hi) // 2, "max": hi, "2x": 2 * hi, "4x": 4 * hi}


def evaluate_bundle(bundle_dir: str | Path, task: str, sizes: list[int], n: int = 200, seed: int = 12345,
                    batch_size: int = 100) -> dict[int, dict[str, float]]:
    """Greedy through the exported bundle (runtime, forced prefix = the task input ending <delim>):
    mean bit errors per sequence and exact-sequence accuracy over `n` random sequences per size."""
    from ...runtime.search import Greedy
    from ...runtime.tasks.generator import Generator

    rt = Generator.load(bundle_dir)
    out: dict[int, dict[str, float]] = {}
    for size in sizes:
        exs = fixed_examples(task, [size], n, seed + size, rt.vocab)
        outputs: list[list[int]] = []
        for s in range(0, n, batch_size):
            chunk = exs[s : s + batch_size]
            prefixes = [e.prefix for e in chunk]
            max_length = max(len(e.prefix) + 2 * len(e.target) for e in chunk)
            hyps = rt.decode_encoded(rt.encode_conditions([0] * len(chunk)), Greedy(), max_length, prefix=prefixes)
            eos = [rt.vocab.eos_id]  # the loops hand back ids without the end token, and `finished`
            outputs += [list(map(int, h[0].ids[len(p):])) + (eos if h[0].finished else [])
                        for h, p in zip(hyps, prefixes)]
        out[size] = {**score_outputs(outputs, exs), "sequences": n,
                     "prefix_tokens": len(exs[0].prefix), "target_tokens": len(exs[0].target)}
    return out
