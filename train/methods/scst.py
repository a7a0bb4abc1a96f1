"""Self-critical sequence training (Rennie et al. 2017): REINFORCE fine-tuning of a trained run.

The notes' "object level v.s. component level": cross-entropy rewards each word given the
reference prefix, but the model is judged on whole sentences it wrote itself. SCST samples a
sentence from the model (its own `step_core`, fed its own tokens), scores it with the
sentence-level metric, and uses the model's greedy decode as the baseline:

    loss = - mean over samples of (r(sample) - r(greedy)) * sum_t log p(sample_t | sample_<t)

so only samples better than what the model would output at test time are made more likely.
Rewards (methods/rewards.py): CIDEr-D for captions (against all training references of the
image, document frequencies from the training references), smoothed sentence BLEU for
translation.

A new run directory is written that `edge-s2s export` accepts unchanged: the source run's
config.json (task, model config; `train` with the SCST epochs/lr/out_dir) plus an `scst`
section, its tokens.txt and held-out validation file, and checkpoints from the shared epoch
loop (train/core/epochs.py), so `--resume`, metrics.jsonl and steps.jsonl work as for any run.
metrics.jsonl adds mean_reward and mean_greedy_reward (training items, this epoch; after a
mid-epoch --resume they cover the resumed part only); `train_loss` is the SCST loss.
best.pt is the epoch with the best validation BLEU (translate) or CIDEr-D (caption).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from ...runtime.text import Vocab, detokenize
from ..core.checkpoint import BEST, LAST, load_checkpoint
from ..core.epochs import run_epochs
from ..core.errors import RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, load_run_config, save_schedule, seed_everything, write_json


@dataclass
class ScstConfig:
    """One self-critical fine-tuning run of the cross-entropy run in `source`.

    samples: sentences sampled per training item (each against the item's greedy baseline).
    batch_size: training items per step (0 = the source run's batch size; for captions an
      item is an image with all its references). seed: 0 = the source run's seed.
    """

    source: str = ""
    out_dir: str = ""
    epochs: int = 5
    lr: float = 5e-5
    samples: int = 1
    batch_size: int = 0
    seed: int = 0
    max_steps: int = 0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("batch_size", "seed", "max_steps", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class Rollout:
    """Sequences decoded from the model: tokens [N, T] (0 after </s>), mask [N, T] (True on
    the sequence's own tokens, </s> included when emitted), summed log-prob [N] (with
    gradients when sampled)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    logprob: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)


def rollout(model, enc: dict[str, torch.Tensor], per_item: int, max_length: int, bos_id: int, eos_id: int,
            greedy: bool = False) -> Rollout:
    """Decode `per_item` sequences per encoded item through the model's own `step_core`.

    Rows are item-major (item b's sequences are rows b*per_item ...); step 0 expands the
    items into rows with `row = batch_of_row`, exactly the runtime's start-up expansion.
    Sampling draws from exp(log-probs) as the exported step computes them (`decode_logprobs`).
    """
    memory = {n: enc[n] for n in model.memory_names}
    states = model.initial_states(enc)
    B = next(iter(memory.values())).size(0)
    device = next(iter(memory.values())).device
    batch_of_row = torch.arange(B, device=device).repeat_interleave(per_item)
    N = batch_of_row.numel()
    rows = torch.arange(N, device=device)
    token = torch.full((N,), bos_id, dtype=torch.long, device=device)
    done = torch.zeros(N, dtype=torch.bool, device=device)
    total = torch.zeros(N, device=device)
    out, live = [], []
    for t in range(max_length):
        lp, _, states = model.step_core(token, batch_of_row if t == 0 else rows, batch_of_row, memory, states)
        lp = model.decode_logprobs(lp, token)
        if greedy:
            tok = lp.argmax(dim=1)
        else:
            tok = torch.multinomial(lp.detach().exp(), 1).squeeze(1)
        tok = tok.masked_fill(done, 0)
        total = total + lp.gather(1, tok.unsqueeze(1)).squeeze(1).masked_fill(done, 0.0)
        out.append(tok)
        live.append(~done)
        done = done | (tok == eos_id)
        token = tok
        if bool(done.all()):
            break
    return Rollout(torch.stack(out, 1), torch.stack(live, 1), total)


