"""The bAbI question-answering tasks (v1.2) as End-To-End Memory Network examples.

bAbI ("Towards AI-Complete Question Answering", Weston et al., 2015; CC BY 3.0, Facebook)
is 20 synthetic tasks, each a train and a test file of stories. End-To-End Memory Networks
(Sukhbaatar et al., 2015) read a story into memory one sentence a slot, then answer a
question with one softmax over the possible answers.

File format, one line each ("<TAB>" is a tab):

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? <TAB>bathroom<TAB>1
    4 Daniel went back to the hallway.

The id restarts at 1 for a new story. A question's story is every statement of the
current story before it: questions are not memories, so supporting-fact ids (which count
question lines too) are mapped to indices into the statements (id 4 above is index 2).
Answers of task 8 (lists/sets) and task 19 (path finding) are comma-separated lists such
as "apple,football" or "n,w": one answer class for the softmax, several vocabulary words.

The data lives outside the repository (../shared/data/babi, see its README.md): `en/`
holds the 1k set, `en-10k/` the 10k one, whose qa3 training file is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...runtime.errors import EdgeS2SError
from ...runtime.tasks.story import words  # the runtime cuts a user's story the same way
from ...runtime.text import Vocab
from ..core.data_roots import shared_data, where_hint

DEFAULT_ROOT = shared_data("babi")
README_HINT = "see ../shared/data/babi/README.md"
MEMORY_SIZE = 50  # the paper keeps only the last 50 sentences of a story in memory
SPLITS = ("train", "test")
SIZES = {"1k": "en", "10k": "en-10k"}  # size -> folder under the root

TASKS: dict[int, str] = {
    1: "qa1_single-supporting-fact",
    2: "qa2_two-supporting-facts",
    3: "qa3_three-supporting-facts",
    4: "qa4_two-arg-relations",
    5: "qa5_three-arg-relations",
    6: "qa6_yes-no-questions",
    7: "qa7_counting",
    8: "qa8_lists-sets",
    9: "qa9_simple-negation",
    10: "qa10_indefinite-knowledge",
    11: "qa11_basic-coreference",
    12: "qa12_conjunction",
    13: "qa13_compound-coreference",
    14: "qa14_time-reasoning",
    15: "qa15_basic-deduction",
    16: "qa16_basic-induction",
    17: "qa17_positional-reasoning",
    18: "qa18_size-reasoning",
    19: "qa19_path-finding",
    20: "qa20_agents-motivations",
}

# Files known to be absent from the shared copy (README.md, "Known gap"): (task, split, size).
KNOWN_MISSING = {(3, "train", "10k")}

_LINE_RE = re.compile(r"(?P<id>\d+) (?P<text>.*)")
_FORMAT = "expected 'ID question?<TAB>answer<TAB>supporting ids'"


class BabiError(EdgeS2SError, ValueError):
    """A bAbI file is missing or malformed, or an example does not fit (message names the fix)."""


@dataclass
class Example:
    story: list[list[str]]  # the statements before the question, oldest first, each tokenised
    question: list[str]
    answer: str  # lower-cased; "apple,football" for a list: one class of answer_vocab
    supporting: list[int]  # indices into story
    task: int
    where: str = ""  # "file:line" of the question, for error messages

    @property
    def answer_words(self) -> list[str]:
        """The answer's words: "n,w" -> ["n", "w"]; a one-word answer is a list of one."""
        return self.answer.split(",")


def _parse_answer(raw: str, where: str) -> str:
    """ "Mary" -> "mary", "apple, milk" -> "apple,milk"; BabiError for an empty answer or list item."""
    parts = [p.strip().lower() for p in raw.split(",")]
    if not all(parts):
        what = "no answer" if len(parts) == 1 else f"an empty item in the answer list {raw.strip()!r}"
        raise BabiError(f"{where}: a question with {what}: {_FORMAT}")
    bad = [p for p in parts if words(p) != [p]]
    if bad:
        raise BabiError(f"{where}: answer item {bad[0]!r} is not one word: "
                        "separate the items of a list answer with commas")
    return ",".join(parts)


