"""The King James Bible as a language-model corpus: reading, a split by chapter, vocabularies.

The text comes from Debian: `bible-kjv` is the `bible` program, `bible-kjv-text` its
compressed copy of the Authorized (King James) Version. `bible -f Gen1:1-Rev22:21` prints
all 31,102 verses in 0.05 s, one a line, each led by its reference: "Ge1:1 In the beginning
God created the heaven and the earth." (`-f` turns the pretty-printer off). The program
wraps lines only when given `-l`, never by itself (checked with COLUMNS=40: still one
verse a line), so `read_kjv` never passes `-l`, drops COLUMNS from the environment anyway,
and rejects a wrapped file with an error that says how to regenerate it, rather than
guessing which lines continue a verse.

The split is by chapter, never by verse: neighbouring verses share names, phrases and
whole sentences, so a test verse next to a training verse would be half memorised.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...runtime.errors import EdgeS2SError
from ...runtime.text import Vocab, split_units

PACKAGES = "bible-kjv bible-kjv-text"
APT_INSTALL = f"sudo apt-get install -y {PACKAGES}"
KJV_RANGE = "Gen1:1-Rev22:21"
KJV_VERSES = 31_102  # verses in the whole Bible, Genesis 1:1 to Revelation 22:21
KJV_CHAPTERS = 1_189
SPLIT_EVERY = 20
TEST_RESIDUE = 7  # chapter k is a test chapter when k % every == 7
VAL_RESIDUE = 13  # ... and a validation chapter when k % every == 13

CORPUS_CARD = f"""\
Corpus: the King James Bible (Authorized Version, 1611), {KJV_VERSES:,} verses in {KJV_CHAPTERS:,} chapters.
Source: Debian's bible-kjv (the `bible` program, GPL-2+) and bible-kjv-text (the text, from
  Chip Chapin's Bible Retrieval System; see /usr/share/doc/bible-kjv-text/copyright), read with
  `bible -f {KJV_RANGE}`.
Licence: public domain, except in the United Kingdom, where the Crown patent applies: the
  rights in the Authorized Version are vested in the Crown and administered under royal
  letters patent by Cambridge University Press as the King's Printer.
Install: {APT_INSTALL}
Split: by chapter, chapters numbered 0, 1, 2, ... in book order; chapter k is test when
  k % {SPLIT_EVERY} == {TEST_RESIDUE}, validation when k % {SPLIT_EVERY} == {VAL_RESIDUE}, training otherwise.
Text: one verse a line, its reference removed, runs of spaces collapsed to one."""

# "Ge1:1 text", "1Sm17:4 text", "SSol2:1 text": the book (an optional 1-3 then letters),
# chapter, colon, verse, one space, the text.
_VERSE_RE = re.compile(r"(?P<book>[1-3]?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+) (?P<text>.*)")


class CorpusError(EdgeS2SError, ValueError):
    """The Bible program or a corpus file is missing or malformed (message names the fix)."""


@dataclass
class Verse:
    book: str  # the `bible` program's abbreviation: "Ge", "Exo", "1Sm", ..., "Rev"
    chapter: int
    verse: int
    text: str

    @property
    def ref(self) -> str:
        """The reference as the program writes it, e.g. "Ge1:1"."""
        return f"{self.book}{self.chapter}:{self.verse}"


def parse_verses(lines: Iterable[str], source: str = "<text>") -> list[Verse]:
    """Parse "Ge1:1 text" lines; blank lines are skipped.

    Raises CorpusError naming source:line for a line that is not a verse (a wrapped verse
    from `bible -l` included), an empty verse, or a reference seen twice.
    """
    verses: list[Verse] = []
    seen: dict[tuple[str, int, int], int] = {}
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        m = _VERSE_RE.fullmatch(line)
        if m is None:
            hint = ("; it looks like the rest of a wrapped verse: regenerate the file with "
                    "`bible -f ...` without -l" if verses and not line[:1].isdigit() else "")
            raise CorpusError(f"{source}:{lineno}: expected a verse like 'Ge1:1 In the beginning ...', "
                              f"found {line[:40]!r}{hint}")
        text = " ".join(m["text"].split())
        if not text:
            raise CorpusError(f"{source}:{lineno}: verse {m['book']}{m['chapter']}:{m['verse']} has no text")
        v = Verse(m["book"], int(m["chapter"]), int(m["verse"]), text)
        key = (v.book, v.chapter, v.verse)
        if key in seen:
            raise CorpusError(f"{source}:{lineno}: verse {v.ref} already appeared on line {seen[key]}: "
                              "the file holds a passage twice, remove the repeat")
        seen[key] = lineno
        verses.append(v)
    if not verses:
        raise CorpusError(f"{source}: no verses found: the input is empty")
    return verses


def _bible_program() -> str:
    """The path of Debian's `bible` program; CorpusError saying how to install it."""
    found = shutil.which("bible") or shutil.which("bible", path="/usr/bin:/usr/games")
    if found is None:
        raise CorpusError(f"the `bible` program is not installed: {APT_INSTALL}")
    return found


