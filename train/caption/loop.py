"""Captioner training: teacher forcing (or scheduled sampling, train/methods/exposure.py) on (image,
caption) pairs, validation metrics, atomic checkpoints and bit-for-bit `--resume`, like the translator's loop.

Run directory (cfg.out_dir)::

    config.json     the CaptionTrainConfig (task "caption") and vocabulary size
    tokens.txt      the vocabulary, built from the training captions only
    val.json        the validation images and their captions (export takes golden images here)
    last.pt         latest checkpoint; best.pt the one with the best validation CIDEr-D
                    (validation loss when metrics are off)
    metrics.jsonl   one JSON line per epoch
    steps.jsonl     one JSON line per optimizer step (train/core/step_log.py)

The test split of the caption file is never read here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...runtime.media.image import ImageSpec
from ...runtime.search import Greedy
from ...runtime.text import Vocab, detokenize, tokenize
from ..core.checkpoint import LAST
from ..core.epochs import run_epochs
from ..core.errors import DataError, RunError
from ..core.run_dir import CONFIG_FILE, TOKENS_FILE, load_run_config, resumed_config, seed_everything, write_json
from ..methods.exposure import feed_metrics
from .config import CaptionTrainConfig
from .caption_text import clean_caption
from .data import CaptionItem, build_caption_vocab, load_captions, split_items
from .features import region_features
from .label_names import load_label_names, two_word_names
from .model import CaptionModel

VAL_FILE = "val.json"


def image_spec(cfg: CaptionTrainConfig) -> ImageSpec:
    return ImageSpec(size=cfg.image_size, resize=cfg.resize)


def load_splits(cfg: CaptionTrainConfig) -> tuple[list[CaptionItem], list[CaptionItem]]:
    """(train items, validation items) from the caption file(s); the test split is dropped."""
    items = load_captions(cfg.captions, cfg.images)
    if cfg.val_captions:
        val = [i for i in load_captions(cfg.val_captions, cfg.images, split="val")]
        for i in val:
            i.split = "val"
        train = [i for i in items if i.split == "train"]
    elif any(i.split == "val" for i in items):
        train = [i for i in items if i.split == "train"]
        val = [i for i in items if i.split == "val"]
    else:
        items = split_items([i for i in items if i.split == "train"], cfg.val_fraction, cfg.seed)
        train = [i for i in items if i.split == "train"]
        val = [i for i in items if i.split == "val"]
    if not train:
        raise DataError(f"{cfg.captions}: no training images (split 'train'): check the caption file")
    if not val:
        raise DataError(f"{cfg.captions}: no validation images: pass --val-captions or use a file with a 'val' split")
    return train, val


def caption_tokens(text: str, cfg: CaptionTrainConfig) -> list[str]:
    """A caption as training target words: cleaned (caption_text.clean_caption, two-word label names
    joined when the model has label slots) or, for runs made before, `tokenize`d as they were."""
    if cfg.text == "clean":
        return clean_caption(text, two_word_names() if cfg.model.labels else ())
    return tokenize(text, cfg.lowercase)


def caption_vocab(items: list[CaptionItem], cfg: CaptionTrainConfig) -> Vocab:
    """The run's vocabulary: training captions' words (min count), then every label name when the
    model copies labels (a name the captions never use can still be written by copying it)."""
    vocab = build_caption_vocab(items, min_count=cfg.vocab_min_count, lowercase=cfg.lowercase,
                                tokenizer=lambda c: caption_tokens(c, cfg))
    if not cfg.model.labels:
        return vocab
    return Vocab(vocab.tokens + [n for n in sorted(set(load_label_names())) if n not in vocab.index])


def caption_ids(text: str, vocab: Vocab, cfg: CaptionTrainConfig) -> list[int]:
    return vocab.encode(caption_tokens(text, cfg)[: cfg.max_caption_length])


def examples(items: list[CaptionItem], vocab: Vocab, cfg: CaptionTrainConfig) -> list[tuple[int, list[int]]]:
    """(image index, caption ids) for every caption of every image."""
    out = []
    for i, item in enumerate(items):
        for c in item.captions:
            ids = caption_ids(c, vocab, cfg)
            if ids:
                out.append((i, ids))
    return out


def collate(exs: list[tuple[int, list[int]]], vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image indices [B], tgt_in [B, T] = <s> + ids, tgt_out [B, T] = ids + </s>; 0-padded)."""
    B, T = len(exs), max(len(ids) for _, ids in exs) + 1
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    for b, (_, ids) in enumerate(exs):
        tgt_in[b, : len(ids) + 1] = torch.tensor([vocab.bos_id] + ids)
        tgt_out[b, : len(ids) + 1] = torch.tensor(ids + [vocab.eos_id])
    return torch.tensor([i for i, _ in exs], dtype=torch.long), tgt_in, tgt_out


@torch.no_grad()
def greedy_captions(model: CaptionModel, regions: torch.Tensor, vocab: Vocab, max_length: int,
                    batch_size: int = 64, search=Greedy()) -> list[str]:
    """Caption cached regions with the PyTorch model through the runtime's reference loop."""
    from ...runtime.reference_loop import decode
    from ..core.torch_step import decode_manifest, torch_step_fn

    was = model.training
    model.eval()
    try:
        manifest = decode_manifest(model, max_length)
        step = torch_step_fn(model)
        names = model.encoder_output_names()
        out: list[str] = []
        for s in range(0, regions.size(0), batch_size):
            enc = model.encode_regions(regions[s : s + batch_size].float())
            enc_np = {n: enc[n].numpy() for n in names}
            for hyps in decode(manifest, enc_np, step, search, max_length=max_length):
                out.append(detokenize(vocab.decode(hyps[0].ids)) if hyps else "")
        return out
    finally:
        model.train(was)


