"""The Neural Turing Machine's algorithmic tasks (Graves et al. 2014, Section 4) as token sequences.

An 8-bit pattern is one of 256 symbols, so a task runs through the ordinary token loop:
the input is fed as a forced prefix ending with a delimiter, then the model writes the
output and the end token.

    copy                 x1 .. xn <delim>                      -> x1 .. xn </s>
    associative recall   <item> a1 a2 a3 <item> b1 b2 b3 ... <query> q1 q2 q3 <delim>
                                                                -> (the item after q) </s>

Vocabulary: the 4 specials, the 256 patterns ("00".."ff", id 4 + value), then <delim>,
<item>, <query>. `bit_errors` counts wrong bits per sequence (the paper's measure): a
missing or extra pattern counts all its 8 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...runtime.text import SPECIALS, Vocab

BITS = 8
PATTERN0 = len(SPECIALS)  # id of pattern 0
DELIM, ITEM, QUERY = "<delim>", "<item>", "<query>"
TASKS = ("copy", "recall")


def task_vocab() -> Vocab:
    """Specials, the 256 8-bit patterns as two hex digits, then the three markers."""
    return Vocab(list(SPECIALS) + [f"{v:02x}" for v in range(2**BITS)] + [DELIM, ITEM, QUERY])


@dataclass(frozen=True)
class TaskExample:
    """prefix: forced input ids (ending with <delim>); target: the ids to write (ending with </s>)."""

    prefix: list[int]
    target: list[int]


def _patterns(rng: np.random.Generator, n: int) -> list[int]:
    return (rng.integers(0, 2**BITS, n) + PATTERN0).tolist()


def copy_example(rng: np.random.Generator, length: int, vocab: Vocab) -> TaskExample:
    """Copy: `length` random patterns, a delimiter, then the same patterns."""
    if length < 1:
        raise ValueError(f"copy length must be >= 1, got {length}")
    xs = _patterns(rng, length)
    return TaskExample(xs + [vocab.index[DELIM]], xs + [vocab.eos_id])


def recall_example(rng: np.random.Generator, n_items: int, vocab: Vocab, item_length: int = 3) -> TaskExample:
    """Associative recall: `n_items` items of `item_length` patterns; the query is one of the
    first n_items - 1 items and the answer is the item that followed it."""
    if n_items < 2:
        raise ValueError(f"associative recall needs at least 2 items, got {n_items}")
    items = [_patterns(rng, item_length) for _ in range(n_items)]
    q = int(rng.integers(0, n_items - 1))
    prefix: list[int] = []
    for it in items:
        prefix += [vocab.index[ITEM], *it]
    prefix += [vocab.index[QUERY], *items[q], vocab.index[DELIM]]
    return TaskExample(prefix, items[q + 1] + [vocab.eos_id])


def make_example(task: str, rng: np.random.Generator, size: int, vocab: Vocab) -> TaskExample:
    """size: the copy length, or the number of recall items."""
    if task == "copy":
        return copy_example(rng, size, vocab)
    if task == "recall":
        return recall_example(rng, size, vocab)
    raise ValueError(f"unknown NTM task {task!r}: use one of {', '.join(TASKS)}")


def curriculum_size(step: int, lo: int, hi: int, steps_per_size: int, rng: np.random.Generator) -> int:
    """Curriculum on length: the largest allowed size grows by one every `steps_per_size`
    steps from `lo` to `hi`; each example draws uniformly up to that size (so short
    sequences keep being seen)."""
    top = min(hi, lo + step // max(steps_per_size, 1))
    return int(rng.integers(lo, top + 1))


def bit_errors(predicted: list[int], target: list[int]) -> int:
    """Wrong bits of one output sequence (end tokens ignored); a missing or extra pattern,
    or a non-pattern token where a pattern belongs, costs all 8 bits."""
    eos = Vocab.eos_id
    p, t = [i for i in predicted if i != eos], [i for i in target if i != eos]
    errors = 0
    for k in range(max(len(p), len(t))):
        a = p[k] - PATTERN0 if k < len(p) else None
        b = t[k] - PATTERN0 if k < len(t) else None
        if a is None or b is None or not (0 <= a < 2**BITS) or not (0 <= b < 2**BITS):
            errors += BITS
        else:
            errors += bin(a ^ b).count("1")
    return errors


def bit_inputs(vocab: Vocab) -> torch.Tensor:
    """[V, 8 + markers]: each token as the paper feeds it (Section 4.1), its 8 bits as +-1
    channels (0 for a non-pattern) plus one channel per non-pattern token (<delim> is the
    paper's extra delimiter channel). With these inputs every pattern shares the weights
    that read its bits, instead of 256 embeddings each seen 1/256 of the time."""
    others = [i for i in range(len(vocab)) if not PATTERN0 <= i < PATTERN0 + 2**BITS]
    table = torch.zeros(len(vocab), BITS + len(others))
    for v in range(2**BITS):
        table[PATTERN0 + v, :BITS] = torch.tensor([1.0 if v >> b & 1 else -1.0 for b in range(BITS)])
    for k, i in enumerate(others):
        table[i, BITS + k] = 1.0
    return table
