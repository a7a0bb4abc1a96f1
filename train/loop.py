"""The training loop: teacher forcing, gradient clipping, validation, atomic checkpoints.

Run directory (cfg.out_dir)::

    config.json     the TrainConfig (and vocabulary size) this run was started with
    tokens.txt      the shared vocabulary, built from the training split
    val.tsv         the held-out validation pairs (the exporter takes golden inputs from it)
    last.pt         the latest checkpoint (every `checkpoint_every` steps and each epoch end)
    best.pt         the checkpoint with the lowest validation loss so far
    metrics.jsonl   one JSON line per epoch: step, train/val loss, val BLEU, seconds
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..runtime.errors import EdgeS2SError
from ..runtime.search import Greedy
from ..runtime.text import Vocab, detokenize
from .checkpoint import BEST, LAST, atomic_write_bytes, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig
from .data import Dataset, collate, epoch_batches, fixed_batches, load_dataset, read_tsv
from .model import Translator
from .translate import bleu, decode_ids, source_ids

CONFIG_FILE = "config.json"
TOKENS_FILE = "tokens.txt"
VAL_FILE = "val.tsv"
METRICS_FILE = "metrics.jsonl"


class RunError(EdgeS2SError, ValueError):
    """The run directory cannot be started or resumed as asked."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir, CONFIG_FILE)
    if not path.is_file():
        raise RunError(f"{run_dir} has no {CONFIG_FILE}: it is not a training run directory")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return TrainConfig.from_dict(d["train"])
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path} is malformed ({e}): it was not written by edge-s2s training") from None


def build_model(cfg: TrainConfig, vocab_size: int) -> Translator:
    return Translator(cfg.model, vocab_size)


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
    ids = [source_ids(p.source, data.vocab, cfg.lowercase) for p in pairs]
    hyps = decode_ids(model, ids, Greedy(), max_length=cfg.max_target_length + 1)
    texts = [detokenize(data.vocab.decode(h[0].ids)) if h else "" for h in hyps]
    return bleu(texts, [p.target for p in pairs], cfg.lowercase)


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


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
        saved = load_run_config(run)
        saved.epochs, saved.max_steps = cfg.epochs, cfg.max_steps
        saved.out_dir = cfg.out_dir
        cfg = saved
        vocab = Vocab.load(run / TOKENS_FILE)
        data = load_dataset(cfg, vocab)
    else:
        if last.is_file():
            raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
        data = load_dataset(cfg)
        vocab = data.vocab
        run.mkdir(parents=True, exist_ok=True)
        vocab.save(run / TOKENS_FILE)
        _write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "vocab_size": len(vocab), "task": "translate"})
        val_text = "".join(f"{p.source}\t{p.target}\n" for p in data.val)
        atomic_write_bytes(run / VAL_FILE, val_text.encode("utf-8"))

    device = torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = build_model(cfg, len(vocab)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    epoch, pos, step, best = 0, 0, 0, math.inf
    ep_loss, ep_tokens = 0.0, 0
    if resume:
        ck = load_checkpoint(last)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        epoch, pos, step, best = ck["epoch"], ck["batch"], ck["step"], ck["best_val_loss"]
        ep_loss, ep_tokens = ck["epoch_loss_sum"], ck["epoch_tokens"]
        set_rng_state(ck["rng"])

    def save(path: Path, epoch_: int, batch_: int, metrics: dict | None = None) -> None:
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "train_config": cfg.to_dict(),
            "model_config": asdict(cfg.model), "vocab_size": len(vocab), "epoch": epoch_, "batch": batch_,
            "step": step, "best_val_loss": best, "epoch_loss_sum": ep_loss, "epoch_tokens": ep_tokens,
            "rng": rng_state(), "metrics": metrics or {},
        })

    lengths = [len(p.src_tokens) for p in data.train]
    val_batches = fixed_batches(data.val, vocab, cfg.batch_size)
    model.train()
    while epoch < cfg.epochs:
        t0 = time.time()
        batches = epoch_batches(len(data.train), lengths, cfg.batch_size, cfg.seed, epoch)
        bar = tqdm(total=len(batches), initial=pos, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, dynamic_ncols=True)
        for bi in range(pos, len(batches)):
            if cfg.max_steps and step >= cfg.max_steps:
                bar.close()
                save(last, epoch, bi)
                return run
            b = collate([data.train[i] for i in batches[bi]], vocab, batches[bi])
            opt.zero_grad(set_to_none=True)
            loss, n = model.loss(b.src.to(device), b.src_lengths.to(device), b.tgt_in.to(device), b.tgt_out.to(device))
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            step += 1
            ep_loss += loss.item() * n
            ep_tokens += n
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save(last, epoch, bi + 1)
        bar.close()
        train_loss = ep_loss / max(ep_tokens, 1)
        val_loss = validation_loss(model, val_batches, device)
        val_bleu = validation_bleu(model, data, cfg) if cfg.val_bleu_max else None
        model.train()
        metrics = {"epoch": epoch + 1, "step": step, "train_loss": train_loss, "val_loss": val_loss,
                   "val_bleu": val_bleu, "seconds": round(time.time() - t0, 3)}
        is_best = val_loss < best
        if is_best:
            best = val_loss
        epoch, pos, ep_loss, ep_tokens = epoch + 1, 0, 0.0, 0
        save(last, epoch, 0, metrics)
        if is_best:
            save(run / BEST, epoch, 0, metrics)
        with open(run / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        if progress:
            bl = f", val BLEU {val_bleu:.2f}" if val_bleu is not None else ""
            tqdm.write(f"epoch {metrics['epoch']}: train loss {train_loss:.4f}, val loss {val_loss:.4f}{bl}")
    return run


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir, METRICS_FILE)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_val_pairs(run_dir: str | Path):
    """The held-out validation pairs the run saved (source, target strings)."""
    path = Path(run_dir, VAL_FILE)
    if not path.is_file():
        return []
    return [(p.source, p.target) for p in read_tsv(path)]
