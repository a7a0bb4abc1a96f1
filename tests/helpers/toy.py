"""A synthetic "translation" task generated on the fly: made-up source words, each mapped
to its own target word, target in reverse order. Learnable by a tiny attention model."""

from __future__ import annotations

import random
from pathlib import Path

SOURCE_WORDS = ["ka", "lu", "mi", "to", "ne", "sa", "ri", "po", "fe", "du", "go", "ba"]


def target_word(w: str) -> str:
    return w[::-1] + "x"


def toy_pairs(n: int = 240, seed: int = 0, min_len: int = 2, max_len: int = 6) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(SOURCE_WORDS) for _ in range(rng.randint(min_len, max_len))]
        pairs.append((" ".join(words), " ".join(target_word(w) for w in reversed(words)) + " ."))
    return pairs


def write_toy_tsv(path: str | Path, n: int = 240, seed: int = 0) -> Path:
    path = Path(path)
    path.write_text("".join(f"{s}\t{t}\n" for s, t in toy_pairs(n, seed)), encoding="utf-8")
    return path


def tiny_config(data: str | Path, out_dir: str | Path, attention: str = "general", **kw):
    from edge_s2s.train.translate.config import ModelConfig, TrainConfig

    # emb 16, decoder hidden 32, encoder 2 x 16 (so dot attention fits: 32 == 2 * 16)
    model = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=32, attention=attention, att_dim=16,
                        dropout=kw.pop("dropout", 0.1), decoder=kw.pop("decoder", "lstm"), ntm_width=16)
    base = dict(data=str(data), out_dir=str(out_dir), model=model, epochs=2, batch_size=16, lr=0.01, clip=1.0,
                seed=3, val_fraction=0.1, max_source_length=8, max_target_length=8, val_bleu_max=8)
    base.update(kw)
    return TrainConfig(**base)
