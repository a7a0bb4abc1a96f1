"""The bAbI reader: a hand-written fixture in the bAbI format (made-up stories, no line of
the real data), malformed lines, the memory window, encoding, vocabularies, and the real
v1.2 files when ../shared/data/babi is there."""

import numpy as np
import pytest

from edge_s2s.train.memn2n.babi import (
    DEFAULT_ROOT,
    MEMORY_SIZE,
    TASKS,
    BabiError,
    answer_vocab,
    babi_path,
    build_vocab,
    encode_example,
    load_task,
    load_tasks,
    memory_window,
    parse_babi,
    words,
)

# Two made-up stories. Questions sit between statements, so line ids and story indices
# part: in story 1, statements 1 2 4 5 are indices 0 1 2 3. Story 2 restarts at id 1 and
# has a path answer (task 19 style) and a list answer (task 8 style).
FIXTURE = (
    "1 Anna walked to the kitchen.\n"
    "2 Ben took the lamp there.\n"
    "3 Where is Anna? \tkitchen\t1\n"
    "4 Ben went to the porch.\n"
    "5 Anna left the lamp in the kitchen.\n"
    "6 Where is Ben?\tporch\t4\n"
    "7 Where is the lamp?\tKitchen\t2 5\n"
    "1 The attic is north of the cellar.\n"
    "2 The study is east of the attic.\n"
    "3 How do you go from the cellar to the study?\tn,e\t1 2\n"
    "4 Ben picked up the lamp.\n"
    "5 Ben picked up the kite.\n"
    "6 What is Ben carrying?\tlamp,kite\t4 5\n"
)
HAVE_DATA = (DEFAULT_ROOT / "en").is_dir()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"bAbI data not at {DEFAULT_ROOT} (see ../shared/data/babi/README.md)")


@pytest.fixture(scope="module")
def examples():
    return parse_babi(FIXTURE.split("\n"), task=7, source="fixture.txt")


def test_fixture_parses_stories_and_questions(examples):
    assert len(examples) == 5
    first, second, third, fourth, fifth = examples
    assert first.story == [["anna", "walked", "to", "the", "kitchen"], ["ben", "took", "the", "lamp", "there"]]
    assert first.question == ["where", "is", "anna"] and first.answer == "kitchen"
    assert first.where == "fixture.txt:3" and first.task == 7
    # questions are not memories: the story before line 6 is statements 1, 2, 4, 5 (not 3)
    assert [s[0:2] for s in second.story] == [["anna", "walked"], ["ben", "took"], ["ben", "went"], ["anna", "left"]]
    assert third.answer == "kitchen"  # answers are lower-cased like the story words
    assert third.story == second.story and ["where", "is", "ben"] not in third.story
    # the id restart begins a new story: nothing of story 1 is remembered
    assert fourth.story == [["the", "attic", "is", "north", "of", "the", "cellar"],
                            ["the", "study", "is", "east", "of", "the", "attic"]]
    assert len(fifth.story) == 4 and fifth.story[-1] == ["ben", "picked", "up", "the", "kite"]


def test_supporting_ids_map_to_story_indices_past_question_lines(examples):
    assert [ex.supporting for ex in examples] == [[0], [2], [1, 3], [0, 1], [2, 3]]
    for ex in examples:
        assert all(0 <= i < len(ex.story) for i in ex.supporting)
    lamp = examples[2]
    assert lamp.story[lamp.supporting[1]] == ["anna", "left", "the", "lamp", "in", "the", "kitchen"]
    kite = examples[4]
    assert [kite.story[i][-1] for i in kite.supporting] == ["lamp", "kite"]


def test_list_answers_are_one_class_but_several_words(examples):
    path, carried = examples[3], examples[4]
    assert path.answer == "n,e" and path.answer_words == ["n", "e"]
    assert carried.answer == "lamp,kite" and carried.answer_words == ["lamp", "kite"]
    answers = answer_vocab(examples)
    assert answers == ["kitchen", "lamp,kite", "n,e", "porch"]
    vocab = build_vocab(examples)
    assert {"n", "e", "kite", "lamp"} <= set(vocab.tokens)
    assert "lamp,kite" not in vocab.tokens and "n,e" not in vocab.tokens


def test_words_drop_punctuation():
    assert words("Mary moved to the bathroom.") == ["mary", "moved", "to", "the", "bathroom"]
    assert words("Is Mary in the office? ") == ["is", "mary", "in", "the", "office"]


