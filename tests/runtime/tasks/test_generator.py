"""The Generator API on real exported bundles: a character LM and digit pixel models."""

from __future__ import annotations

import numpy as np
import pytest

from edge_s2s.runtime import Beam, Greedy, InputError, Sample
from edge_s2s.runtime.tasks.generator import Generator


@pytest.fixture(scope="module")
def lm(lm_bundle):
    return Generator.load(lm_bundle)


@pytest.fixture(scope="module")
def digits(digits_bundle):
    return Generator.load(digits_bundle)


def test_decoder_only_manifest(lm, digits):
    for g in (lm, digits):
        m = g.manifest
        assert m.task == "generate" and m.memory == [] and not m.attention
        assert [t.name for t in m.encoder.inputs] == ["condition"]
    assert lm.unit == "char" and lm.conditions is None
    assert digits.is_image and len(digits.conditions) == 10 and (digits.height, digits.width) == (8, 8)


def test_prompt_is_kept_and_continued(lm):
    r = lm.generate(["And God "], n=3, search=Sample(seed=1), max_length=60)
    assert len(r) == 3
    for res in r:
        assert res.text.startswith("And God ")
        assert len(res.hypotheses[0].ids) > len("And God ")
    tails = lm.generate(["And God "], n=3, search=Sample(seed=1), max_length=60, include_prompt=False)
    assert [x.text for x in r] == ["And God " + t.text for t in tails]


def test_same_seed_same_text_other_seed_other_text(lm):
    a = [r.text for r in lm.generate([""], n=4, search=Sample(seed=5), max_length=80)]
    b = [r.text for r in lm.generate([""], n=4, search=Sample(seed=5), max_length=80)]
    c = [r.text for r in lm.generate([""], n=4, search=Sample(seed=6), max_length=80)]
    assert a == b
    assert a != c
    assert len(set(a)) > 1  # the n rows of one call draw their own tokens
    chunked = lm.generate([""], n=4, search=Sample(seed=5), max_length=80, batch_size=3)
    three = lm.generate([""], n=3, search=Sample(seed=5), max_length=80)
    one = lm.generate([""], n=1, search=Sample(seed=5), max_length=80)
    assert [r.text for r in chunked] == [r.text for r in three + one]  # each batch starts the seed afresh


def test_reference_loop_draws_the_same_samples(lm, lm_bundle):
    ref = Generator.load(lm_bundle, loop="reference")
    s = Sample(temperature=0.9, top_p=0.95, seed=11, repetition_penalty=1.2)
    got = lm.generate(["In the "], n=2, search=s, max_length=50)
    want = ref.generate(["In the "], n=2, search=s, max_length=50)
    assert [r.hypotheses[0].ids for r in got] == [r.hypotheses[0].ids for r in want]


def test_stream_yields_exactly_the_generated_tokens(lm):
    events = list(lm.stream("God ", search=Sample(seed=3), max_length=40))
    assert not any(e.forced for e in events)
    full = lm.generate(["God "], search=Sample(seed=3), max_length=40, include_prompt=False)[0].hypotheses[0]
    ids = [e.id for e in events if e.id != lm.vocab.eos_id]
    assert ids == full.ids


def test_score_is_the_sum_of_token_log_probs(lm):
    text = "And God saw the light"
    lp = lm.score([text])[0]
    ids = lm.prompt_ids(text) + [lm.vocab.eos_id]
    raw = lm.decode_encoded(lm.encode_conditions([0]), Greedy(), len(ids), prefix=[ids])[0][0]
    assert raw.ids == ids[:-1] and raw.finished  # ids exclude the end token, its log-prob counts
    assert lp == pytest.approx(sum(raw.token_log_probs), abs=1e-4)
    assert lp < 0
    assert lm.score(["And God saw the light"])[0] > lm.score(["thgil eht was doG dnA"])[0]


def test_greedy_and_beam_run_on_a_generator(lm):
    g = lm.generate(["The "], search=Greedy(), max_length=40)[0]
    b = lm.generate(["The "], search=Beam(3), max_length=40)[0]
    assert g.text.startswith("The ") and b.text.startswith("The ")
    assert np.isfinite(b.hypotheses[0].score) and np.isfinite(g.hypotheses[0].log_prob)
    assert b.hypotheses[0].ids[:4] == lm.prompt_ids("The ")


