"""A tiny speech recogniser of tone sequences: four digits, each a pure tone, trained for 40 steps
and exported once per test process (runtime, picture and CLI tests share it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_s2s.runtime.media.features import FeatureConfig, log_mel
from edge_s2s.runtime.text import SPECIALS, Vocab

RATE = 8000
DIGITS = "0123"
TONES = {"0": 300.0, "1": 700.0, "2": 1300.0, "3": 2200.0}
VOCAB = Vocab(list(SPECIALS) + list(DIGITS))
FEATURES = FeatureConfig(sample_rate=RATE, n_mels=12, n_fft=256, normalize=True)
MAX_SECONDS = 3.0
_BUILT: dict[str, Path] = {}


def tone_audio(digits: str, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    """0.12 s of each digit's tone with 0.04 s gaps and 0.05 s of quiet either side (float32 mono)."""
    t = np.arange(int(0.12 * rate)) / rate
    gap = np.zeros(int(0.04 * rate))
    parts = [np.zeros(int(0.05 * rate))]
    for d in digits:
        parts += [amp * np.sin(2 * np.pi * TONES[d] * t), gap]
    parts.append(np.zeros(int(0.05 * rate)))
    return np.concatenate(parts).astype(np.float32)


def _batch(rng: np.random.Generator, B: int):
    import torch

    seqs = ["".join(rng.choice(list(DIGITS), rng.integers(1, 4))) for _ in range(B)]
    feats = [log_mel(tone_audio(s), FEATURES) for s in seqs]
    T = max(len(f) for f in feats)
    x = np.zeros((B, T, FEATURES.n_mels), np.float32)
    tgt_in, tgt = np.zeros((B, 5), np.int64), np.zeros((B, 5), np.int64)
    for i, (f, s) in enumerate(zip(feats, seqs)):
        x[i, : len(f)] = f
        ids = VOCAB.encode(list(s))
        tgt[i, : len(ids) + 1] = ids + [VOCAB.eos_id]
        tgt_in[i, : len(ids) + 1] = [VOCAB.bos_id] + ids
    return (torch.from_numpy(x), torch.tensor([len(f) for f in feats]), torch.from_numpy(tgt_in),
            torch.from_numpy(tgt))


def tiny_speech_bundle(root: Path) -> Path:
    """Train a tiny Speller for 40 steps on tone sequences and export it (once per process)."""
    if "bundle" in _BUILT:
        return _BUILT["bundle"]
    import torch

    from edge_s2s.export.speech import write_speech_bundle
    from edge_s2s.train.speech.config import SpeechModelConfig
    from edge_s2s.train.speech.model import Speller

    torch.set_num_threads(1)
    torch.manual_seed(1)
    cfg = SpeechModelConfig(n_mels=FEATURES.n_mels, listener_hidden=16, dec_hidden=20, emb_dim=5, att_dim=8,
                            attention="location", location_filters=3, location_kernel=5, dropout=0.0)
    model = Speller(cfg, len(VOCAB)).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    rng = np.random.default_rng(0)
    for _ in range(40):
        loss, _ = model.loss(*_batch(rng, 8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ck = root / "weights.pt"
    torch.save(model.state_dict(), ck)
    write_speech_bundle(model, VOCAB, FEATURES, root / "bundle", 8, ck, max_seconds=MAX_SECONDS)
    _BUILT["bundle"] = root / "bundle"
    return _BUILT["bundle"]