@pytest.mark.parametrize("lines, line, message", [
    (["1 Anna walked.", "Ben took the lamp."], 2, "expected a line like '1 Mary"),
    (["1 Anna walked.", "2 Where is Anna?\t\t1"], 2, "a question with no answer"),
    (["1 Anna walked.", "2 Where is Anna?"], 2, "a question with no answer"),
    (["1 Anna walked.", "2 Where is Anna?\tkitchen,\t1"], 2, "an empty item in the answer list"),
    (["1 Anna walked.", "2 Where is Anna?\tkitchen\t1\t1"], 2, "4 tab-separated fields"),
    (["1 Anna walked.", "2 Where is Anna?\tkitchen\tone"], 2, "supporting id 'one' is not a number"),
    (["1 Anna walked.", "2 Where is Anna?\tkitchen\t1", "3 Where is Ben?\tporch\t2"], 3,
     "supporting id 2 is a question, not a statement"),
    (["1 Anna walked.", "2 Where is Anna?\tkitchen\t3", "3 Ben went."], 2,
     "supporting id 3 is not an earlier statement"),
    (["1 Anna walked.", "2 Ben ran.", "1 Cat sat.", "2 Where is Ben?\tporch\t2"], 4,
     "supporting id 2 is not an earlier statement"),
    (["1 Anna walked.", "3 Ben went."], 2, "id 3 follows id 1"),
    (["2 Anna walked."], 1, "id 2 follows id 0"),
    (["1 Anna walked.", "2 ."], 2, "statement 2 has no words"),
])
def test_malformed_line_names_the_line(lines, line, message):
    with pytest.raises(BabiError, match=rf"^bad\.txt:{line}: .*({message})"):
        parse_babi(lines, task=1, source="bad.txt")


def test_supporting_id_of_the_previous_story_is_rejected():
    # id 1 of the new story is "Cat sat."; id 2 of the old story ("Ben ran.") must not leak in
    lines = ["1 Anna walked.", "2 Ben ran.", "1 Cat sat.", "2 Where is the cat?\tmat\t1", "3 Who ran?\tben\t2"]
    with pytest.raises(BabiError, match=r"bad\.txt:5: supporting id 2 is a question"):
        parse_babi(lines, task=1, source="bad.txt")
    ok = parse_babi(lines[:4], task=1, source="ok.txt")
    assert ok[0].story == [["cat", "sat"]] and ok[0].supporting == [0]


def test_memory_window_keeps_the_most_recent_sentences():
    story = [[f"s{i}"] for i in range(7)]
    kept, dropped = memory_window(story, 3)
    assert kept == [["s4"], ["s5"], ["s6"]] and dropped == 4
    kept, dropped = memory_window(story, 50)
    assert kept == story and dropped == 0
    assert memory_window([], 5) == ([], 0)
    assert MEMORY_SIZE == 50
    with pytest.raises(BabiError, match="max_sentences must be at least 1"):
        memory_window(story, 0)


def test_encode_shapes_and_padding(examples):
    vocab = build_vocab(examples)
    answers = answer_vocab(examples)
    ex = examples[2]  # 4 statements, answer "kitchen"
    enc = encode_example(ex, vocab, max_sentences=6, max_words=8, answers=answers)
    story, question, answer, n = enc
    assert story.shape == (6, 8) and story.dtype == np.int64
    assert question.shape == (8,) and question.dtype == np.int64
    assert n == 4 and answers[answer] == "kitchen"
    assert (story[4:] == 0).all()  # rows after the story are padding
    assert vocab.decode(story[0][:5].tolist()) == ex.story[0] and (story[0][5:] == 0).all()
    assert vocab.decode(question[:3].tolist()) == ["where", "is", "the"] and question[4:].sum() == 0
    # a window of 2 keeps the last two statements, in their order
    small = encode_example(ex, vocab, max_sentences=2, max_words=8, answers=answers)
    assert small.n_sentences == 2 and small.story.shape == (2, 8)
    assert vocab.decode(small.story[1][:7].tolist()) == ex.story[3]
    # words outside the vocabulary become <unk>
    other = parse_babi(["1 Zed hid.", "2 Who hid?\tzed\t1"], task=1)[0]
    enc = encode_example(other, vocab, 3, 4, answers=["zed"])
    assert enc.story[0].tolist() == [vocab.unk_id, vocab.unk_id, 0, 0] and enc.answer == 0


