"""Streaming yields tokens one at a time, equal to generate's greedy output."""

import pytest

from edge_s2s.runtime import Beam, Greedy, InputError, Sample, Seq2Seq

SOURCES = ["w4 w5 w6", "w8 w9 w10 w11 w12", "w13 w14"]


@pytest.mark.parametrize("loop", ["reference", "compiled"])
def test_stream_equals_generate(model_bundle, loop):
    model = Seq2Seq.load(model_bundle, loop=loop)
    for src in SOURCES:
        expected = model.generate([src], search=Greedy())[0].hypotheses[0]
        it = model.stream(src, search=Greedy())
        events = []
        for ev in it:  # a real iterator: events arrive while the loop runs
            events.append(ev)
        assert [e.step for e in events] == list(range(len(events)))
        assert sum(e.is_last for e in events) == 1 and events[-1].is_last
        assert all(e.id != model.vocab.eos_id for e in events)  # the end token is never a streamed token
        assert [e.id for e in events] == expected.ids and [e.token for e in events] == expected.tokens
        ended = len(expected.token_log_probs) > len(expected.ids)
        assert events[-1].finished == ended and not any(e.finished for e in events[:-1])
        assert sum(e.log_prob for e in events) == pytest.approx(sum(expected.token_log_probs[: len(expected.ids)]),
                                                                abs=1e-9)


def test_stream_stop_early_and_callback(model_bundle):
    model = Seq2Seq.load(model_bundle)
    it = model.stream("w8 w9 w10 w11 w12", search=Sample(seed=1))
    first = next(it)
    it.close()  # stops the decode thread
    assert first.step == 0
    seen = []
    res = model.generate(SOURCES, search=Greedy(), callback=lambda ev: seen.append(ev) or (ev.batch_index == 1))
    assert len(res[1].hypotheses[0].ids) <= 1 and not any(e.batch_index == 1 and e.step > 0 for e in seen)
    with pytest.raises(InputError):
        list(model.stream("w4", search=Beam(2)))
    with pytest.raises(InputError):
        model.generate(["w4"], search=Beam(2), callback=print)
