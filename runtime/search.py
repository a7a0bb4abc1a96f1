"""Search strategies a caller chooses per call: small frozen configs, no behaviour.

The loops (`_loop.pyx`, `reference_loop.py`) read these; they are the whole public
surface of decoding options, in the style of CTranslate2's `translate_batch` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Greedy:
    """Take the most likely token at every step."""


@dataclass(frozen=True)
class Beam:
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
        if self.size < 1:
            raise ValueError(f"Beam size must be >= 1, got {self.size}")
        if not 1 <= self.n_best <= self.size:
            raise ValueError(f"n_best must be between 1 and the beam size {self.size}, got {self.n_best}")


@dataclass(frozen=True)
class Sample:
    """Sample from the model's distribution, reproducibly when `seed` is set.

    Temperature divides the log-probs; top_k (0 = off) keeps the k most likely tokens;
    top_p (1.0 = off) keeps the smallest set whose probability reaches p.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


SearchConfig = Greedy | Beam | Sample
