"""Forced-prefix decoding (`prefix=`, like CTranslate2's target_prefix) in both loops.

Vocabulary: 0 <pad> 1 <unk> 2 <s> 3 </s> 4 A 5 B 6 C. The table gives log p(next | item,
step, previous token), so every forced log-prob and every continuation is worked out by
hand below.
"""

import numpy as np
import pytest
from graphs import assert_same, random_prefixes, run_loop, write_table_bundle

from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq

EOS, A, B, C = 3, 4, 5, 6
JUNK = -100.0
LOOPS = ["reference", "compiled"]
SRC3 = ["w4", "w5", "w6"]  # three items, rows 0, 1, 2 of the table


def prefix_table() -> np.ndarray:
    t = np.full((3, 4, 7, 7), JUNK, np.float32)
    # item 0
    t[0, 0, 2, [A, B, C, EOS]] = [-0.1, -0.5, -2.5, -3.0]
    t[0, 1, A, [EOS, A, B, C]] = [-0.2, -2.0, -3.0, -4.0]
    t[0, 1, B, [EOS, A, B, C]] = [-1.0, -0.2, -2.0, -3.0]
    t[0, 1, C, [A, B, C, EOS]] = [-0.3, -0.4, -3.0, -2.0]
    t[0, 2, :, EOS], t[0, 2, :, A], t[0, 2, :, B], t[0, 2, :, C] = -0.5, -1.0, -1.2, -3.0
    t[0, 3, :, EOS], t[0, 3, :, A], t[0, 3, :, B], t[0, 3, :, C] = -0.1, -3.0, -3.0, -3.0
    # item 1: A is always best and the end token practically impossible
    t[1, :, :, A], t[1, :, :, B], t[1, :, :, C], t[1, :, :, EOS] = -0.1, -1.0, -2.0, -30.0
    # item 2: B is best for three steps, then the end token
    t[2, :3, :, A], t[2, :3, :, B], t[2, :3, :, C], t[2, :3, :, EOS] = -1.0, -0.2, -2.0, -3.0
    t[2, 3, :, EOS], t[2, 3, :, A], t[2, 3, :, B], t[2, 3, :, C] = -0.05, -3.0, -3.5, -4.0
    return t


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = write_table_bundle(tmp_path_factory.mktemp("prefix_table"), prefix_table(), max_length=6)
    return {loop: Seq2Seq.load(d, loop=loop) for loop in LOOPS}


def _ids(res):
    return [[h.ids for h in r] for r in res]


@pytest.mark.parametrize("loop", LOOPS)
def test_greedy_keeps_prefix_then_continues(models, loop):
    m = models[loop]
    (h,), = run_loop(m, loop, ["w4"], Greedy(), prefix=[[B]])
    # B forced (-0.5, not the greedy choice A); then after B: A (-0.2); step 2: </s> (-0.5).
    assert h.ids == [B, A] and h.finished
    assert h.token_log_probs == pytest.approx([-0.5, -0.2, -0.5], abs=1e-6)
    assert h.log_prob == pytest.approx(-1.2, abs=1e-6) and h.score == h.log_prob
    (h,), = run_loop(m, loop, ["w4"], Greedy(), prefix=[[C, C]])
    # C (-2.5) and C after C (-3.0) are both forced against the model's preference.
    assert h.ids == [C, C] and h.token_log_probs == pytest.approx([-2.5, -3.0, -0.5], abs=1e-6)
    # An empty prefix and prefix=None are plain greedy: A then </s>.
    for prefix in ([[]], None):
        (h,), = run_loop(m, loop, ["w4"], Greedy(), prefix=prefix)
        assert h.ids == [A] and h.log_prob == pytest.approx(-0.3, abs=1e-6)


@pytest.mark.parametrize("loop", LOOPS)
def test_different_prefix_lengths_in_one_batch(models, loop):
    m = models[loop]
    prefix = [[B], [], [C, C, A]]
    r0, r1, r2 = run_loop(m, loop, SRC3, Greedy(), prefix=prefix)
    assert r0[0].ids == [B, A] and r0[0].token_log_probs == pytest.approx([-0.5, -0.2, -0.5], abs=1e-6)
    # item 1 is free: A every step up to max_length 6, never the end token.
    assert r1[0].ids == [A] * 6 and not r1[0].finished and r1[0].log_prob == pytest.approx(-0.6, abs=1e-6)
    # item 2: C C A forced (-2, -2, -1), then step 3's </s> (-0.05).
    assert r2[0].ids == [C, C, A] and r2[0].finished
    assert r2[0].token_log_probs == pytest.approx([-2.0, -2.0, -1.0, -0.05], abs=1e-6)

    b0, b1, b2 = run_loop(m, loop, SRC3, Beam(size=2, n_best=2), prefix=prefix)
    # item 0 from the forced B (-0.5), one row: BA -0.7, B</s> -1.5 (rank 1: finishes, -1.5/2),
    # BB -2.5; step 2: BA</s> -1.2 finishes (-1.2/3): two finished, early stop.
    assert [h.ids for h in b0] == [[B, A], [B]]
    assert [h.score for h in b0] == pytest.approx([-0.4, -0.75], abs=1e-6)
    assert [h.log_prob for h in b0] == pytest.approx([-1.2, -1.5], abs=1e-6)
    # item 1 free: A^6 (-0.6) and A^5 B (-1.5) alive at max_length, unfinished.
    assert [h.ids for h in b1] == [[A] * 6, [A] * 5 + [B]] and not any(h.finished for h in b1)
    assert [h.score for h in b1] == pytest.approx([-0.1, -0.25], abs=1e-6)
    # item 2 keeps one row through C C A (-5.0); step 3: CCA</s> -5.05 finishes (/4), CCAA -8.0
    # and CCAB -8.5 live; step 4: CCAA</s> -8.05 finishes (/5): early stop.
    assert [h.ids for h in b2] == [[C, C, A], [C, C, A, A]]
    assert [h.score for h in b2] == pytest.approx([-5.05 / 4, -8.05 / 5], abs=1e-6)
    assert b2[0].token_log_probs == pytest.approx([-2.0, -2.0, -1.0, -0.05], abs=1e-6)


