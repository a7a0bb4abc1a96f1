"""End-To-End Memory Networks (train/memn2n/model.py): position and temporal encodings, weight tying,
masking, linear start, ONNX export, training on a made-up task in the bAbI format, and bAbI
task 1 itself when ../shared/data/babi is there."""

import math

import numpy as np
import pytest
import torch
from paths import REPO

from edge_s2s.train.memn2n.babi import (
    DEFAULT_ROOT,
    TASKS,
    BabiError,
    answer_vocab,
    build_vocab,
    load_task,
    parse_babi,
)
from edge_s2s.train.memn2n.experiments import JOINT_CONFIG, run_table, train_joint
from edge_s2s.train.memn2n.loop import train_memn2n
from edge_s2s.train.memn2n.model import (
    LEGACY,
    MemN2N,
    MemN2NConfig,
    _take,
    answer_word_ids,
    encode_examples,
    evaluate,
    random_time_index,
    slot_index,
    time_index,
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
    # the paper's printed formula, style "paper": l_kj = (1 - j/J) - (k/d)(1 - 2j/J), d = 2, J = 3
    # (the 4th word is padding):
    #   j=1: 1-1/3 = 2/3, 1-2/3 = 1/3:   k=1: 2/3 - (1/2)(1/3) = 1/2   k=2: 2/3 - 1/3 = 1/3
    #   j=2: 1-2/3 = 1/3, 1-4/3 = -1/3:  k=1: 1/3 + 1/6 = 1/2          k=2: 1/3 + 1/3 = 2/3
    #   j=3: 1-3/3 = 0,   1-6/3 = -1:    k=1: 0 + 1/2 = 1/2            k=2: 0 + 1 = 1
    # and J = 2 (its own length, not the padded width 4):
    #   j=1: 1/2, 0:  k=1: 1/2, k=2: 1/2        j=2: 0, -1:  k=1: 1/2, k=2: 1
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    expected = torch.tensor([[[1 / 2, 1 / 3], [1 / 2, 2 / 3], [1 / 2, 1.0], [0.0, 0.0]],
                             [[1 / 2, 1 / 2], [1 / 2, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(word_weights(ids, 2, style="paper"), expected, atol=1e-6)
    # the authors' code (build_model.m), the default: l_kj = 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J)
    #   J = 3: 1 + (k - 3/2)(j - 2) * 4/6:  j=1: 4/3, 2/3   j=2: 1, 1   j=3: 2/3, 4/3
    #   J = 2: 1 + (k - 3/2)(j - 3/2):      j=1: 5/4, 3/4   j=2: 3/4, 5/4
    authors = torch.tensor([[[4 / 3, 2 / 3], [1.0, 1.0], [2 / 3, 4 / 3], [0.0, 0.0]],
                            [[5 / 4, 3 / 4], [3 / 4, 5 / 4], [0.0, 0.0], [0.0, 0.0]]])
    assert torch.allclose(word_weights(ids, 2), authors, atol=1e-6)
    # same shape, half the size: the printed formula is 1/2 + 2(k/d - 1/2)(j/J - 1/2), the code's
    # 1 + 4(k/d - (d+1)/2d)(j/J - (J+1)/2J): mean over k 1 like bag of words, the paper's 1/2
    wide = torch.arange(4, 12).unsqueeze(0)
    assert torch.allclose(word_weights(wide, 20).mean(-1), torch.ones(1, 8), atol=1e-6)
    assert abs(float(word_weights(wide, 20, style="paper").mean()) - 0.5) < 0.01
    # the padded width does not matter, nor does it for bag of words (1 on words, 0 on padding)
    assert torch.allclose(word_weights(ids[:, :3], 2), authors[:, :3], atol=1e-6)
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
    model = _model(toy, tying=tying, empty_memories=False)
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


def test_empty_memories_join_the_softmax_with_score_zero(toy):
    """As the authors' nil-padded memory: memory_size - n empty slots of score 0 share the softmax."""
    model = _model(toy, hops=1, memory_size=6)  # empty_memories is the default
    story, question, n = _batch(toy, n=40)
    story, n = story[:, :6], n.clamp(max=6)
    assert (n == 6).any() and (n < 6).any()  # full memories and ones with empty slots
    real = slot_index(story) < n.unsqueeze(1)
    _, att = model(story, question, n)
    model.linear_start = True  # hop 1 then returns the raw scores u . m_i
    scores = model(story, question, n)[1][:, 0]
    model.linear_start = False
    e = torch.exp(scores) * real
    expected = e / (e.sum(-1, keepdim=True) + (6 - n).unsqueeze(1))  # each empty slot adds exp(0) = 1
    assert torch.allclose(att[:, 0], expected, atol=1e-5)
    sums = att[:, 0].sum(-1)
    assert torch.allclose(sums[n == 6], torch.ones(int((n == 6).sum())), atol=1e-5)  # a full memory: no sink
    assert torch.all(sums[n < 6] < 0.999)
    assert torch.all(att[:, 0].masked_select(~real) == 0)
    off = _model(toy, hops=1, memory_size=6, empty_memories=False)
    off.load_state_dict(model.state_dict())  # same parameters, names and shapes either way
    assert torch.allclose(off(story, question, n)[1].sum(-1), torch.ones(len(n), 1), atol=1e-5)


def test_batches_are_cut_to_their_longest_story_without_changing_outputs(toy):
    train, _ = toy
    model = _model(toy)
    data = encode_examples(train, model.vocab, model.answers)
    idx = torch.arange(3)
    story, question, n = _take(data, idx)
    assert story.shape[1] == int(n.max()) < data["story"].shape[1]
    assert story.shape[2] <= data["story"].shape[2] and question.shape[1] <= data["question"].shape[1]
    with torch.no_grad():
        full_logp, full_att = model(data["story"][idx], data["question"][idx], n)
        logp, att = model(story, question, n)
    assert torch.allclose(logp, full_logp, atol=1e-6)
    assert torch.allclose(att, full_att[:, :, : story.shape[1]], atol=1e-6)
    assert torch.all(full_att[:, :, story.shape[1]:] == 0)


def test_linear_start_removes_the_softmax_and_can_be_switched_off(toy):
    model = _model(toy, hops=2)
    story, question, n = _batch(toy)
    real = slot_index(story) < n.unsqueeze(1)
    soft_logp, soft = model(story, question, n)
    model.linear_start = True
    lin_logp, lin = model(story, question, n)
    assert not torch.allclose(lin.sum(-1), torch.ones_like(lin.sum(-1)), atol=1e-2)  # raw scores
    assert torch.all(lin[:, 0].masked_select(~real) == 0)  # padding still 0
    # hop 1 sees the same u either way: its softmax scores are softmax(linear scores), the
    # memory_size - n empty memories each adding exp(0) to the denominator
    e = torch.exp(lin[:, 0]) * real
    again = e / (e.sum(-1, keepdim=True) + (model.cfg.memory_size - n).unsqueeze(1))
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
    with pytest.raises(ValueError, match="pe_style"):
        MemN2NConfig(pe_style="sinusoid")
    with pytest.raises(ValueError, match="ls_patience"):
        MemN2NConfig(ls_patience=-1)
    MemN2NConfig(temporal=False, random_noise=0.0, encoding="bow")


def test_config_from_dict_keeps_what_old_runs_trained_with():
    # a config saved before pe_style / empty_memories / the fixed LS length existed loads as it trained
    old = {k: v for k, v in MemN2NConfig(hops=2).to_dict().items() if k not in LEGACY}
    cfg = MemN2NConfig.from_dict(old)
    assert (cfg.pe_style, cfg.empty_memories, cfg.ls_patience, cfg.hops) == ("paper", False, 3, 2)
    new = MemN2NConfig(hops=1)
    assert MemN2NConfig.from_dict(new.to_dict()) == new
    assert (new.pe_style, new.empty_memories, new.ls_patience) == ("authors", True, 0)


# --- training ----------------------------------------------------------------------------


def test_training_reaches_low_error_on_a_toy_task(toy):
    train, test = toy
    # a higher LS rate than the paper's 0.005: 200 examples are 7 updates an epoch
    cfg = MemN2NConfig(hops=1, epochs=60, ls_lr=0.01, ls_max_epochs=10, lr_decay_every=40)
    model, history = train_memn2n(train, None, cfg, seed=3)
    assert history[0]["phase"] == "linear" and history[-1]["phase"] == "softmax" and not model.linear_start
    n_linear = sum(h["phase"] == "linear" for h in history)
    assert n_linear == 10 and len(history) == n_linear + 60  # a fixed LS length, as the authors' code
    assert history[n_linear]["lr"] == 0.01  # LS training keeps ls_lr as the softmax phase's first rate
    assert history[-1]["lr"] == pytest.approx(0.01 / 2)  # halved once, 40 epochs after the softmax came back
    assert history[-1]["train_error"] < 0.05
    assert evaluate(model, test) < 0.1
    unseen = parse_babi(["1 Mary went to the attic.", "2 Where is Mary?\tattic\t1"], task=1)
    assert evaluate(model, unseen) == 1.0  # an answer training never saw is always wrong


def test_linear_start_can_end_on_the_validation_loss(toy):
    train, _ = toy
    # the paper's rule: patience 1 ends LS at the first epoch without a new validation low
    cfg = MemN2NConfig(hops=1, epochs=1, ls_max_epochs=30, ls_patience=1, ls_lr=0.05)
    _, history = train_memn2n(train, None, cfg, seed=3)
    linear = [h for h in history if h["phase"] == "linear"]
    assert len(linear) < 30 and len(history) == len(linear) + 1
    assert linear[-1]["val_loss"] >= min(h["val_loss"] for h in linear[:-1])


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


def test_joint_training_shares_one_network_across_tasks_and_scores_each(tmp_path):
    folder = tmp_path / "en"
    folder.mkdir()
    moved = {"garden": "cellar", "office": "attic"}  # task 2: the same stories with two other places

    def other(text: str) -> str:
        for a, b in moved.items():
            text = text.replace(a, b)
        return text

    (folder / f"{TASKS[1]}_train.txt").write_text(toy_babi(150, seed=4))
    (folder / f"{TASKS[1]}_test.txt").write_text(toy_babi(60, seed=5))
    (folder / f"{TASKS[2]}_train.txt").write_text(other(toy_babi(150, seed=6)))
    (folder / f"{TASKS[2]}_test.txt").write_text(other(toy_babi(60, seed=7)))
    assert (JOINT_CONFIG.dim, JOINT_CONFIG.epochs, JOINT_CONFIG.lr_decay_every, JOINT_CONFIG.ls_max_epochs) == \
        (50, 60, 15, 30)  # the authors' config_babi_joint.m
    lines = []
    cfg = MemN2NConfig(hops=1, epochs=40, ls_max_epochs=10, ls_lr=0.01)
    model, score = train_joint(tmp_path, [1, 2], cfg, seed=2, progress=lines.append)
    assert set(score.errors) == {1, 2} and len(lines) == 1 and "joint 2 tasks" in lines[0]
    assert {"garden", "cellar", "attic", "office"} <= set(model.answers)  # one answer softmax over both tasks
    assert {"cellar", "garden"} <= set(model.vocab.tokens)
    assert score.mean_error == pytest.approx(sum(score.errors.values()) / 2)
    assert all(e < 0.5 for e in score.errors.values()), score.errors  # chance is about 0.85
    assert score.run.epochs == 50 and score.run.ls_epochs == 10
    with pytest.raises(BabiError, match="missing"):
        train_joint(tmp_path, [1, 3], cfg)  # task 3's files are absent: found before any training


# --- export ------------------------------------------------------------------------------


@pytest.mark.parametrize("tying,memory", [("adjacent", 50), ("layerwise", 50), ("adjacent", 5)])
def test_onnx_export_with_dynamic_batch_and_memory(tmp_path, toy, tying, memory):
    ort = pytest.importorskip("onnxruntime")
    model = _model(toy, tying=tying, memory_size=memory)
    train, _ = toy
    data = encode_examples(train[:40], model.vocab, model.answers, memory)
    if memory == 5:
        assert (data["n_sentences"][5:16] == 5).any()  # some stories fill the memory: no empty slot
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


@needs_data
def test_babi_task15_deduction_learns_with_the_authors_position_encoding():
    """Task 15 needs two hops chained through a word's position-weighted embedding; with the
    printed PE formula (half the authors') the same run stays near 50% (measured: 53.7%).
    Some seeds stall near 45% with either formula, so two seeds are trained and the one with the
    lower training error is kept, the paper's rule for picking among runs (Section 4.2)."""
    train = load_task(DEFAULT_ROOT, 15, "train")
    test = load_task(DEFAULT_ROOT, 15, "test")
    runs = [train_memn2n(train, None, MemN2NConfig(hops=3, epochs=20), seed=seed) for seed in (1, 2)]
    model, history = min(runs, key=lambda r: r[1][-1]["train_error"])
    assert sum(h["phase"] == "linear" for h in history) == 20
    error = evaluate(model, test)
    print(f"bAbI task 15, 3 hops, 20 + 20 epochs: test error {error:.3f}")
    assert error < 0.05


def test_babi_table_picks_the_lowest_training_error_and_reports_the_seed_spread():
    """scripts/babi_table.py's page from a made-up results record (no training)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(REPO / "scripts"))  # as `python scripts/babi_table.py` has it (its helpers)
    path = REPO / "scripts" / "babi_table.py"
    spec = importlib.util.spec_from_file_location("babi_table", path)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)

    def run(task, seed, test, train, val=0.0):
        return {"task": task, "hops": 3, "seed": seed, "test_error": test, "train_error": train, "val_error": val,
                "seconds": 1.0, "epochs": 120, "ls_epochs": 20}

    runs = [run(1, 1, 0.30, 0.10), run(1, 2, 0.50, 0.00, 0.2), run(1, 3, 0.40, 0.00, 0.1),  # seed 3: tie, lower val
            run(2, 1, 0.10, 0.0), run(2, 2, 0.20, 0.0), run(2, 3, 0.30, 0.0)]
    settings = {"size": "1k", "task_config": MemN2NConfig().to_dict(), "joint_config": JOINT_CONFIG.to_dict()}
    results = {"settings": settings, "runs": runs, "joint": [
        {"seed": 1, "hops": 3, "test_error": 0.1, "train_error": 0.0, "val_error": 0.0, "seconds": 60.0,
         "epochs": 90, "ls_epochs": 30, "errors": {"1": 0.05, "2": 0.15}}]}
    assert table.best_run(runs[:3])["seed"] == 3
    page = table.report(results)
    assert "| 1 | 40.0 | 40.0 ± 10.0 | 0.0 | 5.0 | 0.0 |" in page  # best by training error, not by test error
    assert "| 2 | 10.0 | 20.0 ± 10.0 |" in page  # all tied at 0 training error: seed 1 by validation, then seed
    assert "| **mean** | 25.0 | 30.0 ± 8.7 |" in page  # per-seed 2-task means 20, 35, 35: sd 8.66
    assert "best of 3" in page and "| failed (> 5%) | 2 | 2.0 |" in page
    assert table.parse_seeds("3:5,1:2", [3, 2, 1]) == {3: 5, 2: 1, 1: 2}
    assert table.parse_seeds("4", [1, 2]) == {1: 4, 2: 4}
