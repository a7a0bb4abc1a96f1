"""Generated stories in the bAbI task 1 format ("single supporting fact"), for memory-network tests.

People move between rooms; every two statements comes "Where is X?" whose answer is X's
most recent room (the supporting fact), five questions a story, ids 1..15, exactly the
layout of qa1_single-supporting-fact. Deterministic for a seed, so tests need no
../shared/data/babi.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PEOPLE = ["Mary", "John", "Sandra", "Daniel"]
PLACES = ["bathroom", "hallway", "kitchen", "garden", "office", "bedroom"]
VERBS = ["moved to", "went to", "journeyed to", "travelled to", "went back to"]
TASK1_FILE = "qa1_single-supporting-fact_{split}.txt"


def statement(rng: np.random.Generator) -> tuple[str, str, str]:
    """(sentence, person, place) of one random move."""
    who = PEOPLE[rng.integers(len(PEOPLE))]
    place = PLACES[rng.integers(len(PLACES))]
    return f"{who} {VERBS[rng.integers(len(VERBS))]} the {place}.", who, place


def task1_text(n_questions: int, seed: int, questions_per_story: int = 5) -> str:
    """`n_questions` questions in stories of the bAbI qa1 layout (two statements, one question)."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    asked = 0
    while asked < n_questions:
        where: dict[str, tuple[str, int]] = {}
        line_id = 0
        for _ in range(questions_per_story):
            for _ in range(2):
                text, who, place = statement(rng)
                line_id += 1
                lines.append(f"{line_id} {text}")
                where[who] = (place, line_id)
            who = sorted(where)[rng.integers(len(where))]
            line_id += 1
            lines.append(f"{line_id} Where is {who}? \t{where[who][0]}\t{where[who][1]}")
            asked += 1
            if asked == n_questions:
                break
    return "\n".join(lines) + "\n"


def write_babi_root(root: str | Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """A bAbI data root holding only task 1 of the 1k set (en/), as `train babi --data-root` reads it."""
    root = Path(root)
    (root / "en").mkdir(parents=True, exist_ok=True)
    (root / "en" / TASK1_FILE.format(split="train")).write_text(task1_text(n_train, seed), encoding="utf-8")
    (root / "en" / TASK1_FILE.format(split="test")).write_text(task1_text(n_test, seed + 1000), encoding="utf-8")
    return root


def long_story(n: int, seed: int) -> tuple[list[str], dict[str, str]]:
    """n statements and where each person ends up (for a story longer than the memory)."""
    rng = np.random.default_rng(seed)
    sentences, where = [], {}
    for _ in range(n):
        text, who, place = statement(rng)
        sentences.append(text)
        where[who] = place
    return sentences, where


def raw_questions(text: str) -> list[tuple[list[str], str, str]]:
    """(story lines as written, numbers included; question; answer) of every question of a bAbI
    text: what a user would paste, before any tokenisation."""
    out, story = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        number, rest = line.split(" ", 1)
        if number == "1":
            story = []
        if "\t" in rest:
            question, answer = rest.split("\t")[:2]
            out.append((list(story), question.strip(), answer.strip()))
        else:
            story.append(line)
    return out
