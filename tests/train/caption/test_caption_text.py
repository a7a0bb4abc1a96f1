"""Clean caption targets: lower case, no punctuation, label names joined, no dangling last word."""

import pytest

from edge_s2s.runtime.text import agree_articles, article_for
from edge_s2s.train.caption.caption_text import NO_END_WORDS, caption_words, clean_caption, is_clean_token


@pytest.mark.parametrize("raw, words", [
    ("A big, red Apple.", ["a", "big", "red", "apple"]),
    ('A "yellow" clock!', ["a", "yellow", "clock"]),
    ("The dog's ball -- on a T-shirt", ["the", "dogs", "ball", "on", "a", "t-shirt"]),
    ("Two   cats; one’s asleep…", ["two", "cats", "ones", "asleep"]),
    ("-dash- at the edges-", ["dash", "at", "the", "edges"]),
    ("Ｆｕｌｌ-width ＣＡＴ", ["full-width", "cat"]),
    (",.;:!?\"'", []),
])
def test_caption_words(raw, words):
    assert caption_words(raw) == words
    assert all(is_clean_token(w) for w in words)


def test_two_word_names_become_one_token_and_no_caption_ends_on_a_function_word():
    names = ["fire truck", "traffic light"]
    assert clean_caption("A red fire truck near a traffic light.", names) == ["a", "red", "fire truck", "near", "a",
                                                                             "traffic light"]
    assert clean_caption("a fire engine and a truck", names) == ["a", "fire", "engine", "and", "a", "truck"]
    assert clean_caption("A cat on the.", names) == ["a", "cat"]
    assert clean_caption("of the and a", names) == []
    assert {"a", "the", "and", "of"} <= NO_END_WORDS and "red" not in NO_END_WORDS  # colours: completed at runtime
    assert clean_caption("the car is red") == ["the", "car", "is", "red"]  # only function words are stripped


def test_clean_tokens_refuse_punctuation():
    for bad in ('"', "a,", "cat.", "", " cat", "three word name"):
        assert not is_clean_token(bad), bad
    assert is_clean_token("fire truck") and is_clean_token("go-kart")


@pytest.mark.parametrize("word, article", [
    ("apple", "an"), ("cat", "a"), ("hour", "an"), ("unicorn", "a"), ("umbrella", "an"), ("one-way", "a"),
    ("euro", "a"), ("x", "an"), ("honest", "an"), ("owl", "an"), ("yellow", "a"),
])
def test_article_agrees_with_the_next_word(word, article):
    assert article_for(word) == article


def test_agree_articles_fixes_every_article():
    assert agree_articles("a apple and an cat near a hour".split()) == "an apple and a cat near an hour".split()
    assert agree_articles(["a"]) == ["a"]  # nothing after it: left alone


@pytest.mark.parametrize("text, problems", [
    ("a cat on a sofa", []),
    ("a fire truck near a t-shirt", []),
    ("", ["empty"]),
    ("a big,.", ["not plain words"]),
    ('a" of" apple.', ["not plain words"]),
    ("a red and", ["ends on 'and'"]),
    ("a <unk> on a table", ["not plain words"]),
    ("a a cat", ["a word repeated"]),
    ("A Cat", ["not plain words"]),
    ("A red apple.", []),  # one final full stop and a capital first letter are how sentences are written
    ("a red apple..", ["not plain words"]),
    ("a red and.", ["ends on 'and'"]),
    (".", ["empty"]),
    ("a red", ["ends on 'red' with no noun"]),  # a colour or size needs its noun
    ("A big red.", ["ends on 'red' with no noun"]),
    ("the car is red", []),
    ("a cat and a small", ["ends on 'small' with no noun"]),
    ("an orange", []),  # the fruit
])
def test_caption_problems(text, problems):
    from edge_s2s.train.caption.caption_text import caption_problems

    assert caption_problems(text) == problems


def test_names_object_matches_whole_words_and_plurals():
    from edge_s2s.train.caption.caption_text import names_object

    assert names_object("two cats on a sofa", ["cat", "kitten"])
    assert names_object("a big cat in the grass", ["cheetah", "big cat"])
    assert names_object("some boxes", ["box"])
    assert not names_object("a catalogue on a desk", ["cat"])
    assert not names_object("a dog", [])