@pytest.mark.parametrize("loop", LOOPS)
def test_beam_over_prefix_equals_beam_from_its_state(models, tmp_path, loop):
    """Forcing B at step 0 = a model whose step 0 can only say B (with the same log-prob)."""
    t = prefix_table()
    t[0, 0, 2, :] = JUNK
    t[0, 0, 2, B] = -0.5
    only_b = Seq2Seq.load(write_table_bundle(tmp_path / "only_b", t, max_length=6), loop=loop)
    for search in (Beam(size=2, n_best=2), Beam(size=3, n_best=3, length_penalty=0.0), Beam(size=2, early_stop=False)):
        forced = run_loop(models[loop], loop, ["w4"], search, prefix=[[B]])[0]
        free = run_loop(only_b, loop, ["w4"], search)[0]
        assert [h.ids for h in forced] == [h.ids for h in free]
        assert [h.score for h in forced] == pytest.approx([h.score for h in free], abs=1e-6)
        assert [h.token_log_probs for h in forced] == [h.token_log_probs for h in free]
        assert all(h.ids[0] == B for h in forced)


@pytest.mark.parametrize("loop", LOOPS)
def test_sample_keeps_prefix_and_other_rows_draws(models, loop):
    m = models[loop]
    seen = set()
    for seed in range(8):
        s = Sample(seed=seed)
        _, r1, r2 = run_loop(m, loop, SRC3, s, prefix=[[], [C, B], [A, A, C]])
        assert r1[0].ids[:2] == [C, B] and r1[0].token_log_probs[:2] == pytest.approx([-2.0, -1.0], abs=1e-6)
        assert r2[0].ids[:3] == [A, A, C] and r2[0].token_log_probs[:3] == pytest.approx([-1.0, -1.0, -2.0], abs=1e-6)
        # item 1 never ends: sampled tokens after the prefix up to max_length 6
        assert len(r1[0].ids) == 6 and set(r1[0].ids[2:]) <= {A, B, C}
        # Item 1 never ends, so rows 0 (item 0) and 1 (item 1) live the same steps in both
        # runs: forcing item 1 leaves the uniforms of item 0's row, and its tokens, unchanged.
        free = run_loop(m, loop, SRC3[:2], s)
        forced = run_loop(m, loop, SRC3[:2], s, prefix=[[], [C, C, C]])
        assert forced[0][0].ids == free[0][0].ids
        assert forced[0][0].token_log_probs == free[0][0].token_log_probs
        assert forced[1][0].ids[:3] == [C, C, C]
        seen.add(tuple(free[0][0].ids))
    assert len(seen) > 1  # item 0 really is sampled


@pytest.mark.parametrize("loop", LOOPS)
def test_min_length_counts_prefix_tokens(models, loop):
    m = models[loop]
    # After A A the step-2 </s> (-0.5) is allowed at length 3 = min_length ...
    (h,), = run_loop(m, loop, ["w4"], Greedy(), prefix=[[A, A]], min_length=3)
    assert h.ids == [A, A] and h.finished
    # ... and skipped below min_length 4: A (-1.0), then step 3's </s> (-0.1).
    (h,), = run_loop(m, loop, ["w4"], Greedy(), prefix=[[A, A]], min_length=4)
    assert h.ids == [A, A, A] and h.token_log_probs == pytest.approx([-0.1, -2.0, -1.0, -0.1], abs=1e-6)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("search", [Greedy(), Beam(size=3, n_best=2), Sample(seed=4)], ids=repr)
def test_prefix_with_end_token_scores_the_sequence(models, loop, search):
    m = models[loop]
    prefix = [[B, A, EOS], [A, EOS], [EOS]]
    res = run_loop(m, loop, SRC3, search, prefix=prefix)
    expected = [([B, A], [-0.5, -0.2, -0.5]), ([A], [-0.1, -30.0]), ([], [-3.0])]
    for r, (ids, lps) in zip(res, expected):
        assert len(r) == 1  # the forced end token ends the item's only row
        h = r[0]
        assert h.finished and h.ids == ids
        assert h.token_log_probs == pytest.approx(lps, abs=1e-6)
        assert h.log_prob == pytest.approx(sum(lps), abs=1e-6)
        norm = len(lps) ** search.length_penalty if isinstance(search, Beam) else 1.0
        assert h.score == pytest.approx(h.log_prob / norm, abs=1e-6)
        assert h.attention.shape == (len(ids), 2)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("search", [Greedy(), Beam(size=2, n_best=2)], ids=repr)
