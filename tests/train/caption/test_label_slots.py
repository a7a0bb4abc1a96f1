"""Label slots and copying (issue 16): the classifier's top-K plain names become attended slots,
and the pointer-generator mixture can write a slot's name even when the vocabulary head never learned it."""

import pytest
import torch

from edge_s2s.runtime.text import SPECIALS, Vocab
from edge_s2s.train.caption.config import CaptionModelConfig
from edge_s2s.train.caption.label_names import load_label_names
from edge_s2s.train.caption.model import CaptionModel

TINY = dict(emb_dim=16, dec_hidden=32, region_dim=24, att_dim=8, dropout=0.0)
NAMES = sorted(set(load_label_names()))
TOKENS = list(SPECIALS) + ["a", "the", "on", "red"] + NAMES


def _model(**kw) -> CaptionModel:
    torch.manual_seed(0)
    cfg = CaptionModelConfig(**TINY, **{"labels": 4, "no_end_words": True, **kw})
    return CaptionModel(cfg, len(TOKENS), pretrained=False, tokens=TOKENS).eval()


def _step(m, enc, tokens, rows):
    states = m.initial_states(enc)
    rows = torch.tensor(rows)
    return m.step(torch.tensor(tokens), rows, rows, torch.tensor([3]), *[enc[n] for n in m.memory_names],
                  states["h"], states["c"])


def test_slots_are_the_most_probable_distinct_names_and_follow_the_regions():
    m = _model()
    regions = torch.rand(2, 49, 1280)
    enc = m.encode_regions(regions)
    assert enc["memory"].shape == (2, 53, 24) and enc["memory_key"].shape == (2, 53, 8)
    assert enc["label_tokens"].shape == (2, 4) and enc["label_key"].shape == (2, 4, 8)
    probs = torch.softmax(m.classifier(regions.mean(1)), 1)
    by_name = {}
    for c, n in enumerate(load_label_names()):
        by_name[n] = by_name.get(n, 0.0) + float(probs[0, c])
    best = sorted(by_name, key=by_name.get, reverse=True)[:4]
    assert [TOKENS[int(t)] for t in enc["label_tokens"][0]] == best
    assert len(set(enc["label_tokens"][0].tolist())) == 4


def test_copy_mixture_is_a_distribution_and_copies_only_slot_names():
    m = _model()
    enc = m.encode_regions(torch.rand(2, 49, 1280))
    out = _step(m, enc, [2, 7, 2], [0, 0, 1])
    assert out["attention"].shape == (3, 53)
    assert torch.allclose(out["logprobs"].exp().sum(1), torch.ones(3), atol=1e-4)
    with torch.no_grad():  # gate shut: only copying is left, and only the row's own slot names have mass
        m.copy_gate.weight.zero_()
        m.copy_gate.bias.fill_(-30.0)
    with torch.no_grad():
        p = _step(m, enc, [2, 7, 2], [0, 0, 1])["logprobs"].exp()
    for r, b in enumerate([0, 0, 1]):
        slots = set(enc["label_tokens"][b].tolist())
        mass = sum(float(p[r, t]) for t in slots)
        assert mass > 0.99, (r, mass)


def test_attention_label_columns_are_the_copy_probabilities():
    """The step's attention output: region attention in the first 49 columns, then each label's copy
    probability (1 - g) ptr_k (what the picture's bars show)."""
    m = _model()
    enc = m.encode_regions(torch.rand(2, 49, 1280))
    for bias, want in ((-30.0, 1.0), (30.0, 0.0)):  # gate shut: all copied; gate open: nothing copied
        with torch.no_grad():
            m.copy_gate.weight.zero_()
            m.copy_gate.bias.fill_(bias)
            att = _step(m, enc, [2, 7, 2], [0, 0, 1])["attention"]
        assert att.shape == (3, 53) and torch.allclose(att[:, 49:].sum(1), torch.full((3,), want), atol=1e-5)
        assert (att[:, :49] >= 0).all() and (att[:, :49].sum(1) <= 1 + 1e-5).all()


def test_pointer_prior_multiplies_the_pointer_by_the_classifier_probability_to_the_beta():
    """pointer_prior beta: each slot's copy weight becomes ptr_k p_k^beta (renormalised), p_k the
    classifier's probability of its name; beta 0 leaves the graph as trained (no extra memory)."""
    regions = torch.rand(2, 49, 1280)
    att = {}
    for beta in (0.0, 2.0):
        m = _model(pointer_prior=beta)  # same seed: same weights
        enc = m.encode_regions(regions)
        assert ("label_prior" in m.memory_names) == bool(beta) == ("label_prior" in enc)
        with torch.no_grad():  # gate shut: the label columns are the pointer's weights
            m.copy_gate.weight.zero_()
            m.copy_gate.bias.fill_(-30.0)
            att[beta] = _step(m, enc, [2, 7, 2], [0, 0, 1])["attention"][:, 49:]
    _, p = m.top_labels(regions)
    shift = torch.log(att[2.0]) - torch.log(att[0.0]) - 2.0 * torch.log(p[[0, 0, 1]])
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-4)  # a per-row constant only
    assert not torch.allclose(att[2.0], att[0.0], atol=1e-3)
    for bad in (-1.0, float("nan"), 21.0):
        with pytest.raises(ValueError, match="pointer_prior"):
            CaptionModelConfig(**TINY, labels=4, pointer_prior=bad)
    with pytest.raises(ValueError, match="pointer_prior weighs the label slots"):
        CaptionModelConfig(**TINY, pointer_prior=1.0)


