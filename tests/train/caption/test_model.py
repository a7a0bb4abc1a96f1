"""The Show-Attend-Tell model: contract shapes, attention, regulariser, frozen CNN, training."""

import json

import pytest
import torch

from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig
from edge_s2s.train.caption.model import CaptionModel

TINY = dict(emb_dim=16, dec_hidden=32, region_dim=24, att_dim=8, dropout=0.0)


@pytest.fixture(scope="module")
def soft():
    torch.manual_seed(0)
    return CaptionModel(CaptionModelConfig(**TINY), vocab_size=20).eval()


def test_encoder_outputs_and_step_shapes(soft):
    regions = torch.rand(3, 49, 1280)
    enc = soft.encode_regions(regions)
    assert enc["memory"].shape == (3, 49, 24) and enc["memory_key"].shape == (3, 49, 8)
    assert enc["state.h"].shape == (3, 32) and enc["state.c"].shape == (3, 32)
    states = soft.initial_states(enc)
    row = torch.tensor([0, 0, 2, 1])
    out = soft.step(torch.tensor([2, 5, 6, 7]), row, row, torch.tensor([4]), enc["memory"], enc["memory_key"],
                    states["h"], states["c"])
    assert out["logprobs"].shape == (4, 20) and out["topk_ids"].shape == (4, 4)
    assert out["attention"].shape == (4, 49)
    assert torch.allclose(out["attention"].sum(1), torch.ones(4), atol=1e-5)
    assert torch.allclose(out["logprobs"].exp().sum(1), torch.ones(4), atol=1e-4)
    # rows 0 and 1 continue the same item and state: same attention
    assert torch.allclose(out["attention"][0], out["attention"][1])


def test_h0_c0_come_from_the_mean_region(soft):
    regions = torch.rand(2, 49, 1280)
    shuffled = regions[:, torch.randperm(49)]
    a, b = soft.encode_regions(regions), soft.encode_regions(shuffled)
    assert torch.allclose(a["state.h"], b["state.h"], atol=1e-5)  # permutation-invariant mean
    assert not torch.allclose(a["state.h"][0], a["state.h"][1])


def test_no_attention_baseline_reads_one_vector():
    m = CaptionModel(CaptionModelConfig(**TINY, attention="none"), vocab_size=20).eval()
    enc = m.encode_regions(torch.rand(2, 49, 1280))
    assert m.memory_names == ["memory"] and enc["memory"].shape == (2, 1, 24)
    assert "attention" not in m.step_output_names()


def test_doubly_stochastic_regulariser_adds_to_the_loss_and_trains_tau():
    torch.manual_seed(0)
    plain = CaptionModel(CaptionModelConfig(**TINY), vocab_size=20)
    reg = CaptionModel(CaptionModelConfig(**TINY, doubly_stochastic=1.0, tau="learned", tau_init=3.0), vocab_size=20)
    reg.load_state_dict({**plain.state_dict(), "tau": reg.tau.detach()}, strict=True)
    regions = torch.rand(2, 49, 1280)
    tin = torch.tensor([[2, 5, 6, 0], [2, 7, 8, 9]])
    tout = torch.tensor([[5, 6, 3, 0], [7, 8, 9, 3]])
    l_plain, n, nll_plain = plain.loss(regions, tin, tout)
    l_reg, _, nll_reg = reg.loss(regions, tin, tout)
    assert n == 7 and nll_plain == pytest.approx(nll_reg, rel=1e-5)
    # sum_t alpha over 3 or 4 real steps spread over 49 regions is far below tau=3: a big penalty
    assert float(l_reg.detach()) > float(l_plain.detach()) + 49 * 2.0
    l_reg.backward()
    assert reg.tau.grad is not None and float(reg.tau.grad) > 0  # pulls tau down towards sum_t alpha


def test_fixed_tau_is_one_and_not_trained():
    m = CaptionModel(CaptionModelConfig(**TINY, doubly_stochastic=1.0, tau="fixed"), vocab_size=20)
    assert float(m.tau) == 1.0
    assert "tau" not in dict(m.named_parameters())


def test_cnn_is_frozen_by_default_and_stays_in_eval_mode():
    m = CaptionModel(CaptionModelConfig(**TINY), vocab_size=20)
    m.train()
    assert not any(p.requires_grad for p in m.cnn.parameters())
    assert not m.cnn.training and m.region_proj.training
    ft = CaptionModel(CaptionModelConfig(**TINY, finetune_cnn=True), vocab_size=20)
    ft.train()
    assert all(p.requires_grad for p in ft.cnn.parameters()) and ft.cnn.training


