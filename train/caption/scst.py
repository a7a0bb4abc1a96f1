"""The captioner's part in self-critical training (methods/scst.py): CIDEr-D against all the
image's training captions, on cached CNN features; validation CIDEr-D picks best.pt."""

from __future__ import annotations

import torch

from ...runtime.text import Vocab
from ..core.errors import RunError
from ..methods.rewards import CaptionReward
from ..methods.scst import ScstFamily, ScstTask
from .config import CaptionTrainConfig
from .features import region_features
from .loop import examples, image_spec, load_splits, validation_loss, validation_scores
from .model import CaptionModel


def scst_task(cfg: CaptionTrainConfig, vocab: Vocab, device: torch.device, cache_dir=None,
              progress: bool = True) -> ScstTask:
    """The run's images (CNN features computed once, cached in cache_dir) and model, ready for SCST."""
    if cfg.model.finetune_cnn:
        raise RunError("self-critical training runs on cached CNN features: a run that fine-tuned its CNN "
                       "(--finetune-cnn) is not supported")
    train_items, val_items = load_splits(cfg)
    train_items = [i for i in train_items if any(c.strip() for c in i.captions)]
    model = CaptionModel(cfg.model, len(vocab), tokens=vocab.tokens).to(device)
    spec = image_spec(cfg)
    train_regions = region_features(model.cnn, [i.image for i in train_items], spec, cache_dir, progress=progress)
    val_regions = region_features(model.cnn, [i.image for i in val_items], spec, cache_dir, progress=progress)
    val_ex = examples(val_items, vocab, cfg)

    def encode(indices: list[int]) -> dict[str, torch.Tensor]:
        return model.encode_regions(train_regions[torch.tensor(indices)].float().to(device))

    def evaluate():
        vr = val_regions.to(device)
        val_loss = validation_loss(model, vr, val_ex, vocab, cfg.batch_size)
        scores = validation_scores(model, vr, val_items, vocab, cfg) if cfg.val_max else {}
        metrics = {"val_loss": val_loss, **{f"val_{k}": v for k, v in scores.items()}}
        shown = f", val loss {val_loss:.4f}" + "".join(f", {k} {v:.3f}" for k, v in scores.items()
                                                       if k in ("BLEU-4", "CIDEr-D"))
        return metrics, scores.get("CIDEr-D", -val_loss), shown

    lengths = [max((len(c.split()) for c in i.captions), default=1) for i in train_items]
    return ScstTask(model, cfg, vocab, len(train_items), lengths, encode,
                    CaptionReward([i.captions for i in train_items]), cfg.max_caption_length + 1, evaluate,
                    {"vocab_size": len(vocab), "task": "caption"})


FAMILY = ScstFamily(CaptionTrainConfig, scst_task)
