"""Scheduled sampling and feeding the distribution (train/methods/exposure.py) on the real translator."""

import json
import math
from dataclasses import replace

import pytest
import torch
from toy import tiny_config

from edge_s2s.cli.app import run as cli
from edge_s2s.runtime.tools.run_logs import read_metrics
from edge_s2s.train.core.checkpoint import load_checkpoint
from edge_s2s.train.methods.exposure import FeedConfig, reference_probability, unroll
from edge_s2s.train.translate.config import ModelConfig, TrainConfig
from edge_s2s.train.translate.loop import train_translator
from edge_s2s.train.translate.model import Translator
from edge_s2s.train.translate.ntm_decoder import build_translator

V = 20


def _model(dropout=0.0, seed=0, **kw) -> Translator:
    torch.manual_seed(seed)
    return build_translator(ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=16, att_dim=8, dropout=dropout,
                                        ntm_width=8, **kw), V)


def _batch(B=6, S=5, T=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (B, S), generator=g)
    lengths = torch.tensor([S - i % 3 for i in range(B)])
    for b in range(B):
        src[b, lengths[b]:] = 0
    tgt = torch.randint(4, V, (B, T), generator=g)
    tgt[:, 0] = 2  # <s>
    return src, lengths, tgt


def sched(schedule, **kw):
    return FeedConfig(mode="scheduled", schedule=schedule, **kw)


def test_schedules_match_hand_computed_values():
    assert reference_probability(sched("inverse_sigmoid", k=10.0), 0) == pytest.approx(10 / 11)
    assert reference_probability(sched("inverse_sigmoid", k=10.0), 30) == pytest.approx(10 / (10 + math.e ** 3))
    assert reference_probability(sched("inverse_sigmoid", k=10.0), 10**6) == 0.0  # no overflow
    assert reference_probability(sched("linear", k=100.0), 25) == pytest.approx(0.75)
    assert reference_probability(sched("linear", k=100.0, min_p=0.1), 95) == pytest.approx(0.1)
    assert reference_probability(sched("exponential", k=0.99), 100) == pytest.approx(0.99 ** 100)
    assert reference_probability(sched("constant", p=0.3), 12345) == 0.3
    assert reference_probability(FeedConfig(), 10**6) == 1.0  # teacher forcing never decays
    assert sched("exponential").k == 0.9995 and sched("constant").k is None  # defaults are recorded


@pytest.mark.parametrize("bad, word", [
    (dict(mode="teacher"), "feed mode"), (dict(schedule="cosine"), "schedule"), (dict(pick="top"), "pick"),
    (dict(schedule="inverse_sigmoid", k=0.5), "k >= 1"), (dict(schedule="exponential", k=1.5), "0 < k < 1"),
    (dict(schedule="linear", k=0.0), "k > 0"), (dict(p=1.5), "p must be"), (dict(min_p=-0.1), "min_p"),
])
def test_bad_feed_config_is_refused(bad, word):
    with pytest.raises(ValueError, match=word):
        FeedConfig(**bad)


def test_feed_and_input_feed_must_agree_and_old_configs_load(tmp_path):
    with pytest.raises(ValueError, match="input_feed='distribution'"):
        TrainConfig(feed=FeedConfig(mode="distribution"))
    with pytest.raises(ValueError, match="use feed mode 'distribution'"):
        TrainConfig(model=ModelConfig(input_feed="distribution"), feed=sched("linear"))
    with pytest.raises(ValueError, match="input_feed"):
        ModelConfig(input_feed="soft")
    cfg = TrainConfig(feed=sched("constant", p=0.25, pick="argmax"))
    back = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back.feed == cfg.feed and isinstance(back.feed, FeedConfig)
    old = cfg.to_dict()
    del old["feed"], old["model"]["input_feed"]  # a run directory written before these options
    old = TrainConfig.from_dict(old)
    assert old.feed == FeedConfig() and old.model.input_feed == "token"


@pytest.mark.parametrize("decoder", ["lstm", "ntm"])
def test_p_one_is_teacher_forcing_exactly(decoder):
    """Reference feed, constant p=1 and no feed at all give identical log-probs, dropout on."""
    model = _model(dropout=0.3, decoder=decoder).train()
    src, lengths, tgt = _batch()
    outs = []
    for feed in (None, FeedConfig(), sched("constant", p=1.0, pick="sample")):
        torch.manual_seed(7)
        outs.append(model(src, lengths, tgt, feed, step=50)[0])
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    torch.manual_seed(7)
    mixed = model(src, lengths, tgt, sched("constant", p=0.5), step=50)[0]
    assert not torch.equal(outs[0], mixed)


