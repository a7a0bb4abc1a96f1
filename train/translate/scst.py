"""The translator's part in self-critical training (methods/scst.py): sentence BLEU against the
pair's reference, validation BLEU of its own loop as the score that picks best.pt."""

from __future__ import annotations

import torch

from ...runtime.text import Vocab
from ..core.errors import RunError
from ..methods.rewards import BleuReward
from ..methods.scst import ScstFamily, ScstTask
from .config import TrainConfig
from .data import collate, fixed_batches, load_dataset
from .loop import build_model, validation_bleu, validation_loss


def scst_task(cfg: TrainConfig, vocab: Vocab, device: torch.device, cache_dir=None, progress: bool = True) -> ScstTask:
    """The run's data and model, ready for SCST (cache_dir and progress are unused: text needs no cache)."""
    if cfg.tokenizer != "word":
        raise RunError("self-critical training of a subword (SentencePiece) run is not supported yet: "
                       "fine-tune a run trained with --tokenizer word")
    data = load_dataset(cfg, vocab)
    model = build_model(cfg, len(vocab)).to(device)
    val_batches = fixed_batches(data.val, vocab, cfg.batch_size)

    def encode(indices: list[int]) -> dict[str, torch.Tensor]:
        b = collate([data.train[i] for i in indices], vocab, indices)
        return model.encode(b.src.to(device), b.src_lengths.to(device))

    def evaluate():
        val_loss = validation_loss(model, val_batches, device)
        val_bleu = validation_bleu(model, data, cfg) if cfg.val_bleu_max else None
        shown = f", val loss {val_loss:.4f}" + (f", val BLEU {val_bleu:.2f}" if val_bleu is not None else "")
        return {"val_loss": val_loss, "val_bleu": val_bleu}, (val_bleu if val_bleu is not None else -val_loss), shown

    return ScstTask(model, cfg, vocab, len(data.train), [len(p.src_tokens) for p in data.train], encode,
                    BleuReward([p.target for p in data.train], cfg.lowercase), cfg.max_target_length + 1, evaluate,
                    {"vocab_size": len(vocab)})


FAMILY = ScstFamily(TrainConfig, scst_task)