def parse_babi(lines: Iterable[str], task: int, source: str = "<text>") -> list[Example]:
    """Parse bAbI lines into one Example per question; blank lines are skipped.

    Raises BabiError naming source:line for a line without an id, an id that neither
    restarts a story (1) nor follows the previous one, a statement with no words, a
    question without an answer, and a supporting id that is not an earlier statement of
    the same story (a question's id, a later id, or one from another story).
    """
    examples: list[Example] = []
    story: list[list[str]] = []
    index_of: dict[int, int] = {}  # statement line id -> index in story
    questions: set[int] = set()  # question line ids of the current story
    prev_id = 0
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        m = _LINE_RE.fullmatch(line)
        if m is None:
            raise BabiError(f"{where}: expected a line like '1 Mary moved to the bathroom.' "
                            f"(an id, a space, the text), found {line[:40]!r}")
        line_id = int(m["id"])
        if line_id == 1:
            story, index_of, questions = [], {}, set()
        elif line_id != prev_id + 1:
            raise BabiError(f"{where}: id {line_id} follows id {prev_id}: ids run 1, 2, 3, ... within a story "
                            "and restart at 1 for the next; a line is missing or out of order")
        prev_id = line_id
        fields = m["text"].split("\t")
        if len(fields) == 1 and not fields[0].rstrip().endswith("?"):
            sentence = words(fields[0])
            if not sentence:
                raise BabiError(f"{where}: statement {line_id} has no words")
            index_of[line_id] = len(story)
            story.append(sentence)
            continue
        if len(fields) < 2 or not fields[1].strip():
            raise BabiError(f"{where}: a question with no answer: {_FORMAT}")
        if len(fields) > 3:
            raise BabiError(f"{where}: {len(fields)} tab-separated fields, {_FORMAT}")
        question = words(fields[0])
        if not question:
            raise BabiError(f"{where}: question {line_id} has no words")
        answer = _parse_answer(fields[1], where)
        supporting = []
        for tok in (fields[2] if len(fields) == 3 else "").split():
            if not tok.isdigit():
                raise BabiError(f"{where}: supporting id {tok!r} is not a number: {_FORMAT}")
            sid = int(tok)
            if sid not in index_of:
                why = ("is a question, not a statement" if sid in questions
                       else "is not an earlier statement of this story")
                raise BabiError(f"{where}: supporting id {sid} {why}: supporting ids name statement lines "
                                "above the question, counted from the story's line 1")
            supporting.append(index_of[sid])
        questions.add(line_id)
        examples.append(Example(list(story), question, answer, supporting, task, where))
    return examples


def _check_task(task: int) -> None:
    if task not in TASKS:
        raise BabiError(f"unknown bAbI task {task!r}: use a number from 1 to 20")


def babi_path(root: str | Path, task: int, split: str, size: str = "1k") -> Path:
    """The file of one task, split ("train" or "test") and size ("1k" or "10k"), which must exist.

    BabiError for a missing root (the data lives outside the repository), a missing size
    folder, the en-10k qa3 training file the shared copy lacks, or any other missing file.
    """
    _check_task(task)
    if split not in SPLITS:
        raise BabiError(f"unknown bAbI split {split!r}: use one of {', '.join(SPLITS)}")
    if size not in SIZES:
        raise BabiError(f"unknown bAbI size {size!r}: use one of {', '.join(SIZES)}")
    root = Path(root)
    if not root.is_dir():
        raise BabiError(f"bAbI data not found at {root}: {where_hint('babi', '--data-root')}")
    folder = root / SIZES[size]
    if not folder.is_dir():
        raise BabiError(f"bAbI data at {root} has no {SIZES[size]}/ folder for size {size}: {README_HINT}")
    path = folder / f"{TASKS[task]}_{split}.txt"
    if not path.is_file():
        if (task, split, size) in KNOWN_MISSING:
            raise BabiError(f"{path} is missing: the shared bAbI copy lacks the en-10k qa3 training file "
                            f"(a known gap, {README_HINT}): use size='1k' for task 3, or leave task 3 out")
        raise BabiError(f"{path} is missing: the bAbI copy at {root} is incomplete, {README_HINT}")
    return path