@torch.no_grad()
def validation_loss(model: CaptionModel, regions: torch.Tensor, exs, vocab: Vocab, batch_size: int) -> float:
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for s in range(0, len(exs), batch_size):
        idx, tin, tout = collate(exs[s : s + batch_size], vocab)
        _, k, nll = model.loss(regions[idx].float(), tin, tout)
        total += nll * k
        n += k
    model.train(was)
    return total / max(n, 1)


def validation_scores(model: CaptionModel, regions: torch.Tensor, items: list[CaptionItem], vocab: Vocab,
                      cfg: CaptionTrainConfig) -> dict[str, float]:
    from .metrics import caption_scores

    n = min(cfg.val_max, len(items))
    hyps = greedy_captions(model, regions[:n], vocab, cfg.max_caption_length + 1)
    refs = {str(i): items[i].captions for i in range(n)}
    return caption_scores(refs, {str(i): h for i, h in enumerate(hyps)}, meteor=False)


def load_caption_run_config(run_dir: str | Path) -> CaptionTrainConfig:
    return load_run_config(run_dir, CaptionTrainConfig, "caption")


def read_val_items(run_dir: str | Path) -> list[dict]:
    """The validation images the run held out: [{"image": path, "captions": [...]}, ...]."""
    path = Path(run_dir, VAL_FILE)
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def train_captioner(cfg: CaptionTrainConfig, resume: bool = False, progress: bool = True,
                    cache_dir: str | Path | None = None) -> Path:
    """Train (or resume) a captioner; returns the run directory.

    resume=True continues from `out_dir/last.pt` with the saved configuration; only
    `epochs` and `max_steps` are taken from `cfg`.
    """
    run = Path(cfg.out_dir)
    last = run / LAST
    if resume:
        if not last.is_file():
            raise RunError(f"cannot resume: {last} does not exist (start the run without --resume)")
        cfg = resumed_config(cfg, CaptionTrainConfig, "caption")
        vocab = Vocab.load(run / TOKENS_FILE)
        train_items, val_items = load_splits(cfg)
    else:
        if last.is_file():
            raise RunError(f"{run} already holds a training run ({LAST}): resume it, or choose another output directory")
        train_items, val_items = load_splits(cfg)
        vocab = caption_vocab(train_items, cfg)
        run.mkdir(parents=True, exist_ok=True)
        vocab.save(run / TOKENS_FILE)
        write_json(run / CONFIG_FILE, {"train": cfg.to_dict(), "vocab_size": len(vocab), "task": "caption",
                                        "images": {"train": len(train_items), "val": len(val_items)}})
        write_json(run / VAL_FILE, [{"image": str(i.image), "captions": i.captions} for i in val_items])

    device = torch.device(cfg.device)
    seed_everything(cfg.seed)
    model = CaptionModel(cfg.model, len(vocab), tokens=vocab.tokens).to(device)
    spec = image_spec(cfg)
    finetune = cfg.model.finetune_cnn
    val_regions = region_features(model.cnn, [i.image for i in val_items], spec, cache_dir, progress=progress)
    train_regions = None if finetune else region_features(model.cnn, [i.image for i in train_items], spec,
                                                          cache_dir, progress=progress)
    train_ex = examples(train_items, vocab, cfg)
    val_ex = examples(val_items, vocab, cfg)
    if not train_ex:
        raise DataError(f"{cfg.captions}: no training caption has a word: check the caption file")

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)

    def batch_regions(idx: torch.Tensor) -> torch.Tensor:
        if train_regions is not None:
            return train_regions[idx].float().to(device)
        from ...runtime.media.image import preprocess_batch

        pix = torch.from_numpy(preprocess_batch([train_items[int(i)].image for i in idx], spec)).to(device)
        return model.regions(pix)

    last_step = [0]

    def train_step(indices: list[int], step: int):
        idx, tin, tout = collate([train_ex[j] for j in indices], vocab)
        last_step[0] = step
        return model.loss(batch_regions(idx), tin.to(device), tout.to(device), cfg.feed, step)

    def evaluate():
        vr = val_regions.to(device)
        val_loss = validation_loss(model, vr, val_ex, vocab, cfg.batch_size)
        scores = validation_scores(model, vr, val_items, vocab, cfg) if cfg.val_max else {}
        metrics = {"val_loss": val_loss, **{f"val_{k}": v for k, v in scores.items()},
                   **feed_metrics(cfg.feed, last_step[0])}
        if cfg.model.tau == "learned" and cfg.model.attention == "soft":
            metrics["tau"] = float(model.tau.detach())
        shown = f", val loss {val_loss:.4f}" + "".join(f", {k} {v:.3f}" for k, v in scores.items()
                                                       if k in ("BLEU-4", "CIDEr-D"))
        # best = highest validation CIDEr-D (lowest validation loss when metrics are off)
        return metrics, scores.get("CIDEr-D", -val_loss), shown

    return run_epochs(run, cfg, model, opt, len(train_ex), [len(ids) for _, ids in train_ex], train_step, evaluate,
                      {"vocab_size": len(vocab), "task": "caption"}, resume, progress)
