"""The LSTM generator: the training path and the exported step compute the same thing."""

from __future__ import annotations

import math

import pytest
import torch

from edge_s2s.train.generate.config import GeneratorConfig, GeneratorTrainConfig
from edge_s2s.train.generate.model import RasterGenerator, make_generator, sequence_nll

V = 10


def _step_by_step(model, targets, cond):
    """Log-probs of `targets` through DecoderContract.step, one token at a time."""
    B, T = targets.shape
    enc = model.encode(cond)
    states = model.initial_states(enc)
    names = [s.name for s in model.state_specs()]
    token, row, k = torch.full((B,), 2), torch.arange(B), torch.tensor([2])
    out = []
    for t in range(T):
        o = model.step(token, row, row, k, *[states[n] for n in names])
        out.append(o["logprobs"])
        states = {n: o[f"state.{n}.next"] for n in names}
        token = targets[:, t]
    return torch.stack(out, 1)


PIXEL = dict(unit="pixel", height=3, width=4, blocked_ids=[0, 1, 2, 3], emb_dim=8, hidden=16)


@pytest.mark.parametrize("cfg", [
    GeneratorConfig(**PIXEL),
    GeneratorConfig(**PIXEL, n_conditions=3, cond_dim=5),
    GeneratorConfig(**PIXEL, layers=2),
    GeneratorConfig(**PIXEL, input_mode="distribution", n_conditions=3, cond_dim=5),
], ids=["tokens", "conditional", "two-layers", "distribution"])
def test_training_path_equals_the_step(cfg):
    torch.manual_seed(0)
    model = RasterGenerator(cfg, V).eval()
    targets = torch.randint(4, V, (3, 9))
    cond = torch.tensor([0, 2, 1]) if cfg.conditional else torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        full = model(targets, cond)
        steps = _step_by_step(model, targets, cond)
    finite = torch.isfinite(full)
    assert torch.equal(finite, torch.isfinite(steps))
    assert torch.allclose(full[finite], steps[finite], atol=1e-5)
    assert torch.all(torch.isinf(full[..., :4]))  # the specials are blocked for images


def test_distribution_input_ignores_the_tokens_fed():
    """Fed its own softmax, the model's outputs do not depend on the data (the notes' caveat)."""
    torch.manual_seed(0)
    model = RasterGenerator(GeneratorConfig(**PIXEL, input_mode="distribution"), V).eval()
    cond = torch.zeros(2, dtype=torch.long)
    a, b = torch.randint(4, V, (2, 6)), torch.randint(4, V, (2, 6))
    with torch.no_grad():
        assert torch.allclose(model(a, cond), model(b, cond))
    tok = RasterGenerator(GeneratorConfig(**PIXEL), V).eval()
    with torch.no_grad():
        assert not torch.allclose(tok(a, cond)[:, 1:], tok(b, cond)[:, 1:])


def test_condition_changes_the_output():
    torch.manual_seed(0)
    model = RasterGenerator(GeneratorConfig(**PIXEL, n_conditions=3), V).eval()
    t = torch.randint(4, V, (1, 5)).repeat(2, 1)
    with torch.no_grad():
        lp = model(t, torch.tensor([0, 1]))
    assert not torch.allclose(lp[0], lp[1])


def test_text_decoding_never_emits_unk_but_training_scores_it():
    torch.manual_seed(0)
    model = RasterGenerator(GeneratorConfig(unit="char", emb_dim=8, hidden=16), V).eval()
    t = torch.randint(4, V, (2, 5))
    with torch.no_grad():
        train_lp = model(t, torch.zeros(2, dtype=torch.long))
        step_lp = _step_by_step(model, t, torch.zeros(2, dtype=torch.long))
    assert torch.all(torch.isfinite(train_lp[..., 1]))  # <unk> is a training target
    assert torch.all(torch.isinf(step_lp[..., 1]))  # ... but decoding never says it
    # Decoding renormalises over the remaining tokens: same ratios, total mass 1.
    keep = [3] + list(range(4, V))
    ratio = train_lp[..., keep] - torch.logsumexp(train_lp[..., keep], -1, keepdim=True)
    assert torch.allclose(ratio, step_lp[..., keep], atol=1e-5)
    assert torch.allclose(step_lp.exp().sum(-1), torch.ones(2, 5), atol=1e-5)


def test_sequence_nll_skips_padding():
    lp = torch.log(torch.full((1, 3, 4), 0.25))
    lp[..., 0] = float("-inf")  # <pad> blocked: must not turn the sum into nan
    nll, n = sequence_nll(lp, torch.tensor([[2, 3, 0]]))
    assert n == 2
    assert math.isclose(float(nll), 2 * math.log(4), rel_tol=1e-6)


@pytest.mark.parametrize("kw, words", [
    (dict(unit="poem"), "unit"),
    (dict(arch="tree"), "arch"),
    (dict(unit="pixel"), "height and width"),
    (dict(arch="grid", unit="char"), "images only"),
    (dict(input_mode="dream"), "input_mode"),
    (dict(hidden=0), "hidden"),
])
def test_config_errors(kw, words):
    with pytest.raises(ValueError, match=words):
        GeneratorConfig(**kw)


def test_train_config_refuses_mismatched_data():
    with pytest.raises(ValueError, match="text"):
        GeneratorTrainConfig(data="kjv", model=GeneratorConfig(**PIXEL))
    with pytest.raises(ValueError, match="images"):
        GeneratorTrainConfig(data="digits", model=GeneratorConfig(unit="char"))
    with pytest.raises(ValueError, match="class labels"):
        GeneratorTrainConfig(data="kjv", conditional=True)
    assert isinstance(make_generator(GeneratorConfig(unit="char", hidden=8), V), RasterGenerator)