def load_task(root: str | Path, task: int, split: str, size: str = "1k") -> list[Example]:
    """One task's examples, errors naming the file and line."""
    path = babi_path(root, task, split, size)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BabiError(f"{path}: not UTF-8 text (byte {e.start}): check it with sha256sum -c SHA256SUMS") from None
    return parse_babi(text.split("\n"), task, str(path))


def load_tasks(root: str | Path, tasks: Iterable[int], split: str, size: str = "1k") -> list[Example]:
    """Several tasks' examples, task after task, for joint training; each keeps its task number.

    Every file is found before any is read, so a missing one fails at once.
    """
    tasks = list(tasks)
    if not tasks:
        raise BabiError("no bAbI tasks given: pass task numbers from 1 to 20")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise BabiError(f"bAbI task {repeated[0]} is listed twice: list each task once")
    for task in tasks:
        babi_path(root, task, split, size)
    return [ex for task in tasks for ex in load_task(root, task, split, size)]


def build_vocab(examples: Iterable[Example]) -> Vocab:
    """The word vocabulary (specials first, then most frequent) of stories, questions and answers.

    A list answer adds its words ("n,w" -> n, w), never itself: the whole answer is a class of
    `answer_vocab`, not a word. Build it from the training examples only.
    """
    def texts(ex: Example) -> Iterable[list[str]]:
        yield from ex.story
        yield ex.question
        yield ex.answer_words
    return Vocab.build(t for ex in examples for t in texts(ex))


def answer_vocab(examples: Iterable[Example]) -> list[str]:
    """The sorted distinct answers: the classes of the answer softmax ("apple,milk" is one)."""
    return sorted({ex.answer for ex in examples})


def memory_window(story: Sequence[list[str]], max_sentences: int) -> tuple[list[list[str]], int]:
    """The most recent max_sentences sentences (oldest first) and how many older ones were dropped.

    The paper's memory holds the last 50 sentences (MEMORY_SIZE); the answer's supporting
    facts are nearly always recent, the start of a long story rarely matters.
    """
    if max_sentences < 1:
        raise BabiError(f"max_sentences must be at least 1, got {max_sentences}")
    dropped = max(0, len(story) - max_sentences)
    return list(story[dropped:]), dropped


class Encoded(NamedTuple):
    story: np.ndarray  # int64 [max_sentences, max_words]: sentence i in row i, oldest first, 0-padded
    question: np.ndarray  # int64 [max_words], 0-padded
    answer: int  # index into the answer list
    n_sentences: int  # rows of story in use (the rest are all padding)


def _pad(ids: list[int], max_words: int, what: str, where: str) -> list[int]:
    if len(ids) > max_words:
        raise BabiError(f"{where}: the {what} has {len(ids)} words, more than max_words={max_words}: "
                        f"use max_words >= {len(ids)} (the longest sentence of the data)")
    return ids + [0] * (max_words - len(ids))


def encode_example(example: Example, vocab: Vocab, max_sentences: int, max_words: int, *,
                   answers: Sequence[str]) -> Encoded:
    """Token ids of the last max_sentences story sentences and of the question, and the answer's class.

    `answers` is the list from `answer_vocab`: the answer index points into it. Words not in
    the vocabulary become <unk>; a sentence or question longer than max_words is an error,
    never cut silently. Padding is id 0 (<pad>): whole rows after the story, words after each
    sentence.
    """
    if max_words < 1:
        raise BabiError(f"max_words must be at least 1, got {max_words}")
    where = example.where or f"task {example.task}"
    kept, _ = memory_window(example.story, max_sentences)
    story = np.zeros((max_sentences, max_words), dtype=np.int64)
    for i, sentence in enumerate(kept):
        story[i] = _pad(vocab.encode(sentence), max_words, f"story sentence {i + 1} of the window", where)
    question = np.array(_pad(vocab.encode(example.question), max_words, "question", where), dtype=np.int64)
    try:
        answer = list(answers).index(example.answer)
    except ValueError:
        raise BabiError(f"{where}: answer {example.answer!r} is not in the answer list of {len(answers)}: "
                        "build it with answer_vocab over the training examples of the same tasks") from None
    return Encoded(story, question, answer, len(kept))