def test_p_zero_argmax_is_the_greedy_decode_fed_back():
    model = _model().eval()
    src, lengths, tgt = _batch()
    with torch.no_grad():
        lp, att = model(src, lengths, tgt, sched("constant", p=0.0, pick="argmax"))
        enc = model.encode(src, lengths)
        memory = {n: enc[n] for n in model.memory_names}
        states = model.initial_states(enc)
        rows = torch.arange(src.size(0))
        token, manual = tgt[:, 0], []
        for _ in range(tgt.size(1)):
            step_lp, _, states = model.step_core(token, rows, rows, memory, states)
            manual.append(step_lp)
            token = step_lp.argmax(1)
    assert torch.equal(lp, torch.stack(manual, 1))
    assert att.shape == (6, 7, 5)
    # and it is not teacher forcing: the reference inputs give other log-probs
    assert not torch.equal(lp, model(src, lengths, tgt)[0])


def _fed_tokens(model, src, lengths, tgt, feed, generator=None):
    """(tokens each step read [B, T], log-probs [B, T, V]) of one scheduled-sampling unroll."""
    enc = model.encode(src, lengths)
    memory = {n: enc[n] for n in model.memory_names}
    rows = torch.arange(src.size(0))
    fed = []

    def step_fn(token, states):
        fed.append(token)
        return model.step_core(token, rows, rows, memory, states)

    with torch.no_grad():
        lp, _ = unroll(step_fn, tgt, model.initial_states(enc), feed, 0, generator)
    return torch.stack(fed, 1), lp


def test_reference_is_chosen_with_probability_p_per_token():
    model = _model().eval()
    src, lengths, tgt = _batch(B=200, T=12, seed=3)
    tgt[:5, 9:] = 0  # padded positions keep the reference (pad)
    fed, lp = _fed_tokens(model, src, lengths, tgt, sched("constant", p=0.3, pick="argmax"),
                          torch.Generator().manual_seed(0))
    assert torch.equal(fed[:, 0], tgt[:, 0]) and torch.equal(fed[:5, 9:], tgt[:5, 9:])
    pred = lp[:, :-1].argmax(2)  # what the model would feed at positions 1..T-1
    ref = tgt[:, 1:]
    differ = (pred != ref) & (ref != 0)
    assert int(differ.sum()) > 1000  # an untrained model disagrees with the reference a lot
    took_ref = fed[:, 1:][differ] == ref[differ]
    assert bool(((fed[:, 1:] == ref) | (fed[:, 1:] == pred)).all())
    assert abs(float(took_ref.float().mean()) - 0.3) < 0.05


def test_sampled_inputs_follow_the_softmax():
    """pick="sample": the fed tokens are draws from the previous step's softmax (inverse CDF)."""
    model = _model().eval()
    src, lengths, tgt = _batch(B=1, T=2, seed=4)
    B = 4000
    src, lengths, tgt = src.expand(B, -1), lengths.expand(B), tgt.expand(B, -1)
    feed = sched("constant", p=0.0, pick="sample")
    fed, lp = _fed_tokens(model, src, lengths, tgt, feed, torch.Generator().manual_seed(0))
    freq = torch.bincount(fed[:, 1], minlength=V).float() / B
    assert 0.5 * float((freq - lp[0, 0].exp()).abs().sum()) < 0.05  # total variation distance
    again, _ = _fed_tokens(model, src, lengths, tgt, feed, torch.Generator().manual_seed(0))
    assert torch.equal(fed, again)  # seeded


