"""Search strategies a caller chooses per call: small frozen configs, no behaviour.

The loops (`_loop.pyx`, `reference_loop.py`) read these; they are the whole public
surface of decoding options, in the style of CTranslate2's `translate_batch` arguments.

Every search also takes two keyword-only penalties (defined once, in `_Penalties`):

* repetition_penalty r (1.0 = off, must be > 0): every token already in the row's
  history has its log-prob multiplied by r (CTRL, Keskar et al. 2019, applied to
  log-probs, which are <= 0, so r > 1 makes repeats less likely, r < 1 more likely).
* no_repeat_ngram_size n (0 = off): a token that would complete an n-gram already in the
  history gets log-prob -inf (n = 1: no token twice). When that would ban every token of
  a row, the end token stays allowed.

A row's history is every token of its hypothesis so far (forced prefix tokens included,
the start token excluded). After the penalties each row is renormalised with a
log-softmax (`loop_common.apply_penalties`), and those penalised log-probs are what the
search uses for everything: the greedy choice, beam candidates and scores, sampling,
forced-prefix log-probs and the token_log_probs / log_prob it reports (so a forced token
that repeats a blocked n-gram gets log-prob -inf).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

MAX_BEAM = 256  # wider beams only cost time (a 30,000-wide beam once ran 55 s and took 7.7 GB)


def _int(value, name: str, lo: int, hi: int | None = None, suffix: str = "") -> int:
    """An integer option (bools and floats refused) within [lo, hi], else one ValueError line."""
    try:
        v = operator.index(value)
    except TypeError:
        v = None
    if v is None or isinstance(value, bool) or v < lo or (hi is not None and v > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {bound}{suffix}, got {value!r}")
    return v


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class _Penalties:
    """The keyword-only penalty fields every search shares (see the module docstring)."""

    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0

    def __post_init__(self) -> None:
        r = self.repetition_penalty
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (0 < r < math.inf):
            raise ValueError(f"repetition_penalty must be > 0 and finite (1.0 = off), got {r!r}")
        _int(self.no_repeat_ngram_size, "no_repeat_ngram_size", 0, suffix=" (0 = off)")


@dataclass(frozen=True)
class Greedy(_Penalties):
    """Take the most likely token at every step."""


@dataclass(frozen=True)
class Beam(_Penalties):
    """Beam search over `size` hypotheses per input.

    score = sum(log p) / length ** length_penalty, length counting the end token
    (length_penalty=0 keeps the raw sum). `n_best` hypotheses are returned, best first.
    `early_stop`: an input is finished once `size` hypotheses have ended; otherwise
    the search goes on while a live hypothesis could still beat the worst finished one.
    """

    size: int = 4
    length_penalty: float = 1.0
    n_best: int = 1
    early_stop: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 1 <= self.size <= MAX_BEAM:
            raise ValueError(f"Beam size must be >= 1 and at most {MAX_BEAM}, got {self.size!r}")
        _int(self.n_best, f"n_best (at most the beam size {self.size})", 1, self.size)
        _number(self.length_penalty, "length_penalty")


@dataclass(frozen=True)
class Sample(_Penalties):
    """Sample from the model's distribution, reproducibly when `seed` is set.

    Temperature divides the log-probs; top_k (0 = off) keeps the k most likely tokens;
    top_p (1.0 = off) keeps the smallest set whose probability reaches p.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if _number(self.temperature, "temperature") <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        _int(self.top_k, "top_k", 0, suffix=" (0 = off)")
        if not 0.0 < _number(self.top_p, "top_p") <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.seed is not None:
            _int(self.seed, "seed", 0, 2**63 - 1)


SearchConfig = Greedy | Beam | Sample
