"""Tab-separated parallel text: reading, the shared vocabulary, the split and batching.

One line is `source<TAB>target`. Text goes through the tokenizer the runtime uses: words
(`runtime.text.tokenize`) or subwords (a SentencePiece model learnt here, runtime/subwords.py),
and one vocabulary (`tokens.txt`) is shared by source and target; it is built from the training
split only. Every source gets the end token appended, exactly as the runtime's `encode_source`
does at inference time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ...runtime.errors import BundleError
from ...runtime.subwords import SubwordText
from ...runtime.text import Vocab, WordText, tokenize
from ..core.errors import DataError
from .config import TrainConfig
from .subword_train import SubwordOptions, learn_subwords, vocab_of


@dataclass
class Pair:
    source: str
    target: str
    src_tokens: list[str]
    tgt_tokens: list[str]


def read_tsv(path: str | Path, lowercase: bool = True) -> list[Pair]:
    """Read `source<TAB>target` lines; blank lines are skipped.

    Raises DataError naming file:line for a line without exactly one tab, an empty side,
    or bytes that are not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file: pass a tab-separated file with one source<TAB>target pair a line")
    raw = path.read_bytes()
    pairs: list[Pair] = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {e.start}): convert the file to UTF-8") from None
        text = text.rstrip("\r")
        if not text.strip():
            continue
        parts = text.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected source<TAB>target (one tab), found {len(parts) - 1} tabs")
        src, tgt = parts
        st, tt = tokenize(src, lowercase), tokenize(tgt, lowercase)
        if not st or not tt:
            side = "source" if not st else "target"
            raise DataError(f"{path}:{lineno}: the {side} side is empty: every line needs text on both sides")
        pairs.append(Pair(src, tgt, st, tt))
    if not pairs:
        raise DataError(f"{path}: no sentence pairs found: the file is empty")
    return pairs


def filter_length(pairs: list[Pair], max_src: int, max_tgt: int) -> list[Pair]:
    return [p for p in pairs if len(p.src_tokens) <= max_src and len(p.tgt_tokens) <= max_tgt]