@pytest.mark.parametrize("bad", [dict(attention="hard"), dict(tau="auto"), dict(doubly_stochastic=-1.0),
                                 dict(attention="none", doubly_stochastic=1.0), dict(dropout=1.0)])
def test_bad_model_config_is_refused(bad):
    with pytest.raises(ValueError):
        CaptionModelConfig(**{**TINY, **bad})


def test_training_run_writes_what_export_needs(caption_run):
    names = {p.name for p in caption_run.iterdir()}
    assert {"config.json", "tokens.txt", "val.json", "last.pt", "best.pt", "metrics.jsonl"} <= names
    cfg = json.loads((caption_run / "config.json").read_text())
    assert cfg["task"] == "caption" and cfg["images"] == {"train": 24, "val": 12}
    hist = [json.loads(x) for x in (caption_run / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 6
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert "val_CIDEr-D" in hist[-1] and "tau" in hist[-1]
    val = json.loads((caption_run / "val.json").read_text())
    assert len(val) == 12 and all(v["image"].endswith("_2.jpg") for v in val)  # the val split, never train


def test_resume_continues_bit_for_bit(tmp_path, shapes_data, caption_cache):
    from caption_toy import tiny_caption_config

    from edge_s2s.train.caption.loop import train_captioner
    from edge_s2s.train.core.checkpoint import load_checkpoint

    straight = tiny_caption_config(shapes_data, tmp_path / "a")
    straight.epochs, straight.val_max = 2, 0
    train_captioner(straight, progress=False, cache_dir=caption_cache)
    cut = tiny_caption_config(shapes_data, tmp_path / "b")
    cut.epochs, cut.val_max, cut.max_steps = 2, 0, 8  # stop inside epoch 2 (6 batches an epoch)
    train_captioner(cut, progress=False, cache_dir=caption_cache)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 8
    cut.max_steps = 0
    train_captioner(cut, resume=True, progress=False, cache_dir=caption_cache)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 12
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_bad_train_config_is_refused():
    with pytest.raises(ValueError):
        CaptionTrainConfig(image_size=300)
    with pytest.raises(ValueError):
        CaptionTrainConfig(resize="stretch")


def test_decoding_never_says_unk_but_training_still_learns_it():
    torch.manual_seed(0)
    m = CaptionModel(CaptionModelConfig(**TINY), vocab_size=20).eval()
    with torch.no_grad():
        m.L_o.bias[1] = 50.0  # make <unk> (id 1) by far the most likely word
    enc = m.encode_regions(torch.rand(2, 49, 1280))
    st = m.initial_states(enc)
    row = torch.tensor([0, 1])
    out = m.step(torch.tensor([2, 2]), row, row, torch.tensor([3]), enc["memory"], enc["memory_key"], st["h"], st["c"])
    assert 1 not in out["topk_ids"].tolist()[0] and 1 not in out["topk_ids"].tolist()[1]
    assert torch.allclose(out["logprobs"].exp().sum(1), torch.ones(2), atol=1e-4)
    lp, _, _ = m.step_core(torch.tensor([2, 2]), row, row, {"memory": enc["memory"], "memory_key": enc["memory_key"]}, st)
    assert int(lp.argmax(1)[0]) == 1  # the training path is untouched
    m.cfg.block_unk = False
    out = m.step(torch.tensor([2, 2]), row, row, torch.tensor([3]), enc["memory"], enc["memory_key"], st["h"], st["c"])
    assert out["topk_ids"][0, 0] == 1


@pytest.mark.slow
def test_finetuning_the_cnn_trains_its_weights(tmp_path, shapes_data, caption_cache):
    from caption_toy import tiny_caption_config

    from edge_s2s.train.caption.image_encoder import RegionEncoder
    from edge_s2s.train.caption.loop import train_captioner
    from edge_s2s.train.core.checkpoint import load_checkpoint

    cfg = tiny_caption_config(shapes_data, tmp_path / "ft", finetune_cnn=True)
    cfg.epochs, cfg.max_steps, cfg.val_max, cfg.batch_size = 1, 2, 0, 4
    train_captioner(cfg, progress=False, cache_dir=caption_cache)
    ck = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert ck["step"] == 2
    before = RegionEncoder().state_dict()
    changed = [k for k, v in before.items() if v.dtype.is_floating_point and not torch.equal(v, ck["model"][f"cnn.{k}"])]
    assert changed  # the CNN's weights moved (frozen runs never change them)


# --- what the decoder is fed while training (train/methods/exposure.py) ---------------------------------


def test_captioner_p_one_is_teacher_forcing_and_p_zero_feeds_its_own_words():
    from edge_s2s.train.methods.exposure import FeedConfig

    torch.manual_seed(0)
    m = CaptionModel(CaptionModelConfig(**{**TINY, "dropout": 0.3}), vocab_size=20).train()
    regions = torch.rand(3, 49, 1280)
    tin = torch.tensor([[2, 5, 6, 7, 8], [2, 7, 8, 9, 0], [2, 9, 9, 4, 5]])
    outs = []
    for feed in (None, FeedConfig(mode="scheduled", schedule="constant", p=1.0)):
        torch.manual_seed(3)
        outs.append(m.forward_regions(regions, tin, feed, step=10))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    m.eval()
    with torch.no_grad():
        lp, _ = m.forward_regions(regions, tin, FeedConfig(mode="scheduled", schedule="constant", p=0.0,
                                                           pick="argmax"))
        ref, _ = m.forward_regions(regions, tin)
        greedy_in = torch.cat([tin[:, :1], lp[:, :-1].argmax(2)], 1)
        greedy_in[1, 4] = 0  # a padded position keeps its pad
        again, _ = m.forward_regions(regions, greedy_in)
    assert torch.equal(lp, again) and not torch.equal(lp, ref)


def test_distribution_fed_captioner_reads_the_previous_softmax():
    torch.manual_seed(0)
    m = CaptionModel(CaptionModelConfig(**TINY, input_feed="distribution"), vocab_size=20).eval()
    regions = torch.rand(2, 49, 1280)
    enc = m.encode_regions(regions)
    assert torch.equal(enc["state.prev_dist"], torch.nn.functional.one_hot(torch.tensor([2, 2]), 20).float())
    assert [s.name for s in m.state_specs()] == ["h", "c", "prev_dist"]
    with torch.no_grad():
        a, _ = m.forward_regions(regions, torch.tensor([[2, 5, 6], [2, 7, 8]]))
        b, _ = m.forward_regions(regions, torch.tensor([[2, 9, 9], [2, 4, 4]]))
    assert torch.equal(a, b)  # tokens are never read
    with pytest.raises(ValueError, match="input_feed"):
        CaptionModelConfig(**TINY, input_feed="words")


def _feed_config(shapes_data, out, feed, **model):
    m = dict(emb_dim=32, dec_hidden=64, region_dim=64, att_dim=32, dropout=0.1)
    m.update(model)
    return CaptionTrainConfig(captions=str(shapes_data["karpathy"]), images=str(shapes_data["images"]),
                              out_dir=str(out), model=CaptionModelConfig(**m), epochs=3, batch_size=8, lr=5e-3,
                              vocab_min_count=1, max_caption_length=8, val_max=0, feed=feed)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["scheduled", "distribution"])
def test_captioner_trains_with_each_feed(tmp_path, shapes_data, caption_cache, mode):
    from edge_s2s.runtime.tools.run_logs import read_metrics
    from edge_s2s.train.caption.loop import train_captioner
    from edge_s2s.train.methods.exposure import FeedConfig

    if mode == "scheduled":
        cfg = _feed_config(shapes_data, tmp_path / "r", FeedConfig(mode="scheduled", schedule="linear", k=24.0))
    else:
        cfg = _feed_config(shapes_data, tmp_path / "r", FeedConfig(mode="distribution"), input_feed="distribution")
    hist = read_metrics(train_captioner(cfg, progress=False, cache_dir=caption_cache))
    assert hist[-1]["train_loss"] < 0.8 * hist[0]["train_loss"]
    if mode == "scheduled":
        assert [m["ss_p"] for m in hist] == pytest.approx([1 - 5 / 24, 1 - 11 / 24, 1 - 17 / 24])  # 6 steps an epoch
    else:
        assert "ss_p" not in hist[0]
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert saved["feed"]["mode"] == mode


@pytest.mark.slow
def test_resume_is_bit_for_bit_with_scheduled_sampling(tmp_path, shapes_data, caption_cache):
    from edge_s2s.train.caption.loop import train_captioner
    from edge_s2s.train.core.checkpoint import load_checkpoint
    from edge_s2s.train.methods.exposure import FeedConfig

    feed = FeedConfig(mode="scheduled", schedule="exponential", k=0.9, pick="sample")
    straight = _feed_config(shapes_data, tmp_path / "a", feed)
    straight.epochs = 2
    train_captioner(straight, progress=False, cache_dir=caption_cache)
    cut = _feed_config(shapes_data, tmp_path / "b", feed)
    cut.epochs, cut.max_steps = 2, 8
    train_captioner(cut, progress=False, cache_dir=caption_cache)
    cut.max_steps = 0
    train_captioner(cut, resume=True, progress=False, cache_dir=caption_cache)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 12
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
