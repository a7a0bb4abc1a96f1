"""MemoryNetwork (runtime/tasks/memory_network.py) on a real 2-hop MemN2N trained on generated bAbI
task 1 stories (tests/conftest.py memn2n_run / memn2n_bundle): answers equal PyTorch's from
raw text, batching changes nothing, long stories keep their most recent sentences, unknown
words and bad stories are reported."""

import numpy as np
import pytest
import torch
from memory_stories import TASK1_FILE, long_story, raw_questions
from paths import REPO

from edge_s2s.runtime.errors import BundleError, InputError
from edge_s2s.runtime.tasks.memory_network import MemoryNetwork
from edge_s2s.runtime.tasks.story import parse_story

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def net(memn2n_bundle):
    return MemoryNetwork.load(memn2n_bundle)


@pytest.fixture(scope="module")
def test_text(babi_root):
    return (babi_root / "en" / TASK1_FILE.format(split="test")).read_text(encoding="utf-8")


def test_answers_from_raw_text_match_pytorch_on_training_encoding(net, memn2n_run, test_text):
    """The runtime reads the pasted bAbI lines (numbers, capitals, full stops); PyTorch reads
    train/memn2n/babi.py's parse of the same file: same words, same answers, log-probs within 1e-4."""
    from edge_s2s.train.memn2n.babi import parse_babi
    from edge_s2s.train.memn2n.loop import load_memn2n_run
    from edge_s2s.train.memn2n.model import encode_examples

    model, _, _ = load_memn2n_run(memn2n_run)
    examples = parse_babi(test_text.split("\n"), 1, "test")
    raw = raw_questions(test_text)
    assert len(raw) == len(examples) == 200
    data = encode_examples(examples, model.vocab, model.answers, model.cfg.memory_size)
    with torch.no_grad():
        t_lp, t_att = model(data["story"], data["question"], data["n_sentences"])
    got = net.answer_many([s for s, _, _ in raw], [q for _, q, _ in raw])
    o_lp = np.stack([a.log_probs for a in got])
    assert np.abs(o_lp - t_lp.numpy()).max() < 1e-4
    assert [a.text for a in got] == [model.answers[i] for i in t_lp.argmax(-1).tolist()]
    for a, n, att in zip(got[:20], data["n_sentences"].tolist(), t_att.numpy()):
        assert np.abs(a.attention - att[:, :n]).max() < 1e-4
    # the network really learned the task: chance is 5/6 wrong
    error = np.mean([a.text != ans for a, (_, _, ans) in zip(got, raw)])
    assert error < 0.15, error


def test_batching_is_identical_to_one_by_one(net, test_text):
    raw = raw_questions(test_text)[:13]  # stories of 2 to 10 sentences, padded together
    batched = net.answer_many([s for s, _, _ in raw], [q for _, q, _ in raw], batch_size=5)
    for (story, question, _), b in zip(raw, batched):
        one = net.answer(story, question)
        assert one.text == b.text and one.sentences == b.sentences
        np.testing.assert_allclose(one.log_probs, b.log_probs, atol=1e-5)
        np.testing.assert_allclose(one.attention, b.attention, atol=1e-5)


def test_long_story_keeps_the_most_recent_sentences(net):
    M = net.memory_size
    story, _ = long_story(M + 15, seed=3)
    recent = story[-M:]
    last_place = {}
    for s in recent:
        last_place[s.split()[0]] = s.rstrip(".").split()[-1]
    long, short = [], []
    for who in sorted(last_place):
        long.append(net.answer(story, f"Where is {who}?"))
        short.append(net.answer(recent, f"Where is {who}?"))
    for a, b in zip(long, short):
        assert a.dropped == 15 and b.dropped == 0
        assert a.sentences == recent and a.attention.shape == (net.hops, M)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-6)
        assert any("15 oldest were dropped" in n for n in a.notes) and not b.notes
    right = sum(a.text == last_place[who] for a, who in zip(long, sorted(last_place)))
    assert right >= len(long) - 1, [(a.question, a.text) for a in long]


def test_unknown_words_become_unk_and_are_named_once(net):
    story = ["Mary moved to the bathroom.", "Bob went to the attic.", "Bob went to the attic."]
    a = net.answer(story, "Where is Bob?")
    assert a.unknown_words == ["bob", "attic"]
    assert len(a.notes) == 1 and "'bob', 'attic'" in a.notes[0] and "<unk>" in a.notes[0]
    assert a.text in net.answers
    mem = net.memory(story)
    assert mem.ids[1][0] == net.vocab.unk_id and mem.ids[1][-1] == net.vocab.unk_id
    assert net.answer(story[:1], "Where is Mary?").unknown_words == []