def sentence_ids(row: torch.Tensor, eos_id: int) -> list[int]:
    """The ids of one rollout row before its </s>."""
    ids = row.tolist()
    return ids[: ids.index(eos_id)] if eos_id in ids else ids


def scst_loss(logprob: torch.Tensor, reward: np.ndarray, baseline: np.ndarray) -> torch.Tensor:
    """-(r(sample) - r(greedy)) * log p(sample), averaged over the sampled sequences."""
    adv = torch.as_tensor(reward - baseline, dtype=logprob.dtype, device=logprob.device)
    return -(adv * logprob).mean()


@dataclass
class ScstTask:
    """What differs between model families (the translator, the captioner); the SCST step is shared.

    Built by the family's `ScstFamily.build` for one run: the model (not yet loaded), its config and
    vocabulary, the training items (`encode` turns item indices into encoder outputs), the
    sentence reward against each item's references, and the validation function of its loop.
    """

    model: torch.nn.Module
    cfg: object  # the task's TrainConfig / CaptionTrainConfig
    vocab: Vocab
    n_items: int
    lengths: list[int]
    encode: Callable[[list[int]], dict[str, torch.Tensor]]
    reward: Callable[[list[str], list[int]], np.ndarray]
    max_length: int
    evaluate: Callable[[], tuple[dict, float, str]]
    extra: dict


@dataclass(frozen=True)
class ScstFamily:
    """How a model family takes part in SCST: its training config class, and a builder
    `build(train_config, vocab, device, cache_dir, progress) -> ScstTask`."""

    config_cls: type
    build: Callable[..., ScstTask]


def source_task(run: str | Path, tasks: Iterable[str] = ("translate", "caption")) -> str:
    """The task of a run directory (config.json), refused when SCST has no reward for it (`tasks`)."""
    path = Path(run, CONFIG_FILE)
    if not path.is_file():
        raise RunError(f"{run} has no {CONFIG_FILE}: pass a training run directory (edge-s2s train translate/caption)")
    try:
        task = str(json.loads(path.read_text(encoding="utf-8")).get("task", "translate"))
    except (ValueError, AttributeError):
        raise RunError(f"{path} is not valid JSON: the run directory is damaged") from None
    tasks = list(tasks)
    if task not in tasks:
        raise RunError(f"{run} is a {task!r} run: self-critical training fine-tunes {' or '.join(tasks)} runs "
                       "(it needs a BLEU or CIDEr-D reward)")
    return task


def _source_checkpoint(source: Path) -> Path:
    for name in (BEST, LAST):
        if (source / name).is_file():
            return source / name
    raise RunError(f"{source} has no {BEST} or {LAST}: train the run (cross-entropy) before self-critical training")


