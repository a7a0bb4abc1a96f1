"""Generator training: language models on the King James Bible, pixel models on images.

Run directory (cfg.out_dir)::

    config.json     the GeneratorTrainConfig (task "generate"), vocabulary size, data card
    tokens.txt      characters, words, or pixel levels ("0".."Q-1")
    last.pt/best.pt checkpoints (best = lowest validation NLL), atomic, resumable
    metrics.jsonl   one JSON line per epoch: train/val NLL, perplexity or bits per pixel
    steps.jsonl     one JSON line per optimizer step (train/core/step_log.py)

The test split is never read here; `heldout_metrics` reads it after training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...runtime.text import Vocab
from ..core.checkpoint import LAST, load_checkpoint
from ..core.epochs import run_epochs
from ..core.errors import DataError, RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, load_run_config, resumed_config, seed_everything, write_json
from .config import GeneratorTrainConfig
from .model import make_generator, sequence_nll

TASK = "generate"


@dataclass
class GenData:
    """Token sequences with their condition ids, per split."""

    vocab: Vocab
    splits: dict[str, list[tuple[list[int], int]]]
    card: dict = field(default_factory=dict)  # what the bundle's manifest says about the data


def _text_data(cfg: GeneratorTrainConfig, vocab: Vocab | None) -> GenData:
    from .text_corpus import build_vocab, corpus_texts, encode_text, read_kjv, split_kjv

    unit = cfg.model.unit
    verses = read_kjv(cfg.corpus)
    by_chapter = split_kjv(verses)
    if by_chapter["val"] and by_chapter["test"]:
        parts = {k: corpus_texts(v) for k, v in by_chapter.items()}
        how = "by chapter: chapter k is test when k % 20 == 7, validation when k % 20 == 13"
    else:  # a corpus of a few chapters (the tests' fixture): every 10th verse, offset 3 / 7
        texts = corpus_texts(verses)
        parts = {"train": [t for i, t in enumerate(texts) if i % 10 not in (3, 7)],
                 "val": [t for i, t in enumerate(texts) if i % 10 == 3],
                 "test": [t for i, t in enumerate(texts) if i % 10 == 7]}
        how = "by verse (fewer than 14 chapters): verse i is validation when i % 10 == 3, test when i % 10 == 7"
    if not parts["train"]:
        raise DataError("the corpus has no training verses: check --corpus")
    if vocab is None:
        vocab = build_vocab(parts["train"], unit, min_count=cfg.vocab_min_count)
    splits = {}
    for name, texts in parts.items():
        seqs = []
        for t in texts:
            ids = encode_text(t, vocab, unit)
            if ids:
                ids = ids + [vocab.eos_id]
                seqs.append((ids[: cfg.max_tokens] if name == "train" else ids, 0))
        splits[name] = seqs
    card = {"source": "King James Bible (public domain), Debian bible-kjv-text", "unit": unit,
            "split": how, "prompts": parts["val"][:3]}
    return GenData(vocab, splits, card)


def _image_data(cfg: GeneratorTrainConfig) -> GenData:
    from .pixel_data import DATASETS, images_to_ids, pixel_vocab, quantise

    entry = DATASETS[cfg.data]
    loader, max_value, classes, height, width = entry
    if (cfg.model.height, cfg.model.width) != (height, width):
        raise DataError(f"{cfg.data} images are {height}x{width}, the model config says "
                        f"{cfg.model.height}x{cfg.model.width}")
    data = loader()
    splits = {}
    for name, (images, labels) in data.items():
        ids = images_to_ids(quantise(images, cfg.levels, max_value))
        conds = labels if cfg.conditional else np.zeros(len(labels), np.int64)
        splits[name] = [(row, int(c)) for row, c in zip(ids.tolist(), conds)]
    card = {"dataset": cfg.data, "height": height, "width": width, "levels": cfg.levels,
            "classes": list(classes) if cfg.conditional else None}
    return GenData(pixel_vocab(cfg.levels), splits, card)


def load_generator_data(cfg: GeneratorTrainConfig, vocab: Vocab | None = None) -> GenData:
    data = _image_data(cfg) if cfg.is_image else _text_data(cfg, vocab)
    if cfg.max_train:
        data.splits["train"] = data.splits["train"][: cfg.max_train]
    return data


def collate(exs: list[tuple[list[int], int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets [B, T] 0-padded, condition [B])."""
    T = max(len(ids) for ids, _ in exs)
    tg = torch.zeros(len(exs), T, dtype=torch.long)
    for b, (ids, _) in enumerate(exs):
        tg[b, : len(ids)] = torch.tensor(ids)
    return tg, torch.tensor([c for _, c in exs], dtype=torch.long)