def test_attention_shapes_probabilities_and_top(net):
    story = ["Mary moved to the bathroom.", "John went to the hallway.", "Mary travelled to the office."]
    a = net.answer(story, "Where is Mary?")
    assert a.attention.shape == (net.hops, 3) and a.hops == net.hops == 2
    # a softmax over the real sentences and the memory's empty slots (score 0, as the authors'
    # code): the real sentences get a share of at most 1, and here, the answer being there, most of it
    total = a.attention.sum(1)
    assert np.all(total <= 1.0 + 1e-5) and np.all(a.attention >= 0) and total[-1] > 0.5
    assert a.log_probs.shape == (len(net.answers),)
    assert abs(np.exp(a.log_probs).sum() - 1.0) < 1e-5
    assert a.probability == pytest.approx(float(np.exp(a.log_probs.max())))
    top = a.top(net.hops, k=5)
    assert len(top) == 3 and [w for _, _, w in top] == sorted((w for _, _, w in top), reverse=True)
    assert a.text == "office" and top[0][1] == "Mary travelled to the office."
    with pytest.raises(InputError, match="hop 3 does not exist"):
        a.top(3)


def test_story_forms_read_the_same(net):
    lines = ["Mary moved to the bathroom.", "John went to the hallway.", "Mary travelled to the office."]
    forms = ["\n".join(lines), lines, "\n".join(f"{i} {s}" for i, s in enumerate(lines, 1)), " ".join(lines),
             "\n\n  " + "\n".join(lines) + "\n"]
    answers = [net.answer(f, "where is MARY") for f in forms]
    for a in answers:
        assert a.sentences == lines
        np.testing.assert_allclose(a.log_probs, answers[0].log_probs, atol=1e-6)


@pytest.mark.parametrize("story, message", [
    ("", r"the story is empty"),
    ("  \n\n", r"the story is empty"),
    (["", " "], r"the story is empty"),
    ("1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1", r"story:2: 'Where is Mary\?' is a question"),
    ("Mary moved to the bathroom.\nWhere is Mary?", r"story:2: .* is a question, not a statement"),
    ("Mary moved to the bathroom.\n!!!", r"story:2: '!!!' has no words"),
    ("1 Mary moved to the bathroom.\nJohn went to the hallway.", r"story:2: .* has no line number"),
    ("1 Mary moved to the bathroom.\n1 John went to the hallway.", r"story:2: the numbering restarts at 1"),
    (["Mary moved to the bathroom.", 3], r"story sentence 2 is int"),
])
def test_bad_story_is_one_clear_error(net, story, message):
    with pytest.raises(InputError, match=message):
        net.answer(story, "Where is Mary?")


@pytest.mark.parametrize("question", ["", "   ", "?", "...?"])
def test_empty_question_is_an_error(net, question):
    with pytest.raises(InputError, match="the question is empty"):
        net.answer("Mary moved to the bathroom.", question)
    with pytest.raises(InputError, match="question 2 is empty"):
        net.answer_many(["Mary moved to the bathroom."] * 2, ["Where is Mary?", question])


def test_answer_many_needs_one_story_per_question(net):
    with pytest.raises(InputError, match="1 stories for 2 questions"):
        net.answer_many(["Mary moved to the bathroom."], ["Where is Mary?", "Where is John?"])


def test_parse_story_splits_sentences_and_keeps_text():
    got = parse_story("1 Mary moved to the bathroom. John went to the hallway!\n2 Sandra left.")
    assert [s.text for s in got] == ["Mary moved to the bathroom.", "John went to the hallway!", "Sandra left."]
    assert got[0].words == ["mary", "moved", "to", "the", "bathroom"]


def test_other_bundles_are_refused_both_ways(memn2n_bundle, tmp_path):

    from edge_s2s.runtime.tasks.loading import bundle_task, load_any
    from edge_s2s.runtime.tasks.seq2seq import Seq2Seq

    captioner = REPO / "models" / "captioner"
    with pytest.raises(BundleError, match="'caption' bundle, not a memory network"):
        MemoryNetwork.load(captioner)
    assert bundle_task(memn2n_bundle) == "answer"
    for load in (Seq2Seq.load, load_any):
        with pytest.raises(BundleError, match=r"memory network \(task 'answer'\).*edge-s2s answer"):
            load(memn2n_bundle)


def test_changed_graph_is_refused(memn2n_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(memn2n_bundle, copy)
    graph = copy / "memn2n.onnx"
    graph.write_bytes(graph.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(BundleError, match="memn2n.onnx does not match its sha256"):
        MemoryNetwork.load(copy)
    (copy / "answers.txt").unlink()
    with pytest.raises(BundleError, match="missing answers.txt"):
        MemoryNetwork.load(copy)