def test_encode_errors_name_the_fix(examples):
    vocab = build_vocab(examples)
    with pytest.raises(BabiError, match=r"fixture\.txt:7: the story sentence 4 .* has 7 words, .*max_words >= 7"):
        encode_example(examples[2], vocab, 10, 6, answers=answer_vocab(examples))
    with pytest.raises(BabiError, match=r"fixture\.txt:3: answer 'kitchen' is not in the answer list"):
        encode_example(examples[0], vocab, 10, 8, answers=["porch"])


def test_vocab_has_the_specials_first(examples):
    vocab = build_vocab(examples)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert vocab.tokens[4] == "the"  # the most frequent word
    assert len(set(vocab.tokens)) == len(vocab)
    story_words = {w for ex in examples for s in ex.story for w in s}
    assert story_words <= set(vocab.tokens) and vocab.unk_id not in vocab.encode(sorted(story_words))


def test_tasks_and_path_arguments(tmp_path):
    assert sorted(TASKS) == list(range(1, 21))
    assert TASKS[1] == "qa1_single-supporting-fact" and TASKS[20] == "qa20_agents-motivations"
    with pytest.raises(BabiError, match=r"bAbI data not found at .*nowhere: pass --data-root DIR, or set EDGE_S2S_DATA"):
        babi_path(tmp_path / "nowhere", 1, "train")
    with pytest.raises(BabiError, match="unknown bAbI task 21"):
        babi_path(tmp_path, 21, "train")
    with pytest.raises(BabiError, match="unknown bAbI split 'valid'"):
        babi_path(tmp_path, 1, "valid")
    with pytest.raises(BabiError, match="unknown bAbI size '5k'"):
        babi_path(tmp_path, 1, "train", "5k")
    with pytest.raises(BabiError, match="no en-10k/ folder"):
        babi_path(tmp_path, 1, "train", "10k")


def test_a_made_up_root_loads_and_names_the_missing_qa3_file(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en-10k").mkdir()
    (tmp_path / "en" / "qa1_single-supporting-fact_train.txt").write_text(FIXTURE)
    (tmp_path / "en" / "qa8_lists-sets_train.txt").write_text(FIXTURE)
    loaded = load_task(tmp_path, 1, "train")
    assert len(loaded) == 5 and loaded[0].where.endswith("qa1_single-supporting-fact_train.txt:3")
    joint = load_tasks(tmp_path, [8, 1], "train", "1k")
    assert [ex.task for ex in joint] == [8] * 5 + [1] * 5
    with pytest.raises(BabiError, match=r"qa3_three-supporting-facts_train\.txt is missing: .*known gap.*size='1k'"):
        load_task(tmp_path, 3, "train", "10k")
    with pytest.raises(BabiError, match=r"qa2_two-supporting-facts_train\.txt is missing: .*incomplete"):
        load_tasks(tmp_path, [1, 2], "train")
    with pytest.raises(BabiError, match="task 1 is listed twice"):
        load_tasks(tmp_path, [1, 8, 1], "train")
    with pytest.raises(BabiError, match="no bAbI tasks given"):
        load_tasks(tmp_path, [], "train")


@needs_data
def test_real_task_1_train():
    train = load_task(DEFAULT_ROOT, 1, "train")
    assert len(train) == 1000 and {ex.task for ex in train} == {1}
    answers = answer_vocab(train)
    assert set(answers) <= {"bathroom", "bedroom", "garden", "hallway", "kitchen", "office"}
    for ex in train:
        assert ex.supporting and all(0 <= i < len(ex.story) for i in ex.supporting)
        assert ex.answer in answers
        # task 1's one supporting fact names the person asked about and the answer place
        fact = ex.story[ex.supporting[0]]
        assert fact[0] == ex.question[-1] and fact[-1] == ex.answer
    vocab = build_vocab(train)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"] and set(answers) <= set(vocab.tokens)


@needs_data
def test_real_missing_10k_qa3_train_gives_the_clear_error():
    with pytest.raises(BabiError, match=r"en-10k/qa3_three-supporting-facts_train\.txt is missing: .*known gap"):
        load_task(DEFAULT_ROOT, 3, "train", "10k")
    assert babi_path(DEFAULT_ROOT, 3, "test", "10k").is_file()  # only the training file is missing