def _start_run(cfg: ScstConfig, task: str, config_cls: type) -> dict:
    """Create the new run directory from the source run; returns its config.json content."""
    src, out = Path(cfg.source), Path(cfg.out_dir)
    if out.resolve() == src.resolve():
        raise RunError(f"--out {out} is the source run: write the fine-tuned run to a new directory")
    if (out / LAST).is_file():
        raise RunError(f"{out} already holds a training run ({LAST}): pass --resume, or choose another --out")
    base = load_run_config(src, config_cls, task)
    train_cfg = replace(base, out_dir=str(out), epochs=cfg.epochs, lr=cfg.lr, max_steps=cfg.max_steps,
                        checkpoint_every=cfg.checkpoint_every, batch_size=cfg.batch_size or base.batch_size,
                        seed=cfg.seed or base.seed)
    saved = json.loads((src / CONFIG_FILE).read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    for name in (TOKENS_FILE, "val.tsv", "val.json"):  # the vocabulary and the export's held-out inputs
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    doc = {**saved, "train": train_cfg.to_dict(), "scst": {**asdict(cfg), "from_checkpoint": ""}}
    return doc


def load_scst_config(run_dir: str | Path) -> ScstConfig:
    """The ScstConfig a self-critical run was started with (its config.json's "scst" part)."""
    path = Path(run_dir, CONFIG_FILE)
    if not path.is_file():
        raise RunError(f"{run_dir} has no {CONFIG_FILE}: it is not a training run directory")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        saved = doc.get("scst")
        if saved is None:
            raise RunError(f"{run_dir} is not a self-critical run: resume it with "
                           f"`edge-s2s train {doc.get('task', 'translate')} --resume`")
        names = {f.name for f in fields(ScstConfig)}
        return ScstConfig(**{k: v for k, v in saved.items() if k in names})
    except (ValueError, TypeError, AttributeError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path} is malformed ({e}): it was not written by edge-s2s training") from None


def train_scst(cfg: ScstConfig, families: Mapping[str, ScstFamily], resume: bool = False, progress: bool = True,
               cache_dir: str | Path | None = None) -> Path:
    """Fine-tune `cfg.source`'s best checkpoint with SCST into `cfg.out_dir`; returns the run directory.

    families: task name -> ScstFamily (e.g. {"translate": edge_s2s.train.translate.scst.FAMILY,
    "caption": edge_s2s.train.caption.scst.FAMILY}); the source run's task picks one.

    resume=True continues `out_dir/last.pt` with the run's saved settings (only epochs and
    max_steps are taken from `cfg`).
    """
    out = Path(cfg.out_dir)
    if resume:
        if not (out / LAST).is_file():
            raise RunError(f"cannot resume: {out / LAST} does not exist (start the run without --resume)")
        task = source_task(out, families)
        doc = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
        if "scst" not in doc:
            raise RunError(f"{out} is not a self-critical run: resume it with `edge-s2s train {task} --resume`")
        cfg = replace(load_scst_config(out), out_dir=str(out), epochs=cfg.epochs, max_steps=cfg.max_steps)
        train_cfg = load_run_config(out, families[task].config_cls, task)
        train_cfg.epochs, train_cfg.max_steps = cfg.epochs, cfg.max_steps
        for section in ("scst", "train"):  # config.json says where the run is now headed
            save_schedule(out, {"epochs": cfg.epochs, "max_steps": cfg.max_steps}, section)
    else:
        task = source_task(cfg.source, families)
        ck_path = _source_checkpoint(Path(cfg.source))
        doc = _start_run(cfg, task, families[task].config_cls)
        doc["scst"]["from_checkpoint"] = str(ck_path)
        train_cfg = families[task].config_cls.from_dict(doc["train"])
    vocab = Vocab.load(out / TOKENS_FILE)
    device = torch.device(train_cfg.device)
    seed_everything(train_cfg.seed)
    t = families[task].build(train_cfg, vocab, device, cache_dir, progress)
    model = t.model
    if not resume:
        model.load_state_dict(load_checkpoint(ck_path)["model"])
        start, _, shown = t.evaluate()
        doc["scst"]["start"] = start  # the cross-entropy model's validation scores, for comparison
        write_json(out / CONFIG_FILE, doc)
        if progress:
            print(f"start (cross-entropy model){shown}")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    sums = {"reward": 0.0, "greedy": 0.0, "n": 0}

    def train_step(indices: list[int], step: int):
        enc = t.encode(indices)
        model.eval()
        with torch.no_grad():
            base = rollout(model, {k: v.detach() for k, v in enc.items()}, 1, t.max_length, vocab.bos_id,
                           vocab.eos_id, greedy=True)
        model.train()
        sample = rollout(model, enc, cfg.samples, t.max_length, vocab.bos_id, vocab.eos_id)
        items = [i for i in indices for _ in range(cfg.samples)]
        r = t.reward(texts(sample, vocab), items)
        b = np.repeat(t.reward(texts(base, vocab), list(indices)), cfg.samples)
        loss = scst_loss(sample.logprob, r, b)
        sums["reward"] += float(r.sum())
        sums["greedy"] += float(b.sum())
        sums["n"] += len(items)
        return loss, int(sample.lengths.sum()), float(loss.detach())

    def evaluate():
        metrics, score, shown = t.evaluate()
        n = max(sums["n"], 1)
        mean_r, mean_g = sums["reward"] / n, sums["greedy"] / n
        sums.update(reward=0.0, greedy=0.0, n=0)
        return ({"mean_reward": mean_r, "mean_greedy_reward": mean_g, **metrics}, score,
                f", reward {mean_r:.3f} (greedy {mean_g:.3f}){shown}")

    return run_epochs(out, train_cfg, model, opt, t.n_items, t.lengths, train_step, evaluate, t.extra, resume,
                      progress)


def texts(r: Rollout, vocab: Vocab) -> list[str]:
    """Detokenised text of each rollout row (its tokens before </s>)."""
    return [detokenize(vocab.decode(sentence_ids(row[m], vocab.eos_id))) for row, m in zip(r.tokens, r.mask)]
