"""Story and question text -> the words a memory network reads (no torch: training imports it too).

`words` is the one tokenizer of bAbI text: train/memn2n/babi.py cuts the training files with it
and the runtime cuts a user's story and question with it, so both see the same words.

A story is text with one sentence per line, or a list of sentences. bAbI-numbered lines
("1 Mary moved to the bathroom.") are accepted and their numbers dropped when the first
line is numbered; a line holding several sentences ("Mary left. John came.") is split
after each full stop. Questions are not memories: a question line in the story (a tab, or
a final "?") is an error naming the line, as is a line without words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..text import tokenize

_WORD_RE = re.compile(r"\w")
_NUMBERED_RE = re.compile(r"(?P<id>\d+)\s+(?P<text>.*)")
_SENTENCE_END_RE = re.compile(r"(?<=[.!])\s+(?=\S)")


def words(text: str) -> list[str]:
    """Lower-cased words, punctuation dropped: "Mary moved to the bathroom." -> [mary, moved, to, the, bathroom].

    Cut with `runtime.text.tokenize` (the runtime's word tokenizer), keeping word tokens only:
    the final "." and "?" carry nothing a memory network could use.
    """
    return [t for t in tokenize(text, lowercase=True) if _WORD_RE.match(t)]


@dataclass
class Sentence:
    """One statement of a story: the text as given (line number dropped) and its words."""

    text: str
    words: list[str]


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _units(story: str | Sequence[str], source: str) -> list[tuple[str, str]]:
    """(where, text) of every non-blank line (text) or item (list)."""
    if isinstance(story, str):
        return [(f"{source}:{i}", line) for i, line in enumerate(story.splitlines(), 1) if line.strip()]
    if isinstance(story, (bytes, bytearray)) or not isinstance(story, Sequence):
        raise InputError(f"a story must be text (one sentence a line) or a list of sentences, "
                         f"got {type(story).__name__}")
    out = []
    for i, item in enumerate(story, 1):
        if not isinstance(item, str):
            raise InputError(f"{source} sentence {i} is {type(item).__name__}, not text: pass sentences as strings")
        out += [(f"{source} sentence {i}", line) for line in item.splitlines() if line.strip()]
    return out


def parse_story(story: str | Sequence[str], source: str = "story") -> list[Sentence]:
    """The statements of a story, oldest first; InputError naming the line for anything unusable.

    Errors: an empty story, a question line, a line without words, a numbered story with an
    unnumbered line, and numbering that restarts at 1 (the text holds several stories).
    """
    units = _units(story, source)
    if not units:
        raise InputError(f"the {source} is empty: give at least one sentence such as 'Mary moved to the bathroom.', "
                         "one a line")
    numbered = _NUMBERED_RE.fullmatch(units[0][1].strip()) is not None
    out: list[Sentence] = []
    seen_id = False
    for where, line in units:
        text = line.strip()
        if numbered:
            m = _NUMBERED_RE.fullmatch(text)
            if m is None:
                raise InputError(f"{where}: {_short(text)} has no line number although the story's first line has "
                                 "one: number every line (bAbI style) or none")
            if int(m["id"]) == 1 and seen_id:
                raise InputError(f"{where}: the numbering restarts at 1, so this text holds more than one story: "
                                 "give one story at a time")
            seen_id, text = True, m["text"].strip()
        if "\t" in text or text.endswith("?"):
            raise InputError(f"{where}: {_short(text.split(chr(9))[0])} is a question, not a statement: keep only "
                             "statements in the story and ask the question separately")
        for part in _SENTENCE_END_RE.split(text):
            if part.rstrip().endswith("?"):
                raise InputError(f"{where}: {_short(part)} is a question, not a statement: keep only statements "
                                 "in the story and ask the question separately")
            ws = words(part)
            if not ws:
                raise InputError(f"{where}: {_short(part)} has no words: remove the line or write a sentence")
            out.append(Sentence(part.strip(), ws))
    return out


def question_words(question: str, label: str = "the question") -> list[str]:
    """The words of a question; InputError when it is not text or has none."""
    if not isinstance(question, str):
        raise InputError(f"{label} must be text, got {type(question).__name__}")
    ws = words(question)
    if not ws:
        raise InputError(f"{label} is empty: ask something like 'Where is Mary?'")
    return ws
