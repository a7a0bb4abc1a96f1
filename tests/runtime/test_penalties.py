"""Repetition penalty and no-repeat-n-gram blocking, in both loops and all three searches.

Vocabulary: 0 <pad> 1 <unk> 2 <s> 3 </s> 4 A 5 B 6 C. The table model says
p(A, B, C, </s>) = (0.4, 0.3, 0.2, 0.1) at every step whatever came before (the special
tokens have probability 0), so plain greedy repeats A forever and every penalised
log-prob below is worked out by hand: with repetition_penalty r a token in the history
has weight p**r, and a row is renormalised over the weights.
"""

import dataclasses
from math import log

import numpy as np
import pytest
from graphs import run_loop, write_table_bundle

from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq
from edge_s2s.runtime.loop_common import apply_penalties, has_penalties

EOS, A, B, C = 3, 4, 5, 6
LOOPS = ["reference", "compiled"]
P = {A: 0.4, B: 0.3, C: 0.2, EOS: 0.1}


def repeat_table() -> np.ndarray:
    row = np.full(7, -np.inf)
    for tok, p in P.items():
        row[tok] = np.log(p)
    t = np.empty((2, 1, 7, 7), np.float32)
    t[...] = row.astype(np.float32)
    return t


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = write_table_bundle(tmp_path_factory.mktemp("repeat_table"), repeat_table(), max_length=10)
    return {loop: Seq2Seq.load(d, loop=loop) for loop in LOOPS}


def _one(m, loop, search, **kw):
    (h,), = run_loop(m, loop, ["w4"], search, **kw)
    return h


# --- hand-worked on the table ------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_repetition_penalty_stops_greedy_repeating(models, loop):
    m = models[loop]
    h = _one(m, loop, Greedy())
    assert h.ids == [A] * 10 and not h.finished  # A is always the best token
    h = _one(m, loop, Greedy(repetition_penalty=3.0))
    # step 1: A weighs 0.4**3 = 0.064, total 0.664 -> B (0.3 / 0.664)
    # step 2: A 0.064, B 0.027, C 0.2, </s> 0.1, total 0.391 -> C
    # step 3: A 0.064, B 0.027, C 0.008, </s> 0.1, total 0.199 -> </s>
    assert h.ids == [A, B, C] and h.finished
    expected = [log(0.4), log(0.3 / 0.664), log(0.2 / 0.391), log(0.1 / 0.199)]
    assert h.token_log_probs == pytest.approx(expected, abs=1e-6)
    assert h.log_prob == pytest.approx(sum(expected), abs=1e-6)
    # The same with a beam of one, and with sampling at a near-zero temperature.
    b = _one(m, loop, Beam(size=1, repetition_penalty=3.0))
    assert b.ids == [A, B, C] and b.score == pytest.approx(sum(expected) / 4, abs=1e-6)
    s = _one(m, loop, Sample(seed=0, temperature=0.01, repetition_penalty=3.0))
    assert s.ids == [A, B, C] and s.token_log_probs == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("loop", LOOPS)
def test_repetition_penalty_beam_hand_worked(models, loop):
    r = run_loop(models[loop], loop, ["w4"], Beam(size=2, n_best=2, repetition_penalty=3.0))[0]
    # step 1: AB .4*.452, BA .3*(.4/.727), AC, BC: no </s> in the first two -> AB, BA live
    # step 2: history {A, B} in both rows -> ABC, BAC live (the </s> candidates rank 3rd, 4th)
    # step 3: ABC</s>, BAC</s> finish (ranks 0, 1): two finished, early stop.
    assert [h.ids for h in r] == [[A, B, C], [B, A, C]]
    abc = [log(0.4), log(0.3 / 0.664), log(0.2 / 0.391), log(0.1 / 0.199)]
    bac = [log(0.3), log(0.4 / 0.727), log(0.2 / 0.391), log(0.1 / 0.199)]
    assert [h.token_log_probs for h in r] == [pytest.approx(abc, abs=1e-6), pytest.approx(bac, abs=1e-6)]
    assert [h.score for h in r] == pytest.approx([sum(abc) / 4, sum(bac) / 4], abs=1e-6)


@pytest.mark.parametrize("loop", LOOPS)
def test_no_repeat_ngram_hand_worked(models, loop):
    m = models[loop]
    # n = 1: no token twice; after A B C only </s> is left (log-prob 0 after renormalising).
    h = _one(m, loop, Greedy(no_repeat_ngram_size=1))
    assert h.ids == [A, B, C] and h.finished
    assert h.token_log_probs == pytest.approx([log(0.4), log(0.5), log(2 / 3), 0.0], abs=1e-6)
    # n = 2: A A (no bigram yet); after A A, A is banned -> B; after B nothing -> A; after
    # A A B A: A and B banned -> C; after C nothing -> A; after ...C A: A, B, C banned -> </s>.
    h = _one(m, loop, Greedy(no_repeat_ngram_size=2))
    assert h.ids == [A, A, B, A, C, A] and h.finished
    assert h.token_log_probs == pytest.approx([log(0.4), log(0.4), log(0.5), log(0.4), log(2 / 3), log(0.4), 0.0],
                                              abs=1e-6)
    # Beam search over the same blocked distributions never repeats a token either.
    for hyp in run_loop(m, loop, ["w4"], Beam(size=3, n_best=3, no_repeat_ngram_size=1))[0]:
        assert len(set(hyp.ids)) == len(hyp.ids) and hyp.finished


