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


def _batch(rng: np.random.Generator, B: int, most: int = 3):
    """B random strings of 1..`most` digits as (frames, lengths, decoder input, targets)."""
    import torch

    seqs = ["".join(rng.choice(list(DIGITS), rng.integers(1, most + 1))) for _ in range(B)]
    feats = [log_mel(tone_audio(s), FEATURES) for s in seqs]
    T = max(len(f) for f in feats)
    x = np.zeros((B, T, FEATURES.n_mels), np.float32)
    tgt_in, tgt = np.zeros((B, most + 2), np.int64), np.zeros((B, most + 2), np.int64)
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


STRING_DIGITS = 5  # the digit-string model hears 1-5 digits at a time
STRING_MAX_SECONDS = 1.5  # longer recordings are split at pauses: 5 digits and the quiet around them fit


def tone_rate(max_digits: int = STRING_DIGITS) -> float:
    """The fastest output rate (digits per second of `tone_audio`) among 1..max_digits strings, as the
    export measures it on training recordings."""
    from edge_s2s.export.speech import max_token_rate

    return max_token_rate([(n, tone_audio("0" * n).size / RATE) for n in range(1, max_digits + 1)])


def digit_groups(digits: str, group: int = STRING_DIGITS, pause: float = 0.1) -> np.ndarray:
    """`digits` as tone groups of `group` digits with `pause` seconds more quiet between them (0.2 s in
    all with tone_audio's own): a long string read out in groups, split at the pauses by the transcriber."""
    quiet = np.zeros(int(pause * RATE), np.float32)
    parts = []
    for k in range(0, len(digits), group):
        parts += [tone_audio(digits[k: k + group]), quiet]
    return np.concatenate(parts[:-1])


def digit_string_bundle(root: Path) -> Path:
    """A tiny Speller that transcribes tone strings of 1-5 digits (800 steps, 10-20 seconds on one core;
    it knows tone_audio's own 0.05 s of quiet either side, so pieces cut from a longer recording may lose
    a digit: tests check what the limits do, and exact text only for whole tone_audio strings), exported with the training data's output rate (manifest max_tokens_per_second) and a
    limit of STRING_MAX_SECONDS (once per process)."""
    if "strings" in _BUILT:
        return _BUILT["strings"]
    import torch

    from edge_s2s.export.speech import write_speech_bundle
    from edge_s2s.train.speech.config import SpeechModelConfig
    from edge_s2s.train.speech.model import Speller

    torch.set_num_threads(1)
    torch.manual_seed(1)
    cfg = SpeechModelConfig(n_mels=FEATURES.n_mels, listener_hidden=24, dec_hidden=20, emb_dim=5, att_dim=8,
                            attention="location", location_filters=3, location_kernel=5, dropout=0.0,
                            pyramid_layers=2)
    model = Speller(cfg, len(VOCAB)).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(800):
        loss, _ = model.loss(*_batch(rng, 8, STRING_DIGITS))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ck = root / "strings.pt"
    torch.save(model.state_dict(), ck)
    write_speech_bundle(model, VOCAB, FEATURES, root / "strings", 4, ck, max_seconds=STRING_MAX_SECONDS,
                        tokens_per_second=tone_rate())
    _BUILT["strings"] = root / "strings"
    return _BUILT["strings"]


def bundle_with_rate(bundle: Path, dest: Path, rate: float | None, max_length: int | None = None) -> Path:
    """A copy of `bundle` whose manifest says max_tokens_per_second = `rate` (None: the field left out, as
    in bundles exported before it existed) and, when given, another max_length. The manifest is not in
    its own checksum list, so the copy loads like an export."""
    import json
    import shutil

    shutil.copytree(bundle, dest)
    m = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    m.pop("max_tokens_per_second", None)
    if rate is not None:
        m["max_tokens_per_second"] = rate
    if max_length is not None:
        m["max_length"] = max_length
    (dest / "manifest.json").write_text(json.dumps(m, indent=2), encoding="utf-8")
    return dest
