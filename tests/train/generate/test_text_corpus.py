"""The King James Bible corpus: the Genesis 1-3 fixture, the whole text from `bible`, the
chapter-level split and the char / word vocabularies."""

import shutil

import pytest
from paths import TEST_DATA

from edge_s2s.runtime.text import join_units, split_units
from edge_s2s.train.generate.text_corpus import (
    CORPUS_CARD,
    KJV_CHAPTERS,
    KJV_VERSES,
    CorpusError,
    build_vocab,
    chapter_numbers,
    corpus_card,
    corpus_texts,
    encode_text,
    parse_verses,
    read_kjv,
    split_kjv,
)

FIXTURE = TEST_DATA / "kjv-genesis-1-3.txt"
GEN_1_1 = "In the beginning God created the heaven and the earth."
HAVE_BIBLE = shutil.which("bible") is not None


@pytest.fixture(scope="module")
def genesis():
    return read_kjv(FIXTURE)


@pytest.fixture(scope="module")
def kjv():
    if not HAVE_BIBLE:
        pytest.skip("the `bible` program is not installed (sudo apt-get install -y bible-kjv bible-kjv-text)")
    return read_kjv()


def test_fixture_parses_every_verse(genesis):
    n_lines = sum(1 for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip())
    assert n_lines == 80  # `wc -l`: Genesis 1 (31) + 2 (25) + 3 (24)
    assert len(genesis) == 80
    first, last = genesis[0], genesis[-1]
    assert (first.book, first.chapter, first.verse, first.text) == ("Ge", 1, 1, GEN_1_1)
    assert first.ref == "Ge1:1"
    assert (last.book, last.chapter, last.verse) == ("Ge", 3, 24)
    assert [sum(v.chapter == c for v in genesis) for c in (1, 2, 3)] == [31, 25, 24]
    assert corpus_texts(genesis)[0] == GEN_1_1


def test_malformed_line_names_the_line(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines[:4] + ["this is not a verse"] + lines[4:]) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.txt:5: expected a verse"):
        read_kjv(bad)
    with pytest.raises(CorpusError, match=r":2: verse Ge1:2 has no text"):
        parse_verses(["Ge1:1 text", "Ge1:2  "])
    with pytest.raises(CorpusError, match="already appeared on line 1"):
        parse_verses([lines[0], lines[1], lines[0]])
    with pytest.raises(CorpusError, match="no verses"):
        parse_verses(["", "  "])
    with pytest.raises(CorpusError, match="no such file"):
        read_kjv(tmp_path / "missing.txt")


def test_wrapped_verse_is_rejected_with_the_fix():
    # what `bible -f -l40 Gen1:1` prints: the verse continues on a line without a reference
    wrapped = ["Ge1:1 In the beginning God created the", "heaven and the earth."]
    with pytest.raises(CorpusError, match=r":2: .*wrapped verse.*without -l"):
        parse_verses(wrapped)


def test_whitespace_inside_a_verse_is_collapsed():
    (v,) = parse_verses(["Rev19:3 And again they said, Alleluia.  And her smoke rose up for ever and ever.\r"])
    assert v.text == "And again they said, Alleluia. And her smoke rose up for ever and ever."
    assert (v.book, v.chapter, v.verse) == ("Rev", 19, 3)


def test_split_of_the_fixture_is_all_train(genesis):
    parts = split_kjv(genesis)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [80, 0, 0]  # chapters 0-2 are all train
    with pytest.raises(CorpusError, match="every > 13"):
        split_kjv(genesis, every=13)


def test_split_is_by_chapter_and_deterministic(kjv):
    assert len(kjv) == KJV_VERSES
    parts = split_kjv(kjv)
    assert split_kjv(kjv) == parts
    chapters = {name: {(v.book, v.chapter) for v in vs} for name, vs in parts.items()}
    assert not chapters["train"] & chapters["val"]
    assert not chapters["train"] & chapters["test"]
    assert not chapters["val"] & chapters["test"]
    assert sum(len(c) for c in chapters.values()) == KJV_CHAPTERS  # every chapter lands in exactly one split
    assert sum(len(vs) for vs in parts.values()) == KJV_VERSES
    assert len(chapters["test"]) == 60 and len(chapters["val"]) == 59  # k % 20 == 7 / == 13 over 1,189 chapters
    assert ("Ge", 8) in chapters["test"] and ("Ge", 14) in chapters["val"]  # chapter numbers 7 and 13
    assert max(chapter_numbers(kjv)) == KJV_CHAPTERS - 1
    assert kjv[0].text == GEN_1_1 and kjv[-1].ref == "Rev22:21"


def test_char_vocab_round_trip(genesis):
    texts = corpus_texts(genesis)
    vocab = build_vocab(texts[:-5], "char")
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert vocab.tokens[4] == " "  # the most frequent character
    for text in texts[:10]:
        ids = encode_text(text, vocab, "char")
        assert len(ids) == len(text) and vocab.unk_id not in ids
        assert join_units(vocab.decode(ids), "char") == text
    assert encode_text("God said §", vocab, "char")[-1] == vocab.unk_id


def test_word_vocab_maps_unknown_words_to_unk(genesis):
    texts = corpus_texts(genesis)
    vocab = build_vocab(texts, "word", min_count=2)
    full = build_vocab(texts, "word")
    assert len(vocab) < len(full)
    assert "Cherubims" in full.index and "Cherubims" not in vocab.index  # once, in Genesis 3:24
    ids = encode_text("And God said unto the Cherubims, Behold .", vocab, "word")
    assert ids.count(vocab.unk_id) == 1
    assert vocab.decode(ids)[:3] == ["And", "God", "said"]
    assert encode_text("and", vocab, "word", lowercase=True) == vocab.encode(["and"])
    assert len(encode_text(GEN_1_1, full, "word")) == len(split_units(GEN_1_1, "word")) == 11


def test_corpus_card_names_source_licence_and_install(genesis):
    for needle in ("public domain", "Crown patent", "apt-get install -y bible-kjv bible-kjv-text", "31,102"):
        assert needle in CORPUS_CARD
    card = corpus_card(split_kjv(genesis))
    assert card.startswith(CORPUS_CARD) and "train: 80 verses, 3 chapters" in card


def test_read_kjv_runs_the_bible_program(kjv):
    texts = corpus_texts(kjv)
    assert len(texts) == KJV_VERSES
    assert all(t and "\n" not in t for t in texts)
    books = list(dict.fromkeys(v.book for v in kjv))
    assert len(books) == 66 and books[0] == "Ge" and books[-1] == "Rev"