def read_kjv(path: str | Path | None = None) -> list[Verse]:
    """The whole King James Bible (path None: run `bible`), or a file in its line format.

    A file is UTF-8 text as `bible -f REF-REF > file` writes it (the tests' fixture). The
    program's output must be all 31,102 verses: fewer means its data is damaged.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CorpusError(f"{path}: no such file: write one with `bible -f Gen1:1-3:24 > {path.name}`")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 text (byte {e.start}): convert the file to UTF-8") from None
        return parse_verses(text.split("\n"), str(path))
    program = _bible_program()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # only -l reads it; be sure
    try:
        done = subprocess.run([program, "-f", KJV_RANGE], capture_output=True, env=env, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CorpusError(f"could not run {program}: {e}: reinstall with {APT_INSTALL}") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise CorpusError(f"{program} failed (exit {done.returncode}: {err[-1] if err else 'no message'}): "
                          f"reinstall with {APT_INSTALL}")
    verses = parse_verses(done.stdout.decode("utf-8", errors="replace").split("\n"), f"`bible -f {KJV_RANGE}`")
    if len(verses) != KJV_VERSES:
        raise CorpusError(f"`bible -f {KJV_RANGE}` printed {len(verses)} verses, expected {KJV_VERSES}: "
                          f"the text data looks damaged, reinstall with {APT_INSTALL}")
    return verses


def chapter_numbers(verses: Iterable[Verse]) -> list[int]:
    """Each verse's chapter number: 0, 1, 2, ... in order of each chapter's first verse.

    Keyed on (book, chapter), so verses of one chapter share a number even if a file
    separates them: a chapter can never be cut across splits.
    """
    index: dict[tuple[str, int], int] = {}
    return [index.setdefault((v.book, v.chapter), len(index)) for v in verses]


def split_kjv(verses: list[Verse], every: int = SPLIT_EVERY) -> dict[str, list[Verse]]:
    """Deterministic split by chapter: {"train", "val", "test"}, verses in their input order.

    Chapters are numbered 0, 1, 2, ... in book order (`chapter_numbers`); chapter k is
    "test" when k % every == 7, "val" when k % every == 13, "train" otherwise. With the
    default every=20 that is 5% test and 5% val, spread evenly over the whole Bible
    (Genesis 8 is the first test chapter, Genesis 14 the first validation one) so no
    book's style is missing from training. No randomness: the same verses always give the
    same split.
    """
    if every <= VAL_RESIDUE:
        raise CorpusError(f"split_kjv: every={every} leaves no validation chapters: use every > {VAL_RESIDUE}")
    out: dict[str, list[Verse]] = {"train": [], "val": [], "test": []}
    for v, k in zip(verses, chapter_numbers(verses)):
        r = k % every
        out["test" if r == TEST_RESIDUE else "val" if r == VAL_RESIDUE else "train"].append(v)
    return out


def corpus_texts(verses: Iterable[Verse]) -> list[str]:
    """The verse texts, references dropped: one training sequence a verse."""
    return [v.text for v in verses]


def corpus_card(splits: dict[str, list[Verse]] | None = None) -> str:
    """Source, licence and install line of the corpus; with splits, their sizes too."""
    if not splits:
        return CORPUS_CARD
    sizes = [f"  {name}: {len(vs):,} verses, {len(set((v.book, v.chapter) for v in vs)):,} chapters, "
             f"{sum(len(v.text) for v in vs):,} characters" for name, vs in splits.items()]
    return CORPUS_CARD + "\nSizes:\n" + "\n".join(sizes)


def build_vocab(texts: Iterable[str], unit: str, min_count: int = 1, max_size: int | None = None,
                lowercase: bool = False) -> Vocab:
    """A char or word vocabulary (specials first, then most frequent) from training texts only.

    Cut with `runtime.text.split_units`, the function the runtime uses on a prompt.
    """
    return Vocab.build((split_units(t, unit, lowercase) for t in texts), min_count=min_count, max_size=max_size)


def encode_text(text: str, vocab: Vocab, unit: str, lowercase: bool = False) -> list[int]:
    """Text -> token ids (unknown tokens -> vocab.unk_id); no <s> or </s> is added."""
    return vocab.encode(split_units(text, unit, lowercase))
