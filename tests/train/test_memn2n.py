"""End-To-End Memory Networks (train/memn2n.py): position and temporal encodings, weight tying,
masking, linear start, ONNX export, training on a made-up task in the bAbI format, and bAbI
task 1 itself when ../shared/data/babi is there."""

import math

import numpy as np
import pytest
import torch

from edge_s2s.train.babi import DEFAULT_ROOT, TASKS, answer_vocab, build_vocab, load_task, parse_babi
from edge_s2s.train.memn2n import (
    MemN2N,
    MemN2NConfig,
    answer_word_ids,
    encode_examples,
    evaluate,
    random_time_index,
    run_table,
    slot_index,
    time_index,
    train_memn2n,
    word_weights,
)

HAVE_DATA = (DEFAULT_ROOT / "en").is_dir()
needs_data = pytest.mark.skipif(not HAVE_DATA,
                                reason=f"bAbI data not at {DEFAULT_ROOT} (see ../shared/data/babi/README.md)")

PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "hallway", "bathroom", "bedroom"]


def toy_babi(n_questions: int, seed: int) -> str:
    """Made-up stories in the bAbI format: people move around; "Where is X?" asks for X's
    LAST place, so the answer needs the most recent of X's sentences (temporal order)."""
    rng = np.random.default_rng(seed)
    lines, asked = [], 0
    while asked < n_questions:
        where, line_id = {}, 0
        for _ in range(int(rng.integers(1, 4))):  # 1-3 questions per story
            for _ in range(int(rng.integers(2, 5))):
                who, place = PEOPLE[rng.integers(len(PEOPLE))], PLACES[rng.integers(len(PLACES))]
                line_id += 1
                lines.append(f"{line_id} {who.capitalize()} went to the {place}.")
                where[who] = (place, line_id)
            who = sorted(where)[rng.integers(len(where))]
            line_id += 1
            lines.append(f"{line_id} Where is {who.capitalize()}?\t{where[who][0]}\t{where[who][1]}")
            asked += 1
            if asked == n_questions:
                break
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def toy():
    train = parse_babi(toy_babi(200, seed=0).split("\n"), task=1, source="toy-train")
    test = parse_babi(toy_babi(100, seed=1).split("\n"), task=1, source="toy-test")
    return train, test


def _model(toy, seed=0, **kw):
    train, _ = toy
    torch.manual_seed(seed)
    return MemN2N(MemN2NConfig(**kw), build_vocab(train), answer_vocab(train)).eval()


def _batch(toy, n=6):
    train, _ = toy
    model_vocab = build_vocab(train)
    data = encode_examples(train[:n], model_vocab, answer_vocab(train))
    return data["story"], data["question"], data["n_sentences"]


# --- encodings ---------------------------------------------------------------------------