@pytest.mark.parametrize("loop", LOOPS)
def test_penalties_apply_to_forced_prefix(models, loop):
    # The prefix is history too: after forced A B, C is the only unseen token (0.2 / 0.3),
    # and the forced B's own log-prob is the penalised one (0.3 / 0.6 with A banned).
    h = _one(models[loop], loop, Greedy(no_repeat_ngram_size=1), prefix=[[A, B]])
    assert h.ids == [A, B, C]
    assert h.token_log_probs == pytest.approx([log(0.4), log(0.5), log(2 / 3), 0.0], abs=1e-6)
    h = _one(models[loop], loop, Greedy(repetition_penalty=3.0), prefix=[[A, A]])
    assert h.token_log_probs[:2] == pytest.approx([log(0.4), log(0.064 / 0.664)], abs=1e-6)


def test_apply_penalties_values():
    lp = np.log(np.array([[0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1]], np.float32))
    hist = np.array([[0, 0, 1], [2, 1, 2]], np.int64)
    out = apply_penalties(lp, hist, Greedy(repetition_penalty=2.0), eos=3)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    w0 = np.array([0.16, 0.09, 0.2, 0.1])  # tokens 0 and 1 squared (each counted once)
    w1 = np.array([0.4, 0.09, 0.04, 0.1])
    assert out[0] == pytest.approx(np.log(w0 / w0.sum()), abs=1e-6)
    assert out[1] == pytest.approx(np.log(w1 / w1.sum()), abs=1e-6)
    # r < 1 makes seen tokens more likely
    up = apply_penalties(lp, hist, Greedy(repetition_penalty=0.5), eos=3)
    assert up[0, 1] > lp[0, 1] and up[0, 2] < lp[0, 2]
    # trigrams: history 0 1 2 0 1 -> the trigram (0, 1, 2) is banned next, nothing else
    hist = np.array([[0, 1, 2, 0, 1]], np.int64)
    out = apply_penalties(lp[:1], hist, Greedy(no_repeat_ngram_size=3), eos=3)
    assert out[0, 2] == -np.inf
    assert out[0, [0, 1, 3]] == pytest.approx(np.log(np.array([0.4, 0.3, 0.1]) / 0.8), abs=1e-6)
    # n = 2 after 0 1 2 0: bigrams starting with 0: (0, 1) -> 1 banned
    out = apply_penalties(lp[:1], np.array([[0, 1, 2, 0]]), Greedy(no_repeat_ngram_size=2), eos=3)
    assert np.isinf(out[0]).tolist() == [False, True, False, False]
    # every token banned: the end token stays allowed, with all the mass
    out = apply_penalties(lp[:1], np.array([[0, 1, 2, 3]]), Greedy(no_repeat_ngram_size=1), eos=3)
    assert out[0].tolist() == [-np.inf, -np.inf, -np.inf, 0.0]
    # short history: nothing to block, only renormalised
    out = apply_penalties(lp[:1], np.zeros((1, 0), np.int64), Beam(no_repeat_ngram_size=2), eos=3)
    assert out[0] == pytest.approx(lp[0], abs=1e-6)
    # combined: r on seen tokens, then the ban, then one log-softmax
    out = apply_penalties(lp[:1], np.array([[1, 1]]), Sample(repetition_penalty=2.0, no_repeat_ngram_size=2), eos=3)
    w = np.array([0.4, 0.0, 0.2, 0.1])
    assert out[0, 1] == -np.inf and out[0, [0, 2, 3]] == pytest.approx(np.log(w[[0, 2, 3]] / w.sum()), abs=1e-6)


# --- the random model --------------------------------------------------------------------


def _sources(seed: int, n: int = 8) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{int(x)}" for x in rng.integers(4, 24, int(rng.integers(1, 7)))) for _ in range(n)]


def _ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]


@pytest.fixture(scope="module")
def model_loops(model_bundle):
    return {"reference": Seq2Seq.load(model_bundle, loop="reference"),
            "compiled": Seq2Seq.load(model_bundle, loop="compiled")}