@pytest.mark.parametrize("decoder", ["lstm", "ntm"])
def test_distribution_fed_model_reads_no_token(decoder):
    """input_feed="distribution": step t reads exp(log-probs of t-1) @ E (state.prev_dist), never a token."""
    model = _model(decoder=decoder, input_feed="distribution").eval()
    assert model.state_specs()[-1].name == "prev_dist" and model.state_specs()[-1].shape == ["N", V]
    src, lengths, tgt = _batch()
    with torch.no_grad():
        a, _ = model(src, lengths, tgt)
        b, _ = model(src, lengths, torch.full_like(tgt, 5))
        enc = model.encode(src, lengths)
    assert torch.equal(a, b)
    first = enc["state.prev_dist"]
    assert torch.equal(first, torch.nn.functional.one_hot(torch.full((6,), 2), V).float())
    # the second step reads the first step's softmax
    with torch.no_grad():
        memory = {n: enc[n] for n in model.memory_names}
        rows = torch.arange(6)
        lp0, _, st = model.step_core(tgt[:, 0], rows, rows, memory, model.initial_states(enc))
    assert torch.allclose(st["prev_dist"], a[:, 0].exp()) and torch.allclose(lp0, a[:, 0])


@pytest.mark.slow
def test_resume_is_bit_for_bit_with_scheduled_sampling(toy_tsv, tmp_path):
    kw = dict(epochs=2, checkpoint_every=3, dropout=0.2, val_bleu_max=0,
              feed=sched("inverse_sigmoid", k=5.0, pick="sample"))
    straight = train_translator(tiny_config(toy_tsv, tmp_path / "a", **kw), progress=False)
    half = train_translator(tiny_config(toy_tsv, tmp_path / "b", max_steps=9, **kw), progress=False)
    assert load_checkpoint(half / "last.pt")["step"] == 9
    resumed = train_translator(tiny_config(toy_tsv, tmp_path / "b", **kw), resume=True, progress=False)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert a["step"] == b["step"] == 28
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), name
    hist = read_metrics(resumed)
    assert [m["ss_p"] for m in hist] == [m["ss_p"] for m in read_metrics(straight)]
    assert hist[-1]["ss_p"] == pytest.approx(5 / (5 + math.exp(27 / 5)))  # p of the last step (27)


@pytest.mark.slow
@pytest.mark.parametrize("feed", [
    FeedConfig(), sched("inverse_sigmoid", k=20.0), sched("linear", k=60.0, min_p=0.2, pick="argmax"),
    sched("exponential", k=0.97), sched("constant", p=0.0), FeedConfig(mode="distribution"),
], ids=["reference", "inverse_sigmoid", "linear", "exponential", "always-model", "distribution"])
def test_each_feed_trains_and_lowers_the_loss(toy_tsv, tmp_path, feed):
    model = {"input_feed": "distribution"} if feed.mode == "distribution" else {}
    cfg = tiny_config(toy_tsv, tmp_path / "r", epochs=4, val_bleu_max=0)
    cfg = replace(cfg, model=replace(cfg.model, **model), feed=feed)
    run = train_translator(cfg, progress=False)
    hist = read_metrics(run)
    assert hist[-1]["train_loss"] < 0.8 * hist[0]["train_loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert ("ss_p" in hist[0]) == (feed.mode == "scheduled")
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["feed"]["mode"] == feed.mode and saved["model"]["input_feed"] == model.get("input_feed", "token")


def test_cli_feed_options(toy_tsv, tmp_path, capsys):
    base = ["train", "translate", "--data", str(toy_tsv), "--epochs", "1", "--max-steps", "2", "--emb-dim", "8",
            "--enc-hidden", "8", "--dec-hidden", "16", "--att-dim", "8", "--no-progress"]
    assert cli(base + ["--out", str(tmp_path / "d"), "--feed", "distribution"]) == 0
    saved = json.loads((tmp_path / "d" / "config.json").read_text())["train"]
    assert saved["model"]["input_feed"] == "distribution" and saved["feed"]["mode"] == "distribution"
    assert cli(base + ["--out", str(tmp_path / "s"), "--feed", "scheduled", "--ss-schedule", "constant",
                       "--ss-p", "0.5", "--ss-pick", "argmax"]) == 0
    saved = json.loads((tmp_path / "s" / "config.json").read_text())["train"]["feed"]
    assert (saved["mode"], saved["schedule"], saved["p"], saved["pick"]) == ("scheduled", "constant", 0.5, "argmax")
    capsys.readouterr()
    assert cli(base + ["--out", str(tmp_path / "x"), "--feed", "scheduled", "--ss-schedule", "cosine"]) == 1
    err = capsys.readouterr().err.strip()
    assert "schedule" in err and "inverse_sigmoid" in err and "Traceback" not in err and "\n" not in err
    assert not (tmp_path / "x").exists()