def test_end_token_is_forbidden_after_function_words_and_first():
    m = _model()
    enc = m.encode_regions(torch.rand(1, 49, 1280))
    ids = {t: i for i, t in enumerate(TOKENS)}
    out = _step(m, enc, [Vocab.bos_id, ids["a"], ids["the"], ids["on"], ids["red"], ids["cat"]], [0] * 6)
    eos = out["logprobs"][:, Vocab.eos_id]
    assert (eos[:4] == -1e4).all() and (eos[4:] > -100).all()  # "red" and "cat" may end (a bare "a red" is
    # completed at the runtime with a label name: runtime/tasks/captioner.py)
    assert torch.allclose(out["logprobs"].exp().sum(1), torch.ones(6), atol=1e-4)


def test_the_no_end_rule_comes_from_the_code_not_the_checkpoint():
    """A checkpoint saved with the older no-end buffer loads, and today's rule applies (re-export picks it up)."""
    m = _model()
    state = m.state_dict()
    assert "no_end" not in state
    ids = {t: i for i, t in enumerate(TOKENS)}
    old = torch.zeros(len(TOKENS), dtype=torch.bool)
    old[ids["a"]] = old[ids["cat"]] = True  # another rule, saved with an older checkpoint
    fresh = _model()
    fresh.load_state_dict({**state, "no_end": old})
    assert bool(fresh.no_end[ids["the"]]) and not bool(fresh.no_end[ids["cat"]])


def test_injection_inserts_a_missing_caption_name_at_a_random_rank_keeping_the_order():
    m = _model(label_inject=1.0).train()
    ids = {t: i for i, t in enumerate(TOKENS)}
    tok = torch.tensor([[ids["cat"], ids["dog"], ids["car"], ids["cup"]]])
    p = torch.tensor([[0.5, 0.2, 0.1, 0.05]])
    tgt = torch.tensor([[ids["a"], ids["red"], ids["motorcycle"], Vocab.eos_id]])
    ranks = set()
    torch.manual_seed(3)
    for _ in range(40):
        t2, p2 = m.inject_labels(tok, p, tgt)
        k = t2[0].tolist().index(ids["motorcycle"])
        ranks.add(k)
        others = [t for t in t2[0].tolist() if t != ids["motorcycle"]]
        assert others == tok[0, :3].tolist()  # the rest keep their order; the last one drops out
        assert all(float(p2[0, i]) >= float(p2[0, i + 1]) for i in range(3)), p2  # still sorted
    assert ranks == {0, 1, 2, 3}  # every rank is used: the pointer learns no favourite slot
    same, _ = m.inject_labels(tok, p, torch.tensor([[ids["a"], ids["cat"], Vocab.eos_id, 0]]))
    assert torch.equal(same, tok)  # the caption's name is already a slot: nothing to inject


def test_copy_names_takes_the_slot_names_out_of_the_generator():
    """With copy_names a slot's name has no generated mass: with the gate wide open (generate only) the
    row's own slot names get ~0 probability, while another image's names still can be generated."""
    m = _model(copy_names=True)
    enc = m.encode_regions(torch.rand(2, 49, 1280))
    ids = {t: i for i, t in enumerate(TOKENS)}
    enc["label_tokens"] = torch.tensor([[ids[n] for n in ("cat", "dog", "car", "cup")],
                                        [ids[n] for n in ("crab", "cow", "bison", "cup")]])
    with torch.no_grad():
        m.copy_gate.weight.zero_()
        m.copy_gate.bias.fill_(30.0)
        p = _step(m, enc, [2, 2], [0, 1])["logprobs"].exp()
    assert torch.allclose(p.sum(1), torch.ones(2), atol=1e-4)
    for r in (0, 1):
        own = enc["label_tokens"][r].tolist()
        assert max(float(p[r, t]) for t in own) < 1e-6
        other = [t for t in enc["label_tokens"][1 - r].tolist() if t not in own]
        assert other and min(float(p[r, t]) for t in other) > 1e-8
    plain = _model()  # the same weights without the rule generate the names too
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():
        plain.copy_gate.weight.zero_()
        plain.copy_gate.bias.fill_(30.0)
        q = _step(plain, enc, [2, 2], [0, 1])["logprobs"].exp()
    assert min(float(q[0, t]) for t in enc["label_tokens"][0].tolist()) > 1e-8
    with pytest.raises(ValueError, match="copy_names needs label slots"):
        CaptionModelConfig(**TINY, copy_names=True)


def test_label_models_need_the_vocabulary_and_every_name_in_it():
    with pytest.raises(ValueError, match="tokens="):
        CaptionModel(CaptionModelConfig(**TINY, labels=3), len(TOKENS), pretrained=False)
    with pytest.raises(ValueError, match="not vocabulary words"):
        CaptionModel(CaptionModelConfig(**TINY, labels=3), 8, pretrained=False, tokens=TOKENS[:8])
    with pytest.raises(ValueError, match="attention='soft'"):
        CaptionModelConfig(**TINY, labels=3, attention="none")


def test_training_loss_reaches_the_pointer_and_the_gate():
    m = _model(label_inject=1.0).train()
    ids = {t: i for i, t in enumerate(TOKENS)}
    tin = torch.tensor([[Vocab.bos_id, ids["a"], ids["motorcycle"]]])
    tout = torch.tensor([[ids["a"], ids["motorcycle"], Vocab.eos_id]])
    loss, n, _ = m.loss(torch.rand(1, 49, 1280), tin, tout)
    loss.backward()
    assert n == 3
    for name in ("slot_in.weight", "ptr_key.weight", "ptr_query.weight", "copy_gate.weight"):
        g = dict(m.named_parameters())[name].grad
        assert g is not None and float(g.abs().sum()) > 0, name
    assert not any(p.requires_grad for p in m.classifier.parameters())
