"""Translator training: data, vocabulary, validation loss and BLEU (the epoch loop, checkpoints
and resume are train/core/epochs.py, shared with the captioner).

Run directory (cfg.out_dir)::

    config.json     the TrainConfig (and vocabulary size) this run was started with
    tokens.txt      the shared vocabulary, built from the training split
    sentencepiece.model  the subword model learnt from the training split (tokenizer="sentencepiece")
    val.tsv         the held-out validation pairs (the exporter takes golden inputs from it)
    last.pt         the latest checkpoint (every `checkpoint_every` steps and each epoch end)
    best.pt         the checkpoint with the lowest validation loss (or highest BLEU: select_by) so far
    metrics.jsonl   one JSON line per epoch: step, train/val loss, val BLEU, seconds (and ss_p,
                    the reference probability at the epoch's last step, under scheduled sampling)
    steps.jsonl     one JSON line per optimizer step: step, epoch, loss, tokens, tokens_per_s, lr, time
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...runtime.search import Greedy
from ...runtime.text import Vocab
from ..core.checkpoint import LAST, atomic_write_bytes
from ..core.distributed import world_from_env
from ..core.epochs import TaskHooks, run_epochs
from ..core.errors import RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, resumed_config, seed_everything, write_json
from ..methods.exposure import feed_metrics
from .config import TrainConfig
from .data import Dataset, collate, fixed_batches, load_dataset, read_tsv
from .decode import bleu, decode_ids, source_ids
from .model import Translator
from .ntm_decoder import build_translator
from .subword_train import SUBWORD_MODEL_FILE

VAL_FILE = "val.tsv"


def build_model(cfg: TrainConfig, vocab_size: int) -> Translator:
    return build_translator(cfg.model, vocab_size)


@torch.no_grad()
def validation_loss(model: Translator, batches, device) -> float:
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for b in batches:
        loss, k = model.loss(b.src.to(device), b.src_lengths.to(device), b.tgt_in.to(device), b.tgt_out.to(device))
        total += float(loss) * k
        n += k
    model.train(was)
    return total / max(n, 1)


def validation_bleu(model: Translator, data: Dataset, cfg: TrainConfig) -> float:
    pairs = data.val[: cfg.val_bleu_max]
    ids = [source_ids(p.source, data.text) for p in pairs]
    hyps = decode_ids(model, ids, Greedy(), max_length=cfg.max_target_length + 1)
    texts = [data.text.decode(h[0].ids) if h else "" for h in hyps]
    return bleu(texts, [p.target for p in pairs], data.text)


def train_translator(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a translation model; returns the run directory.

    resume=True continues from `out_dir/last.pt` with the run's saved configuration; only
    `epochs` and `max_steps` are taken from `cfg`, so a finished run can be extended.
    """
    run = Path(cfg.out_dir)
    last = run / LAST
    if resume:
        if not last.is_file():
            raise RunError(f"cannot resume: {last} does not exist (start the run without --resume)")
        cfg = resumed_config(cfg, TrainConfig, "translate")
        vocab = Vocab.load(run / TOKENS_FILE)
        model_file = run / SUBWORD_MODEL_FILE
        if cfg.tokenizer == "sentencepiece" and not model_file.is_file():
            raise RunError(f"cannot resume: {model_file} is missing (the run learnt subwords): start a new run")
        data = load_dataset(cfg, vocab, model_file.read_bytes() if cfg.tokenizer == "sentencepiece" else None)
    else:
        if last.is_file():
            raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
        data = load_dataset(cfg)
        vocab = data.vocab
        run.mkdir(parents=True, exist_ok=True)
        vocab.save(run / TOKENS_FILE)
        if data.subword_model is not None:
            atomic_write_bytes(run / SUBWORD_MODEL_FILE, data.subword_model)
        write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "vocab_size": len(vocab), "task": "translate"})
        val_text = "".join(f"{p.source}\t{p.target}\n" for p in data.val)
        atomic_write_bytes(run / VAL_FILE, val_text.encode("utf-8"))

    if world_from_env() and (cfg.lr_decay != 1.0 or cfg.patience):
        # only rank 0 evaluates, so the ranks could not agree on a learning rate or on stopping
        raise RunError("--lr-decay and --patience follow validation, which only the first process runs: "
                       "under torchrun leave them at 1 and 0 (fixed schedule)")
    device = torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = build_model(cfg, len(vocab)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    val_batches = fixed_batches(data.val, vocab, cfg.batch_size)

    last_step = [0]

    def train_step(indices: list[int], step: int):
        b = collate([data.train[i] for i in indices], vocab, indices)
        last_step[0] = step
        loss, n = model.loss(b.src.to(device), b.src_lengths.to(device), b.tgt_in.to(device), b.tgt_out.to(device),
                             cfg.feed, step, cfg.label_smoothing)
        return loss, n, loss.item()

    def evaluate():
        val_loss = validation_loss(model, val_batches, device)
        val_bleu = validation_bleu(model, data, cfg) if cfg.val_bleu_max else None
        shown = f", val loss {val_loss:.4f}" + (f", val BLEU {val_bleu:.2f}" if val_bleu is not None else "")
        metrics = {"val_loss": val_loss, "val_bleu": val_bleu, **feed_metrics(cfg.feed, last_step[0])}
        if cfg.lr_decay != 1.0:
            metrics["lr"] = plateau.lr  # the epoch's rate (steps.jsonl has it per step)
        return metrics, plateau.score(metrics), shown

    plateau = Plateau(cfg, opt)
    hooks = TaskHooks(start_epoch=plateau.start_epoch, end_epoch=plateau.end_epoch, state_dict=plateau.state_dict,
                      load_state_dict=plateau.load_state_dict, complete=plateau.complete)
    return run_epochs(run, cfg, model, opt, len(data.train), [len(p.src_tokens) for p in data.train], train_step,
                      evaluate, {"vocab_size": len(vocab)}, resume, progress, hooks)


class Plateau:
    """The validation-driven schedule: best.pt by loss or BLEU, the learning rate times `lr_decay`
    after an epoch that did not improve (as OpenNMT's and Luong et al.'s halving), and early stopping
    after `patience` such epochs in a row. Its counters travel in every checkpoint (exact resume)."""

    def __init__(self, cfg: TrainConfig, opt: torch.optim.Optimizer):
        self.cfg, self.opt = cfg, opt
        self.lr = cfg.lr
        self.best = -float("inf")
        self.bad_epochs = 0

    def score(self, metrics: dict) -> float:
        if self.cfg.select_by == "bleu" and metrics.get("val_bleu") is not None:
            return float(metrics["val_bleu"])
        return -float(metrics["val_loss"])

    def start_epoch(self, epoch: int) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.lr

    def end_epoch(self, metrics: dict) -> bool:
        if "val_loss" not in metrics:  # a torchrun rank other than 0 does not evaluate (and has no schedule)
            return False
        score = self.score(metrics)
        if score > self.best:
            self.best, self.bad_epochs = score, 0
            return False
        self.bad_epochs += 1
        self.lr *= self.cfg.lr_decay
        return bool(self.cfg.patience) and self.bad_epochs >= self.cfg.patience

    def complete(self, epoch: int) -> bool:
        """On resume: done when every epoch ran or patience ran out (a raised --epochs goes on)."""
        stopped = bool(self.cfg.patience) and self.bad_epochs >= self.cfg.patience
        return epoch >= self.cfg.epochs or stopped

    def state_dict(self) -> dict:
        return {"lr": self.lr, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict) -> None:
        self.lr = float(d.get("lr", self.cfg.lr))
        self.best = float(d.get("best", -float("inf")))
        self.bad_epochs = int(d.get("bad_epochs", 0))


def read_val_pairs(run_dir: str | Path):
    """The held-out validation pairs the run saved (source, target strings)."""
    path = Path(run_dir, VAL_FILE)
    if not path.is_file():
        return []
    return [(p.source, p.target) for p in read_tsv(path)]
