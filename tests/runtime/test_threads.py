"""The threading contract the README states: one loaded model may be shared by many threads; each
call is independent and gives exactly what the same call gives alone (both loops, all searches)."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from edge_s2s.runtime import Beam, Greedy, Sample, Seq2Seq

SOURCES = ["w4 w5 w6", "w8 w9 w10 w11 w12", "w13 w14", "w5", "w6 w7 w8 w9"]
SEARCHES = [Greedy(), Beam(3, n_best=2), Sample(seed=7, top_k=5), Greedy(repetition_penalty=1.3)]


def _key(results):
    return [[(h.ids, round(h.score, 6)) for h in r.hypotheses] for r in results]


@pytest.mark.parametrize("loop", ["compiled", "reference"])
def test_one_model_many_threads_same_results(model_bundle, loop):
    model = Seq2Seq.load(model_bundle, loop=loop, threads=1)
    jobs = [(SOURCES[i % len(SOURCES):] + SOURCES[: i % len(SOURCES)], SEARCHES[i % len(SEARCHES)]) for i in range(48)]
    alone = [_key(model.generate(src, search=s)) for src, s in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda job: _key(model.generate(job[0], search=job[1])), jobs))
    assert together == alone


def test_loading_models_from_many_threads_leaves_stdout_alone(model_bundle, monkeypatch):
    """Session creation once redirected sys.stdout (process-wide) around every ORT constructor: threads
    loading models at once restored each other's stream and left the app's stdout on a StringIO."""
    import sys

    monkeypatch.setenv("EDGE_S2S_NO_CACHE", "1")  # every load builds its sessions from the graphs
    before = sys.stdout
    with ThreadPoolExecutor(max_workers=8) as pool:
        models = list(pool.map(lambda _: Seq2Seq.load(model_bundle, threads=1), range(24)))
    assert sys.stdout is before
    assert all(_key(m.generate(SOURCES[:1])) == _key(models[0].generate(SOURCES[:1])) for m in models)
