"""The compiled loop gives exactly the reference loop's tokens on the same graphs."""

import numpy as np
import pytest

from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq, Timings

SOURCES = ["w4 w5 w6", "w7", "w8 w9 w10 w11 w12", "w13 w14", "w20 w21 w22 w4", "w9", "w5 w5 w5 w5 w5 w5", "w16"]
SEARCHES = [
    Greedy(),
    Beam(size=1),
    Beam(size=2, n_best=2),
    Beam(size=4, n_best=3, length_penalty=0.6),
    Beam(size=3, early_stop=False, n_best=2),
    Beam(size=5, length_penalty=0.0),
    Sample(seed=0),
    Sample(seed=1, top_k=4, temperature=0.8),
    Sample(seed=2, top_p=0.7, temperature=1.3),
]


@pytest.fixture(scope="module")
def loops(model_bundle):
    return Seq2Seq.load(model_bundle, loop="reference"), Seq2Seq.load(model_bundle, loop="compiled")


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert [h.ids for h in ra.hypotheses] == [h.ids for h in rb.hypotheses]
        for ha, hb in zip(ra.hypotheses, rb.hypotheses):
            assert ha.log_prob == hb.log_prob and ha.score == hb.score
            assert ha.token_log_probs == hb.token_log_probs
            assert np.array_equal(ha.attention, hb.attention)


@pytest.mark.parametrize("search", SEARCHES, ids=repr)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_compiled_equals_reference(loops, search, batch):
    ref, fast = loops
    srcs = SOURCES[:batch]
    _same(ref.generate(srcs, search=search), fast.generate(srcs, search=search))


def test_rows_drop_and_lengths_differ(loops):
    ref, fast = loops
    res = fast.generate(SOURCES, search=Greedy())
    lengths = {len(r.hypotheses[0].ids) for r in res}
    assert len(lengths) > 2  # items finish at different steps, so rows are dropped mid-decode
    for r, s in zip(res, SOURCES):
        assert r.hypotheses[0].attention.shape[1] == len(s.split()) + 1  # trimmed to the source length


@pytest.mark.parametrize("search", [Greedy(), Beam(size=3, n_best=2), Sample(seed=3)], ids=repr)
def test_min_max_length(loops, search):
    ref, fast = loops
    a = ref.generate(SOURCES, search=search, max_length=5, min_length=3)
    _same(a, fast.generate(SOURCES, search=search, max_length=5, min_length=3))
    for r in a:
        for h in r.hypotheses:
            assert 2 <= len(h.ids) <= 5


def test_timings(loops):
    _, fast = loops
    t = Timings()
    fast.generate(SOURCES[:3], search=Beam(size=2), timings=t)
    assert len(t.encoder_ns) == 1 and t.step_ns and t.total_ns >= sum(t.step_ns) > 0


def test_model_without_attention(model_bundle, tmp_path):
    import json
    import shutil

    d = tmp_path / "noatt"
    shutil.copytree(model_bundle, d)
    m = json.loads((d / "manifest.json").read_text())
    m["attention"] = False
    m["decoder_step"]["outputs"] = [o for o in m["decoder_step"]["outputs"] if o["name"] != "attention"]
    (d / "manifest.json").write_text(json.dumps(m))
    ref, fast = Seq2Seq.load(d, loop="reference"), Seq2Seq.load(d, loop="compiled")
    for s in (Greedy(), Beam(size=3, n_best=2)):
        a, b = ref.generate(SOURCES, search=s), fast.generate(SOURCES, search=s)
        assert [[h.ids for h in r.hypotheses] for r in a] == [[h.ids for h in r.hypotheses] for r in b]
        assert all(h.attention is None for r in b for h in r.hypotheses)