def test_position_encoding_hand_worked_j3_d2_and_padding_masked():
    # l_kj = (1 - j/J) - (k/d)(1 - 2j/J), d = 2, J = 3 (the 4th word is padding):
    #   j=1: 1-1/3 = 2/3, 1-2/3 = 1/3:   k=1: 2/3 - (1/2)(1/3) = 1/2   k=2: 2/3 - 1/3 = 1/3
    #   j=2: 1-2/3 = 1/3, 1-4/3 = -1/3:  k=1: 1/3 + 1/6 = 1/2          k=2: 1/3 + 1/3 = 2/3
    #   j=3: 1-3/3 = 0,   1-6/3 = -1:    k=1: 0 + 1/2 = 1/2            k=2: 0 + 1 = 1
    # and J = 2 (its own length, not the padded width 4):
    #   j=1: 1/2, 0:  k=1: 1/2, k=2: 1/2        j=2: 0, -1:  k=1: 1/2, k=2: 1
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    expected = torch.tensor([[[1 / 2, 1 / 3], [1 / 2, 2 / 3], [1 / 2, 1.0], [0.0, 0.0]],
                             [[1 / 2, 1 / 2], [1 / 2, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(word_weights(ids, 2), expected, atol=1e-6)
    # the padded width does not matter, nor does it for bag of words (1 on words, 0 on padding)
    assert torch.allclose(word_weights(ids[:, :3], 2), expected[:, :3], atol=1e-6)
    bow = word_weights(ids, 2, position=False)
    assert torch.equal(bow[..., 0], (ids != 0).float()) and torch.equal(bow[..., 1], (ids != 0).float())
    assert torch.equal(word_weights(torch.zeros(1, 3, dtype=torch.long), 4), torch.zeros(1, 3, 4))  # no 0/0


def test_temporal_index_counts_from_the_most_recent_sentence():
    story = torch.zeros(3, 5, 2, dtype=torch.long)
    n = torch.tensor([3, 1, 5])
    t = time_index(n, slot_index(story))
    # rows are oldest first: the last real row (n-1) is the most recent, index 0
    assert t.tolist() == [[2, 1, 0, 0, 0], [0, 0, 0, 0, 0], [4, 3, 2, 1, 0]]
    rng = np.random.default_rng(0)
    assert random_time_index(n.numpy(), 5, 0.0, rng).tolist() == t.tolist()  # no noise: the plain indices


def test_random_noise_inserts_up_to_ten_percent_empty_memories():
    rng = np.random.default_rng(0)
    n = np.array([20, 20, 9, 1] * 250)
    t = random_time_index(n, 20, 0.1, rng)
    shifted = 0
    for row, k in zip(t, n):
        real = row[:k]
        assert np.all(np.diff(real) < 0), "order kept: older sentences have larger indices"
        assert real[-1] >= 0 and real[0] <= k - 1 + math.ceil(0.1 * k), "at most ceil(10%) blanks"
        assert np.all(row[k:] == 0)
        shifted += int(real[0] > k - 1)
    assert 200 < shifted < 1000  # some stories got blanks, some none (nblank ~ U{0..ceil(0.1 n)})
    capped = random_time_index(np.array([50]), 50, 0.5, np.random.default_rng(1), memory_size=50)
    assert capped.max() == 49


def test_temporal_encoding_points_at_the_most_recent_sentence(toy):
    model = _model(toy, tying="layerwise", hops=1, dim=4)
    with torch.no_grad():
        model.A(1).zero_()  # memories are their time embedding only
        model.TA(1).zero_()
        model.TA(1)[0, 0] = 5.0  # time index 0 (most recent) matches coordinate 0
        model.B.zero_()
        model.B[:, 0] = 1.0  # u = (#words, 0, 0, 0)
    story, question, n = _batch(toy)
    _, att = model(story, question, n)
    assert torch.equal(att[:, 0].argmax(-1), n - 1)
    assert torch.all(att[torch.arange(len(n)), 0, n - 1] > 0.9)


# --- tying -------------------------------------------------------------------------------


def test_adjacent_tying_shares_the_parameters(toy):
    model = _model(toy, hops=3, tying="adjacent")
    for k in (1, 2):
        assert model.A(k + 1) is model.C(k) and model.A(k + 1).data_ptr() == model.C(k).data_ptr()
        assert model.TA(k + 1) is model.TC(k)
    assert model.B is model.A(1) and model.A(1) is not model.C(1)
    assert model.H is None and not any("H" in name for name, _ in model.named_parameters())
    assert len(list(model.parameters())) == 4 + 4  # E_0..E_3 and T_0..T_3, nothing else
    # W^T = C^K: W's rows are C^3's rows of the answer words, and its gradient reaches C^3
    ids = answer_word_ids(model.answers, model.vocab)
    assert ids == [model.vocab.index[a] for a in model.answers]
    assert torch.equal(model.W, model.C(3)[ids])
    model.W.sum().backward()
    assert model.C(3).grad[ids].abs().sum() > 0


def test_layerwise_tying_shares_the_parameters_and_has_h(toy):
    model = _model(toy, hops=3, tying="layerwise")
    assert model.A(1) is model.A(2) is model.A(3) and model.C(1) is model.C(2) is model.C(3)
    assert model.A(1).data_ptr() == model.A(3).data_ptr()
    assert model.TA(1) is model.TA(3) and model.TC(1) is model.TC(2)
    assert model.B is not model.A(1) and model.W is not model.C(3)
    assert isinstance(model.H, torch.nn.Linear) and any(p is model.H.weight for p in model.parameters())
    story, question, n = _batch(toy)
    with torch.no_grad():
        before = model(story, question, n)[0]
        model.H.weight.mul_(3.0)
        assert not torch.allclose(model(story, question, n)[0], before, atol=1e-4)  # u' = H u + o uses H


def test_list_answers_get_rows_of_their_own():
    vocab = build_vocab(parse_babi(["1 Ben took the lamp.", "2 What has Ben?\tlamp,kite\t1"], task=8))
    ids = answer_word_ids(["kite", "lamp", "lamp,kite"], vocab)
    assert ids[1] == vocab.index["lamp"] and ids[0] == vocab.index["kite"]
    assert ids[2] == len(vocab)  # "lamp,kite" is one class: one extra row after the vocabulary


# --- masking, normalisation, linear start -------------------------------------------------


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_attention_sums_to_one_over_real_sentences_and_padding_is_ignored(toy, tying):
    model = _model(toy, tying=tying)
    story, question, n = _batch(toy)
    assert len(set(n.tolist())) > 1  # different story lengths in one batch
    logp, att = model(story, question, n)
    assert att.shape == (story.shape[0], 3, story.shape[1])
    real = slot_index(story) < n.unsqueeze(1)
    assert torch.allclose(att.sum(-1), torch.ones(story.shape[0], 3), atol=1e-5)
    assert torch.all(att.masked_select(~real.unsqueeze(1).expand_as(att)) == 0)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(len(n)), atol=1e-5)
    # words in the padding rows change nothing (they are masked, not just zero ids)
    noisy = story.clone()
    noisy[~real] = torch.randint(4, len(model.vocab), (int((~real).sum()), story.shape[2]))
    logp2, att2 = model(noisy, question, n)
    assert torch.allclose(logp2, logp, atol=1e-6) and torch.allclose(att2, att, atol=1e-6)


def test_linear_start_removes_the_softmax_and_can_be_switched_off(toy):
    model = _model(toy, hops=2)
    story, question, n = _batch(toy)
    real = slot_index(story) < n.unsqueeze(1)
    soft_logp, soft = model(story, question, n)
    model.linear_start = True
    lin_logp, lin = model(story, question, n)
    assert not torch.allclose(lin.sum(-1), torch.ones_like(lin.sum(-1)), atol=1e-2)  # raw scores
    assert torch.all(lin[:, 0].masked_select(~real) == 0)  # padding still 0
    # hop 1 sees the same u either way: its softmax scores are softmax(linear scores)
    again = torch.softmax(lin[:, 0].masked_fill(~real, -1e9), -1) * real
    assert torch.allclose(again, soft[:, 0], atol=1e-6)
    assert torch.allclose(lin_logp.exp().sum(-1), torch.ones(len(n)), atol=1e-5)  # the answer softmax stays
    model.linear_start = False
    back_logp, back = model(story, question, n)
    assert torch.equal(back, soft) and torch.equal(back_logp, soft_logp)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="hops"):
        MemN2NConfig(hops=4)
    with pytest.raises(ValueError, match="tying"):
        MemN2NConfig(tying="rnn")
    with pytest.raises(ValueError, match="temporal"):
        MemN2NConfig(temporal=False)  # RN (default 0.1) needs TE
    MemN2NConfig(temporal=False, random_noise=0.0, encoding="bow")


# --- training ----------------------------------------------------------------------------


def test_training_reaches_low_error_on_a_toy_task(toy):
    train, test = toy
    # a higher LS rate than the paper's 0.005: 200 examples are 7 updates an epoch
    cfg = MemN2NConfig(hops=1, epochs=60, ls_lr=0.01, ls_max_epochs=10, lr_decay_every=40)
    model, history = train_memn2n(train, None, cfg, seed=3)
    assert history[0]["phase"] == "linear" and history[-1]["phase"] == "softmax" and not model.linear_start
    n_linear = sum(h["phase"] == "linear" for h in history)
    assert 1 <= n_linear <= 10 and len(history) == n_linear + 60
    assert history[n_linear]["lr"] == 0.01  # LS training keeps ls_lr as the softmax phase's first rate
    assert history[-1]["lr"] == pytest.approx(0.01 / 2)  # halved once, 40 epochs after the softmax came back
    assert history[-1]["train_error"] < 0.05
    assert evaluate(model, test) < 0.1
    unseen = parse_babi(["1 Mary went to the attic.", "2 Where is Mary?\tattic\t1"], task=1)
    assert evaluate(model, unseen) == 1.0  # an answer training never saw is always wrong


def test_training_is_deterministic_for_a_seed(toy):
    train, _ = toy
    cfg = MemN2NConfig(hops=1, epochs=2, ls_max_epochs=1)
    (m1, h1), (m2, h2) = train_memn2n(train, None, cfg, seed=5), train_memn2n(train, None, cfg, seed=5)
    assert h1 == h2 and all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    _, h3 = train_memn2n(train, None, cfg, seed=6)
    assert h3 != h1


def test_run_table_on_a_made_up_root(tmp_path, toy):
    folder = tmp_path / "en"
    folder.mkdir()
    (folder / f"{TASKS[1]}_train.txt").write_text(toy_babi(60, seed=4))
    (folder / f"{TASKS[1]}_test.txt").write_text(toy_babi(20, seed=5))
    table = run_table(tmp_path, [1], [1, 2], MemN2NConfig(epochs=1, linear_start=False), seed=1)
    assert set(table) == {1} and set(table[1]) == {1, 2}
    assert all(0.0 <= e <= 1.0 for e in table[1].values())


# --- export ------------------------------------------------------------------------------


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_onnx_export_with_dynamic_batch_and_memory(tmp_path, toy, tying):
    ort = pytest.importorskip("onnxruntime")
    model = _model(toy, tying=tying)
    train, _ = toy
    data = encode_examples(train[:40], model.vocab, model.answers)
    args = (data["story"][:3, :4], data["question"][:3], data["n_sentences"][:3].clamp(max=4))
    path = tmp_path / "memn2n.onnx"
    torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17,
                      input_names=["story", "question", "n_sentences"], output_names=["logprobs", "attention"],
                      dynamic_axes={"story": {0: "B", 1: "M", 2: "J"}, "question": {0: "B", 1: "Jq"},
                                    "n_sentences": {0: "B"}, "logprobs": {0: "B"}, "attention": {0: "B", 2: "M"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    story, question, n = data["story"][5:16], data["question"][5:16], data["n_sentences"][5:16]
    assert story.shape[1] != 4
    logp, att = sess.run(None, {"story": story.numpy(), "question": question.numpy(), "n_sentences": n.numpy()})
    with torch.no_grad():
        t_logp, t_att = model(story, question, n)
    assert logp.shape == (11, len(model.answers)) and att.shape == (11, 3, story.shape[1])
    assert np.abs(logp - t_logp.numpy()).max() < 1e-4 and np.abs(att - t_att.numpy()).max() < 1e-4


# --- real data ---------------------------------------------------------------------------


@needs_data
def test_babi_task1_one_hop_learns():
    train = load_task(DEFAULT_ROOT, 1, "train")
    test = load_task(DEFAULT_ROOT, 1, "test")
    model, history = train_memn2n(train, None, MemN2NConfig(hops=1, epochs=20, linear_start=False), seed=1)
    assert len(history) == 20
    error = evaluate(model, test)
    print(f"bAbI task 1, 1 hop, 20 epochs: test error {error:.3f}")
    assert error < 0.5
