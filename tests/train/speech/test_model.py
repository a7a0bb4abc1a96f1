"""The Listen-Attend-Spell model: the pyramid's 8x time reduction, padding that changes
nothing, the training path equal to the exported step, and a tiny model that learns."""

import numpy as np
import pytest
import torch

from edge_s2s.runtime.media.features import FeatureConfig, log_mel
from edge_s2s.train.speech.config import SpeechModelConfig
from edge_s2s.train.speech.model import Speller

ATTENTIONS = ["additive", "location"]


def _model(attention: str, n_mels: int = 8, vocab: int = 10, seed: int = 0, hidden: int = 6) -> Speller:
    torch.manual_seed(seed)
    cfg = SpeechModelConfig(n_mels=n_mels, listener_hidden=hidden, dec_hidden=hidden + 4, emb_dim=5, att_dim=7,
                            attention=attention, location_filters=3, location_kernel=5, dropout=0.0)
    return Speller(cfg, vocab).eval()


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_pyramid_reduces_time_8x_and_padding_changes_nothing(attention):
    model = _model(attention)
    lengths = [37, 20, 9, 1]
    g = torch.Generator().manual_seed(3)
    items = [torch.randn(n, 8, generator=g) for n in lengths]
    batch = torch.zeros(len(items), 37, 8)
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    with torch.no_grad():
        enc = model.encode(batch, torch.tensor(lengths))
    assert enc["memory"].shape == (4, 5, 12) and model.cfg.memory_length(37) == 5
    want_l = [5, 3, 2, 1]  # ceil(n / 8)
    assert enc["memory_mask"].sum(1).tolist() == want_l
    for i, (x, L) in enumerate(zip(items, want_l)):
        with torch.no_grad():
            one = model.encode(x.unsqueeze(0), torch.tensor([len(x)]))
        assert one["memory"].shape[1] == L
        for name, v in one.items():
            got = enc[name][i : i + 1]
            if got.dim() > 1 and name != "state.h":
                got = got[:, :L]
            assert torch.allclose(got.float(), v.float(), atol=1e-5), (name, i)
        assert torch.all(enc["memory"][i, L:] == 0)
    if attention == "location":
        prev = enc["state.prev_att"]
        assert torch.allclose(prev.sum(1), torch.ones(4)) and torch.all(prev[2, 2:] == 0)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_teacher_forcing_equals_stepping(attention):
    model = _model(attention)
    feats, lengths = torch.randn(3, 30, 8), torch.tensor([30, 17, 25])
    targets = torch.randint(4, 10, (3, 6))
    tgt_in = torch.cat([torch.full((3, 1), 2), targets[:, :-1]], dim=1)
    with torch.no_grad():
        full, att = model(feats, lengths, tgt_in)
        enc = model.encode(feats, lengths)
        states = model.initial_states(enc)
        names = [s.name for s in model.state_specs()]
        rows = torch.arange(3)
        for t in range(6):
            o = model.step(tgt_in[:, t], rows, rows, torch.tensor([4]), *[enc[n] for n in model.memory_names],
                           *[states[n] for n in names])
            assert torch.allclose(o["logprobs"], full[:, t], atol=1e-6)
            assert torch.allclose(o["attention"], att[:, t], atol=1e-6)
            states = {n: o[f"state.{n}.next"] for n in names}
    assert ("prev_att" in names) == (attention == "location")
    assert torch.all(att[1, :, 3:] == 0)  # 17 frames -> 3 memory positions: none attends past them


TONES = {4: 300.0, 5: 700.0, 6: 1300.0, 7: 2200.0}  # token id -> the tone that "says" it
RATE = 8000


def _tone_batch(rng: np.random.Generator, B: int, cfg: FeatureConfig):
    """Log-mels of 2-4 concatenated tones (0.12 s each) and the token sequence they spell."""
    feats, seqs = [], []
    for _ in range(B):
        ids = rng.choice(list(TONES), rng.integers(2, 5)).tolist()
        t = np.arange(int(0.12 * RATE)) / RATE
        audio = np.concatenate([0.5 * np.sin(2 * np.pi * TONES[i] * t) for i in ids]).astype(np.float32)
        feats.append(log_mel(audio, cfg))
        seqs.append(ids)
    T = max(len(f) for f in feats)
    x = np.zeros((B, T, cfg.n_mels), np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    tgt = np.zeros((B, 6), np.int64)
    tgt_in = np.zeros((B, 6), np.int64)
    for i, s in enumerate(seqs):
        tgt[i, : len(s) + 1] = s + [3]
        tgt_in[i, : len(s) + 1] = [2] + s
    return (torch.from_numpy(x), torch.tensor([len(f) for f in feats]), torch.from_numpy(tgt_in),
            torch.from_numpy(tgt))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_tiny_model_learns_tones_to_characters(attention):
    torch.set_num_threads(1)
    fcfg = FeatureConfig(sample_rate=RATE, n_mels=12, n_fft=256, normalize=True)
    model = _model(attention, n_mels=12, vocab=8, seed=1, hidden=16).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    rng = np.random.default_rng(0)
    held_out = _tone_batch(np.random.default_rng(99), 16, fcfg)
    with torch.no_grad():
        before = float(model.loss(*held_out)[0])
    for _ in range(60):
        loss, _ = model.loss(*_tone_batch(rng, 8, fcfg))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(model.loss(*held_out)[0])
    assert after < 0.7 * before, (before, after)


def test_config_is_validated():
    with pytest.raises(ValueError, match="attention"):
        SpeechModelConfig(attention="dot")
    with pytest.raises(ValueError, match="odd"):
        SpeechModelConfig(location_kernel=4)
    with pytest.raises(ValueError, match="pyramid_layers"):
        SpeechModelConfig(pyramid_layers=-1)
    with pytest.raises(ValueError, match="unknown"):
        SpeechModelConfig.from_dict({"n_mel": 40})
    cfg = SpeechModelConfig(n_mels=40, attention="location")
    assert SpeechModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.time_reduction == 8
