"""The compiled loop keeps each thread's runner (bindings and buffers) on the session and reuses it
for the next decode of the same shape: reuse must never change a result, whatever came before."""

import threading

import numpy as np

from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq
from tests.helpers.graphs import assert_same, random_prefixes, run_loop

SOURCES = ["w4 w5 w6", "w7", "w8 w9 w10 w11 w12", "w13 w14", "w20 w21 w22 w4", "w9", "w10 w11 w12"]
# the memory's length is the longest source's: SOURCES[1] and [5] have the same shape, [0] and [6] too


def _fresh(model_bundle, sources, search, **kw):
    """The same decode by a model loaded for it alone (nothing to reuse)."""
    return run_loop(Seq2Seq.load(model_bundle, threads=1), "compiled", sources, search, **kw)


def test_reused_runner_gives_what_a_fresh_one_gives(model_bundle):
    model = Seq2Seq.load(model_bundle, threads=1)
    plan = [
        (SOURCES[1:2], Greedy(), {}),
        (SOURCES[5:6], Greedy(), {}),  # same shape: reused, new initial states and memory
        (SOURCES[2:3], Greedy(), {}),  # longer memory: a new runner
        (SOURCES[0:1], Beam(size=2), {}),
        (SOURCES[6:7], Beam(size=2), {}),  # reused
        (SOURCES[:3], Beam(size=3, n_best=2), {}),
        (SOURCES[3:6], Beam(size=3, n_best=2), {}),
        (SOURCES[:3], Greedy(repetition_penalty=1.5, no_repeat_ngram_size=2), {}),
        (SOURCES[:3], Greedy(), {"prefix": random_prefixes(4, 3)}),
        (SOURCES[:1], Sample(seed=3, top_k=5), {}),
        (SOURCES[:1], Greedy(), {}),
    ]
    for sources, search, kw in plan * 2:  # the second pass starts from every shape already seen
        assert_same(run_loop(model, "compiled", sources, search, **kw), _fresh(model_bundle, sources, search, **kw))


def test_the_runner_is_kept_and_reused_for_the_same_shape(model_bundle):
    model = Seq2Seq.load(model_bundle, threads=1)
    run_loop(model, "compiled", SOURCES[1:2], Greedy())
    first = model.bundle.step._edge_s2s_runners.runner
    run_loop(model, "compiled", SOURCES[5:6], Greedy())
    assert model.bundle.step._edge_s2s_runners.runner is first and not first.busy
    run_loop(model, "compiled", SOURCES[:2], Greedy())
    assert model.bundle.step._edge_s2s_runners.runner is not first


def test_a_decode_started_from_a_callback_does_not_disturb_the_outer_one(model_bundle):
    """A callback may decode with the same model in the same thread: the outer runner is busy, so the
    inner decode gets its own."""
    model = Seq2Seq.load(model_bundle, threads=1)
    expected = _fresh(model_bundle, SOURCES[:1], Greedy())
    inner = []

    def callback(ev):
        inner.append(run_loop(model, "compiled", SOURCES[:1], Greedy()))

    got = run_loop(model, "compiled", SOURCES[:1], Greedy(), callback=callback)
    assert_same(got, expected)
    assert inner and all([h.ids for h in r[0]] == [h.ids for h in expected[0]] for r in inner)


def test_threads_each_keep_their_own_runner(model_bundle):
    model = Seq2Seq.load(model_bundle, threads=1)
    expected = {s: _fresh(model_bundle, [s], Beam(size=2)) for s in SOURCES}
    errors = []

    def work(k):
        try:
            for i in range(12):
                s = SOURCES[(k + i) % len(SOURCES)]
                got = run_loop(model, "compiled", [s], Beam(size=2))
                assert [h.ids for h in got[0]] == [h.ids for h in expected[s][0]]
                assert np.array_equal(got[0][0].attention, expected[s][0][0].attention)
        except AssertionError as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_memory_is_copied_into_the_runner_or_bound_again_with_the_same_results(model_bundle, monkeypatch):
    """Small memory goes into the runner's own bound buffers (each decode copies into them); larger
    memory is bound again each decode. Both give what a fresh model gives."""
    from edge_s2s.runtime import _loop

    for limit, copied in ((_loop.MEMORY_COPY_BYTES, True), (0, False)):
        monkeypatch.setattr(_loop, "MEMORY_COPY_BYTES", limit)
        model = Seq2Seq.load(model_bundle, threads=1)
        for sources in (SOURCES[1:2], SOURCES[5:6], SOURCES[1:2], SOURCES[0:1], SOURCES[6:7]):
            assert_same(run_loop(model, "compiled", sources, Greedy()), _fresh(model_bundle, sources, Greedy()))
            runner = model.bundle.step._edge_s2s_runners.runner
            assert (runner.own_memory is not None) == copied
