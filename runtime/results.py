"""What a decode returns: hypotheses with text, ids, scores and attention."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Hypothesis:
    """One output sequence.

    ids/tokens exclude the end token; `score` is the length-normalised score the search
    ranked by, `log_prob` the raw sum of token log-probs (end token included);
    `attention` is [len(ids), L] over the source positions (None if the model has none).
    """

    ids: list[int]
    tokens: list[str]
    text: str
    score: float
    log_prob: float
    token_log_probs: list[float] = field(default_factory=list)
    attention: np.ndarray | None = None


@dataclass
class Result:
    """All hypotheses for one input, best first."""

    hypotheses: list[Hypothesis]
    error: str | None = None  # set (and hypotheses empty) when this input could not be read
    labels: list[str] | None = None  # a captioner's label slots (ImageNet names it could copy), best first

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return self.hypotheses[0].text if self.hypotheses else ""

    @property
    def score(self) -> float:
        return self.hypotheses[0].score if self.hypotheses else float("-inf")

    @property
    def attention(self) -> np.ndarray | None:
        """The best hypothesis's attention [words, L] (L = 49 regions of a 7x7 grid for captions)."""
        return self.hypotheses[0].attention if self.hypotheses else None


@dataclass
class TokenEvent:
    """One token as it is produced (streaming): which input, the id, its text, its log-prob.

    forced: True when the token was forced by the decode's `prefix` rather than chosen
    by the search (its log_prob is still the model's).
    Callbacks see the end token too (its own event); the `stream()` iterators never yield it:
    their last event has is_last=True, and finished=True when the output ended with the end
    token right after it (False when it stopped at max_length).
    """

    batch_index: int
    step: int
    id: int
    token: str
    log_prob: float
    is_last: bool
    forced: bool = False
    finished: bool = False


@dataclass
class RawHypothesis:
    """What a search loop hands back before ids become text (both loops return these).

    ids exclude the end token; token_log_probs has one entry per generated token, the end
    token included when the hypothesis ended; attention is [len(ids), L] or None.
    """

    ids: list[int]
    log_prob: float
    score: float
    token_log_probs: list[float]
    attention: np.ndarray | None
    finished: bool = True