def test_no_repeat_ngram_blocks_repeats_in_generated_text(lm):
    r = lm.generate([""], n=6, search=Sample(seed=2, temperature=0.7, no_repeat_ngram_size=4), max_length=120)
    for res in r:
        ids = res.hypotheses[0].ids
        grams = [tuple(ids[i : i + 4]) for i in range(len(ids) - 3)]
        assert len(grams) == len(set(grams))


def test_prompt_errors(lm):
    with pytest.raises(InputError, match="never saw: '€'"):
        lm.generate(["And € "])
    with pytest.raises(InputError, match="at most"):
        lm.generate(["a" * 50], max_length=20)
    with pytest.raises(InputError, match="n must be >= 1"):
        lm.generate([""], n=0)
    with pytest.raises(InputError, match="unconditional"):
        lm.generate([""], condition=3)
    with pytest.raises(InputError, match="list of prompts"):
        lm.generate("And")
    with pytest.raises(InputError, match="text model"):
        lm.sample_images(2)


def test_sampled_images_are_levels_of_the_right_size(digits):
    imgs = digits.sample_images(5, condition=3, search=Sample(seed=0))
    assert imgs.shape == (5, 8, 8) and imgs.dtype == np.uint8
    assert imgs.max() < digits.levels
    again = digits.sample_images(5, condition="3", search=Sample(seed=0))
    assert np.array_equal(imgs, again)  # a class name (here "3") picks the same class


def test_completion_keeps_the_top_rows(digits):
    rng = np.random.default_rng(0)
    start = rng.integers(0, digits.levels, (3, 8, 8)).astype(np.uint8)
    done = digits.complete(start, rows=4, condition=1, search=Sample(seed=1))
    assert np.array_equal(done[:, :4], start[:, :4])
    assert not np.array_equal(done[:, 4:], start[:, 4:])


def test_image_score_matches_pytorch(digits, digits_run):
    import torch

    from edge_s2s.train.generate.loop import load_generator

    model, _, _ = load_generator(digits_run)
    rng = np.random.default_rng(1)
    img = rng.integers(0, digits.levels, (8, 8))
    rt = digits.score([img], condition=2)[0]
    with torch.no_grad():
        lp = model(torch.from_numpy(img.reshape(1, -1) + 4), torch.tensor([2]))
    pt = float(lp.gather(-1, torch.from_numpy(img.reshape(1, -1, 1) + 4)).sum())
    assert rt == pytest.approx(pt, abs=1e-3)


def test_condition_errors(digits):
    with pytest.raises(InputError, match="unknown condition 12"):
        digits.sample_images(1, condition=12)
    with pytest.raises(InputError, match="unknown condition 'zebra'"):
        digits.sample_images(1, condition="zebra")
    with pytest.raises(InputError, match="needs a condition"):
        digits.sample_images(1)
    with pytest.raises(InputError, match="n must be >= 1"):
        digits.sample_images(0, condition=1)
    with pytest.raises(InputError, match="levels must be in"):
        digits.complete(np.full((1, 8, 8), 9), rows=2, condition=1)
    with pytest.raises(InputError, match=r"\[n, 8, 8\]"):
        digits.complete(np.zeros((1, 5, 5)), rows=2, condition=1)
    with pytest.raises(InputError, match="image model"):
        digits.generate(["hello"], condition=1)


def test_grid_model_bundle_runs_with_no_special_code(grid_bundle):
    g = Generator.load(grid_bundle)
    names = g.manifest.state_names
    assert {"pos", "row_h", "row_tok"} <= set(names)
    a = g.sample_images(4, search=Sample(seed=9))
    ref = Generator.load(grid_bundle, loop="reference").sample_images(4, search=Sample(seed=9))
    assert np.array_equal(a, ref)
    b = g.complete(a, rows=6, search=Beam(2))
    assert np.array_equal(b[:, :6], a[:, :6])


def test_wrong_bundle_kind_is_refused(model_bundle, lm_bundle):
    from edge_s2s.runtime import EdgeS2SError, Seq2Seq

    with pytest.raises(EdgeS2SError, match="not a 'generate' one: run it with `edge-s2s translate`"):
        Generator.load(model_bundle)
    with pytest.raises(EdgeS2SError, match="a 'generate' bundle, not a 'translate' one: run it with `edge-s2s generate`"):
        Seq2Seq.load(lm_bundle)