@pytest.mark.parametrize("n", [1, 2])
def test_no_repeat_ngram_on_random_model(model_loops, n):
    m = model_loops["compiled"]
    checked = repeats_without = 0
    for seed in range(6):
        srcs = _sources(seed)
        searches = [Greedy(), Beam(size=3, n_best=3), Sample(seed=seed), Sample(seed=seed + 100, temperature=1.5)]
        for search in searches:
            blocked = dataclasses.replace(search, no_repeat_ngram_size=n)
            for r in run_loop(m, "compiled", srcs, blocked):
                for h in r:
                    grams = _ngrams(h.ids, n)
                    assert len(grams) == len(set(grams)), (blocked, h.ids)
                    checked += 1
            for r in run_loop(m, "compiled", srcs, search):
                repeats_without += any(len(set(g)) < len(g) for g in [_ngrams(h.ids, n) for h in r])
    assert checked > 100
    assert repeats_without > 0  # without blocking this model does repeat, so the check has teeth


@pytest.mark.parametrize("search", [
    Greedy(repetition_penalty=1.5),
    Greedy(repetition_penalty=0.7, no_repeat_ngram_size=3),
    Greedy(no_repeat_ngram_size=2),
    Beam(size=3, n_best=2, repetition_penalty=1.3, no_repeat_ngram_size=2),
    Beam(size=4, n_best=3, repetition_penalty=2.0, length_penalty=0.6, early_stop=False),
    Beam(size=2, no_repeat_ngram_size=1),
    Sample(seed=1, repetition_penalty=1.5),
    Sample(seed=2, no_repeat_ngram_size=2, top_k=5),
    Sample(seed=3, repetition_penalty=1.2, no_repeat_ngram_size=2, top_p=0.8, temperature=1.2),
], ids=repr)
@pytest.mark.parametrize("with_prefix", [False, True])
def test_compiled_equals_reference_with_penalties(model_loops, search, with_prefix):
    from graphs import assert_same, random_prefixes

    for seed in range(2):
        srcs = _sources(seed + 50)
        # min_length 2 would reject the random prefixes that are just the end token
        kw = {"prefix": random_prefixes(seed, len(srcs)), "min_length": 1} if with_prefix else {"min_length": 2}
        a = run_loop(model_loops["reference"], "reference", srcs, search, **kw)
        assert_same(a, run_loop(model_loops["compiled"], "compiled", srcs, search, **kw))


@pytest.mark.parametrize("search", [Greedy(), Beam(size=3, n_best=2), Beam(size=2, length_penalty=0.0)], ids=repr)
@pytest.mark.parametrize("loop", LOOPS)
def test_penalty_that_never_fires_changes_nothing(model_loops, search, loop):
    # n-grams longer than max_length never block: only the host-side TopK over the
    # renormalised log-probs differs from the graph's TopK path, and it must pick the same.
    m = model_loops[loop]
    srcs = _sources(7)
    plain = run_loop(m, loop, srcs, search)
    long_n = run_loop(m, loop, srcs, dataclasses.replace(search, no_repeat_ngram_size=50))
    assert [[h.ids for h in r] for r in plain] == [[h.ids for h in r] for r in long_n]
    for ra, rb in zip(plain, long_n):
        for ha, hb in zip(ra, rb):
            assert ha.token_log_probs == pytest.approx(hb.token_log_probs, abs=1e-5)


# --- the config surface ------------------------------------------------------------------


def test_search_defaults_and_positional_fields():
    assert Beam(5).size == 5 and Beam(5, 0.6).length_penalty == 0.6
    assert Beam() == Beam(size=4, length_penalty=1.0, n_best=1, early_stop=True)
    assert Sample(0.5).temperature == 0.5 and Sample().seed is None
    for s in (Greedy(), Beam(), Sample()):
        assert s.repetition_penalty == 1.0 and s.no_repeat_ngram_size == 0 and not has_penalties(s)
    assert has_penalties(Greedy(repetition_penalty=1.1)) and has_penalties(Beam(no_repeat_ngram_size=3))
    with pytest.raises(TypeError):
        Beam(4, 1.0, 1, True, 1.5)  # the penalties are keyword-only
    with pytest.raises(dataclasses.FrozenInstanceError):
        Greedy().repetition_penalty = 2.0
    assert Greedy(repetition_penalty=1.2) != Greedy() and hash(Beam(3)) == hash(Beam(3))


@pytest.mark.parametrize("make,match", [
    (lambda: Greedy(repetition_penalty=0.0), "repetition_penalty must be > 0"),
    (lambda: Beam(size=2, repetition_penalty=-1.0), "repetition_penalty must be > 0"),
    (lambda: Sample(repetition_penalty=float("nan")), "repetition_penalty must be > 0"),
    (lambda: Greedy(no_repeat_ngram_size=-1), "no_repeat_ngram_size must be an integer >= 0"),
    (lambda: Sample(no_repeat_ngram_size=1.5), "no_repeat_ngram_size must be an integer >= 0"),
    (lambda: Beam(3, no_repeat_ngram_size=-2), "no_repeat_ngram_size must be an integer >= 0"),
    (lambda: Beam(0, repetition_penalty=1.5), "Beam size must be >= 1"),
])
def test_penalty_validation(make, match):
    with pytest.raises(ValueError, match=match):
        make()
