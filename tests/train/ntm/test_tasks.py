"""The NTM tasks as token sequences: formats, curriculum and the bit-error measure."""

import numpy as np
import pytest

from edge_s2s.train.ntm.tasks import (
    DELIM,
    ITEM,
    PATTERN0,
    QUERY,
    bit_errors,
    copy_example,
    curriculum_size,
    make_example,
    recall_example,
    task_vocab,
)

V = task_vocab()


def test_vocab_layout():
    assert len(V) == 4 + 256 + 3
    assert V.tokens[PATTERN0] == "00" and V.tokens[PATTERN0 + 255] == "ff"
    assert [V.index[t] for t in (DELIM, ITEM, QUERY)] == [260, 261, 262]


def test_copy_example():
    ex = copy_example(np.random.default_rng(0), 5, V)
    assert len(ex.prefix) == 6 and ex.prefix[-1] == V.index[DELIM]
    assert ex.target == ex.prefix[:5] + [V.eos_id]
    assert all(PATTERN0 <= i < PATTERN0 + 256 for i in ex.prefix[:5])


def test_recall_example_answer_is_the_item_after_the_query():
    rng = np.random.default_rng(3)
    for _ in range(20):
        ex = recall_example(rng, 4, V)
        p = ex.prefix
        assert p.count(V.index[ITEM]) == 4 and p[-1] == V.index[DELIM]
        items = [p[k + 1 : k + 4] for k in range(len(p)) if p[k] == V.index[ITEM]]
        q = p[p.index(V.index[QUERY]) + 1 : -1]
        assert q in items[:-1]
        assert ex.target == items[items.index(q) + 1] + [V.eos_id]


def test_errors_and_dispatch():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="copy length"):
        copy_example(rng, 0, V)
    with pytest.raises(ValueError, match="at least 2 items"):
        recall_example(rng, 1, V)
    with pytest.raises(ValueError, match="unknown NTM task"):
        make_example("sort", rng, 3, V)
    assert make_example("copy", rng, 3, V).target[-1] == V.eos_id


def test_curriculum_grows_and_keeps_short_sizes():
    rng = np.random.default_rng(0)
    early = [curriculum_size(0, 1, 20, 100, rng) for _ in range(50)]
    late = [curriculum_size(10_000, 1, 20, 100, rng) for _ in range(500)]
    assert set(early) == {1}
    assert max(late) == 20 and min(late) == 1


def test_bit_errors_hand_worked():
    t = [PATTERN0 + 0b1010_1010, PATTERN0 + 0xFF, V.eos_id]
    assert bit_errors(t, t) == 0
    assert bit_errors([PATTERN0 + 0b1010_1011, PATTERN0 + 0xFF, V.eos_id], t) == 1
    assert bit_errors([PATTERN0 + 0b0101_0101, PATTERN0 + 0x00], t) == 16  # every bit wrong, end token ignored
    assert bit_errors([PATTERN0 + 0b1010_1010], t) == 8  # a missing pattern costs 8 bits
    assert bit_errors(t[:2] + [PATTERN0, V.eos_id], t) == 8  # an extra one too
    assert bit_errors([V.index[DELIM], PATTERN0 + 0xFF], t) == 8  # a marker where a pattern belongs