def split(pairs: list[Pair], val_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Deterministic shuffle-and-cut: the same file and seed always give the same split."""
    idx = list(range(len(pairs)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, int(round(len(pairs) * val_fraction)))
    if n_val >= len(pairs):
        raise DataError(f"only {len(pairs)} usable pairs: too few to hold out a validation set")
    val = sorted(idx[:n_val])
    train = sorted(idx[n_val:])
    return [pairs[i] for i in train], [pairs[i] for i in val]


@dataclass
class Dataset:
    train: list[Pair]
    val: list[Pair]
    vocab: Vocab
    skipped: int  # pairs longer than the length limits
    text: WordText | SubwordText  # how text becomes tokens and ids, and back
    subword_model: bytes | None = None  # the serialized SentencePiece model (subword runs)


def load_dataset(cfg: TrainConfig, vocab: Vocab | None = None, subword_model: bytes | None = None) -> Dataset:
    """Read, filter, split and build (or reuse: `vocab`, `subword_model` on resume) the shared vocabulary."""
    if cfg.tokenizer == "sentencepiece":
        return _load_subword_dataset(cfg, vocab, subword_model)
    pairs = read_tsv(cfg.data, cfg.lowercase)
    kept = filter_length(pairs, cfg.max_source_length, cfg.max_target_length)
    skipped = len(pairs) - len(kept)
    if cfg.val_file:
        train = kept
        val = filter_length(read_tsv(cfg.val_file, cfg.lowercase), cfg.max_source_length, cfg.max_target_length)
        if not val:
            raise DataError(f"{cfg.val_file}: no validation pair within the length limits")
    else:
        train, val = split(kept, cfg.val_fraction, cfg.seed)
    if not train:
        raise DataError(f"{cfg.data}: no training pair within the length limits "
                        f"(max_source_length={cfg.max_source_length}, max_target_length={cfg.max_target_length})")
    if vocab is None:
        vocab = Vocab.build((t for p in train for t in (p.src_tokens, p.tgt_tokens)),
                            min_count=cfg.vocab_min_count, max_size=cfg.vocab_max_size)
    return Dataset(train, val, vocab, skipped, WordText(vocab, cfg.lowercase))


def _load_subword_dataset(cfg: TrainConfig, vocab: Vocab | None, model: bytes | None) -> Dataset:
    """Split first, learn SentencePiece on the training side only, then cut and filter by pieces."""
    pairs = read_tsv(cfg.data, cfg.lowercase)  # the word cut only checks every line has text
    if cfg.val_file:
        train, val = pairs, read_tsv(cfg.val_file, cfg.lowercase)
    else:
        train, val = split(pairs, cfg.val_fraction, cfg.seed)
    if model is None:
        opts = SubwordOptions(cfg.subword_vocab_size, cfg.subword_type)
        model = learn_subwords((t for p in train for t in (p.source, p.target)), opts, cfg.lowercase)
    vocab = vocab or vocab_of(model)
    try:
        text = SubwordText(model, vocab, cfg.lowercase)
    except BundleError as e:  # a resumed run whose tokens.txt and model disagree
        raise DataError(f"the run's SentencePiece model does not fit its tokens.txt: {e}") from None

    def cut(ps: list[Pair]) -> list[Pair]:
        return [Pair(p.source, p.target, text.pieces(p.source), text.pieces(p.target)) for p in ps]

    train_all, val_all = cut(train), cut(val)
    train = filter_length(train_all, cfg.max_source_length, cfg.max_target_length)
    val = filter_length(val_all, cfg.max_source_length, cfg.max_target_length)
    if not train or not val:
        raise DataError(f"{cfg.data}: no {'training' if not train else 'validation'} pair within the length limits "
                        f"(max_source_length={cfg.max_source_length}, max_target_length={cfg.max_target_length} "
                        "subword tokens)")
    return Dataset(train, val, vocab, len(train_all) - len(train), text, model)


@dataclass
class Batch:
    src: torch.Tensor  # int64 [B, S], source ids + end token, padded with 0
    src_lengths: torch.Tensor  # int64 [B]
    tgt_in: torch.Tensor  # int64 [B, T], <s> + target ids, padded
    tgt_out: torch.Tensor  # int64 [B, T], target ids + </s>, padded (0 = ignored)
    indices: list[int]  # positions in the split

    @property
    def n_tokens(self) -> int:
        return int((self.tgt_out != 0).sum())


def encode_pair(p: Pair, vocab: Vocab) -> tuple[list[int], list[int]]:
    return vocab.encode(p.src_tokens) + [vocab.eos_id], vocab.encode(p.tgt_tokens)


def collate(pairs: list[Pair], vocab: Vocab, indices: list[int]) -> Batch:
    enc = [encode_pair(p, vocab) for p in pairs]
    B = len(enc)
    S = max(len(s) for s, _ in enc)
    T = max(len(t) for _, t in enc) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    tgt_in = torch.zeros(B, T, dtype=torch.long)
    tgt_out = torch.zeros(B, T, dtype=torch.long)
    lengths = torch.zeros(B, dtype=torch.long)
    for i, (s, t) in enumerate(enc):
        src[i, : len(s)] = torch.tensor(s)
        lengths[i] = len(s)
        tgt_in[i, : len(t) + 1] = torch.tensor([vocab.bos_id] + t)
        tgt_out[i, : len(t) + 1] = torch.tensor(t + [vocab.eos_id])
    return Batch(src, lengths, tgt_in, tgt_out, indices)


def fixed_batches(pairs: list[Pair], vocab: Vocab, batch_size: int) -> list[Batch]:
    """Validation batches in a fixed order (sorted by length for less padding)."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].src_tokens))
    out = []
    for j in range(0, len(order), batch_size):
        ids = order[j : j + batch_size]
        out.append(collate([pairs[i] for i in ids], vocab, ids))
    return out