@torch.no_grad()
def dataset_nll(model: torch.nn.Module, exs: list[tuple[list[int], int]], batch_size: int = 128,
                device: str | torch.device = "cpu") -> tuple[float, int]:
    """(summed NLL in nats, tokens) of `exs` under the model (teacher forcing, eval mode)."""
    was = model.training
    model.eval()
    total, n = 0.0, 0
    order = sorted(range(len(exs)), key=lambda i: len(exs[i][0]))  # less padding
    for s in range(0, len(order), batch_size):
        tg, cond = collate([exs[i] for i in order[s : s + batch_size]])
        nll, k = sequence_nll(model(tg.to(device), cond.to(device)), tg.to(device))
        total += float(nll)
        n += k
    model.train(was)
    return total, n


def nll_metrics(total: float, n: int, unit: str, prefix: str) -> dict[str, float]:
    """NLL per token, and perplexity (text) or bits per pixel (images)."""
    per = total / max(n, 1)
    out = {f"{prefix}_nll": per}
    if unit == "pixel":
        out[f"{prefix}_bits_per_pixel"] = per / math.log(2)
    else:
        out[f"{prefix}_perplexity"] = math.exp(per)
        if unit == "char":
            out[f"{prefix}_bits_per_char"] = per / math.log(2)
    return out


def load_generator_run_config(run_dir: str | Path) -> GeneratorTrainConfig:
    return load_run_config(run_dir, GeneratorTrainConfig, TASK)


def train_generator(cfg: GeneratorTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a generator; returns the run directory."""
    run = Path(cfg.out_dir)
    last = run / LAST
    if resume:
        if not last.is_file():
            raise RunError(f"cannot resume: {last} does not exist (start the run without --resume)")
        cfg = resumed_config(cfg, GeneratorTrainConfig, TASK)
        data = load_generator_data(cfg, Vocab.load(run / TOKENS_FILE))
    else:
        if last.is_file():
            raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
        data = load_generator_data(cfg)
        run.mkdir(parents=True, exist_ok=True)
        data.vocab.save(run / TOKENS_FILE)
        write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "vocab_size": len(data.vocab), "task": TASK,
                                        "data": data.card,
                                        "examples": {k: len(v) for k, v in data.splits.items()}})
    train, val = data.splits["train"], data.splits["val"]
    if not train or not val:
        raise DataError(f"{cfg.data}: the training or validation split is empty")
    device = torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = make_generator(cfg.model, len(data.vocab)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def train_step(indices: list[int], step: int):
        tg, cond = collate([train[i] for i in indices])
        tg = tg.to(device)
        nll, n = sequence_nll(model(tg, cond.to(device)), tg)
        loss = nll / max(n, 1)
        return loss, n, float(loss.detach())

    def evaluate():
        total, n = dataset_nll(model, val, cfg.batch_size, device)
        metrics = nll_metrics(total, n, cfg.model.unit, "val")
        key = "val_bits_per_pixel" if cfg.model.unit == "pixel" else "val_perplexity"
        return metrics, -metrics["val_nll"], f", {key.replace('_', ' ')} {metrics[key]:.4f}"

    return run_epochs(run, cfg, model, opt, len(train), [len(ids) for ids, _ in train], train_step, evaluate,
                      {"vocab_size": len(data.vocab), "task": TASK}, resume, progress)


def load_generator(run_dir: str | Path, checkpoint: str = "best"):
    """(model in eval mode, vocab, config) of a generator run."""
    from ..core.checkpoint import BEST

    run = Path(run_dir)
    cfg = load_generator_run_config(run)
    ck = load_checkpoint(run / (BEST if checkpoint == "best" else LAST) if checkpoint in ("best", "last")
                         else Path(checkpoint))
    vocab = Vocab.load(run / TOKENS_FILE)
    model = make_generator(cfg.model, len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, vocab, cfg


def heldout_metrics(run_dir: str | Path, split: str = "test", checkpoint: str = "best") -> dict[str, float]:
    """Held-out NLL (perplexity or bits per pixel) of a trained run, PyTorch teacher forcing."""
    model, vocab, cfg = load_generator(run_dir, checkpoint)
    data = load_generator_data(cfg, vocab)
    if split not in data.splits:
        raise DataError(f"no {split!r} split: use train, val or test")
    total, n = dataset_nll(model, data.splits[split], cfg.batch_size)
    return {**nll_metrics(total, n, cfg.model.unit, split), f"{split}_tokens": n,
            f"{split}_sequences": len(data.splits[split])}