def test_prefix_as_long_as_max_length(models, loop, search):
    (h,), = run_loop(models[loop], loop, ["w4"], search, prefix=[[C, B, C]], max_length=3)
    assert h.ids == [C, B, C] and not h.finished
    assert h.token_log_probs == pytest.approx([-2.5, -0.4, -3.0], abs=1e-6)  # item 0: C, B after C, step 2 C


@pytest.mark.parametrize("loop", LOOPS)
def test_prefix_errors(models, loop):
    m = models[loop]
    with pytest.raises(ValueError, match=r"end token 3 at position 0"):
        run_loop(m, loop, ["w4"], Greedy(), prefix=[[EOS, A]])
    with pytest.raises(ValueError, match=r"end token 3 at position 1"):
        run_loop(m, loop, SRC3, Beam(size=2), prefix=[[], [A, EOS, B, EOS], []])
    with pytest.raises(ValueError, match=r"prefix\[0\] has 7 tokens, more than max_length=6"):
        run_loop(m, loop, ["w4"], Greedy(), prefix=[[A] * 7])
    with pytest.raises(ValueError, match=r"more than max_length=2"):
        run_loop(m, loop, ["w4"], Sample(seed=0), prefix=[[A] * 3], max_length=2)
    with pytest.raises(ValueError, match=r"2 id lists for a batch of 3"):
        run_loop(m, loop, SRC3, Greedy(), prefix=[[A], [B]])
    with pytest.raises(ValueError, match=r"1 id lists for a batch of 3"):
        run_loop(m, loop, SRC3, Beam(size=2), prefix=[[A]])
    with pytest.raises(ValueError, match=r"not a token id"):
        run_loop(m, loop, ["w4"], Greedy(), prefix=[[A, 7]])
    with pytest.raises(ValueError, match=r"below min_length=3"):
        run_loop(m, loop, ["w4"], Greedy(), prefix=[[A, EOS]], min_length=3)
    with pytest.raises(TypeError):
        run_loop(m, loop, ["w4"], Greedy(), prefix=[[1.5]])


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("search", [Greedy(), Sample(seed=9)], ids=repr)
def test_callback_marks_forced_tokens(models, loop, search):
    prefix = [[B], [], [C, C, A]]
    events = []
    res = run_loop(models[loop], loop, SRC3, search, prefix=prefix, callback=events.append)
    assert events
    for ev in events:
        assert ev.forced == (ev.step < len(prefix[ev.batch_index]))
        if ev.forced:
            assert ev.id == prefix[ev.batch_index][ev.step]
        assert ev.token == ("</s>" if ev.id == EOS else f"w{ev.id}")
    for b, r in enumerate(res):
        mine = [ev for ev in events if ev.batch_index == b]
        assert [ev.step for ev in mine] == list(range(len(mine)))
        assert [ev.id for ev in mine if ev.id != EOS] == r[0].ids
        assert [ev.log_prob for ev in mine] == pytest.approx(r[0].token_log_probs, abs=1e-12)
        assert sum(ev.forced for ev in mine) == len(prefix[b])


MODEL_SOURCES = ["w4 w5 w6", "w7", "w8 w9 w10 w11 w12", "w13 w14", "w20 w21 w22 w4", "w9", "w5 w5 w5 w5 w5 w5", "w16"]
MODEL_SEARCHES = [
    Greedy(),
    Beam(size=1),
    Beam(size=3, n_best=2),
    Beam(size=4, n_best=3, length_penalty=0.6, early_stop=False),
    Sample(seed=0),
    Sample(seed=5, top_k=4, temperature=0.8),
    Sample(seed=6, top_p=0.7, temperature=1.3),
]


@pytest.fixture(scope="module")
def model_loops(model_bundle):
    return Seq2Seq.load(model_bundle, loop="reference"), Seq2Seq.load(model_bundle, loop="compiled")


@pytest.mark.parametrize("search", MODEL_SEARCHES, ids=repr)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_compiled_equals_reference_with_prefix(model_loops, search, batch):
    ref, fast = model_loops
    for seed in range(3):
        prefix = random_prefixes(seed * 10 + batch, batch)
        srcs = MODEL_SOURCES[:batch]
        a = run_loop(ref, "reference", srcs, search, prefix=prefix)
        assert_same(a, run_loop(fast, "compiled", srcs, search, prefix=prefix))
        for r, p in zip(a, prefix):
            free = p[:-1] if p and p[-1] == EOS else p
            for h in r:
                assert h.ids[: len(free)] == free
                assert len(h.token_log_probs) >= len(p)
            if p and p[-1] == EOS:
                assert len(r) == 1 and r[0].finished and r[0].ids == free
