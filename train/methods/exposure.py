"""Exposure bias (the notes' "Mismatch between Train and Test"): what a decoder is fed while it trains.

Teacher forcing feeds the reference word at every step, but at test time the decoder reads its
own previous output, which it has never been trained on ("one wrong step, every step wrong").
`FeedConfig.mode` picks what training feeds:

* "reference"    teacher forcing, every input from the reference (the default);
* "scheduled"    scheduled sampling (Bengio et al. 2015): per row and position, the reference
                 with probability p(step), else the model's own previous prediction (`pick`:
                 "sample" from its softmax, detached, or "argmax"); p follows `schedule` over
                 optimizer steps (`reference_probability`);
* "distribution" the notes' "better idea?": the expected embedding under the previous step's
                 softmax instead of one word. That changes the exported step (it carries the
                 softmax as `state.prev_dist`), so it is the model config's `input_feed`; this
                 mode only says that the run trains such a model.

Schedules (step = optimizer steps done so far, restored on --resume), each floored at `min_p`:

    inverse_sigmoid  p = k / (k + exp(step / k))      k >= 1 (p = 1/2 near step k ln k)
    linear           p = 1 - step / k                  k = steps to reach 0; the paper's
                                                       max(eps, k' - c i) with k' = 1, c = 1/k
    exponential      p = k ** step                     0 < k < 1
    constant         p = `p`                           p = 1: always from the reference (teacher
                                                       forcing), p = 0: always from the model

Every random draw (the per-token Bernoulli, the sample) comes from torch's CPU generator, on CPU
and GPU alike, so a checkpoint's RNG state makes --resume continue bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

FEED_MODES = ("reference", "scheduled", "distribution")
SCHEDULES = ("inverse_sigmoid", "linear", "exponential", "constant")
PICKS = ("sample", "argmax")
INPUT_FEEDS = ("token", "distribution")
DEFAULT_K = {"inverse_sigmoid": 300.0, "linear": 5000.0, "exponential": 0.9995}


@dataclass
class FeedConfig:
    """What the decoder reads at each training step (module docstring).

    k: the schedule's constant (None = DEFAULT_K for the schedule); p: the constant schedule's
    probability; min_p: floor of the decaying schedules; pick: "sample" or "argmax".
    """

    mode: str = "reference"
    schedule: str = "inverse_sigmoid"
    k: float | None = None
    p: float = 1.0
    min_p: float = 0.0
    pick: str = "sample"

    def __post_init__(self) -> None:
        if self.mode not in FEED_MODES:
            raise ValueError(f"feed mode must be one of {', '.join(FEED_MODES)}, got {self.mode!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"scheduled-sampling schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.schedule!r}")
        if self.pick not in PICKS:
            raise ValueError(f"scheduled-sampling pick must be 'sample' or 'argmax', got {self.pick!r}")
        if self.k is None and self.schedule != "constant":
            self.k = DEFAULT_K[self.schedule]
        if self.k is not None:
            self.k = float(self.k)
            if self.schedule == "inverse_sigmoid" and self.k < 1:
                raise ValueError(f"the inverse_sigmoid schedule needs k >= 1 (p = k / (k + exp(step / k))), "
                                 f"got {self.k}")
            if self.schedule == "exponential" and not 0 < self.k < 1:
                raise ValueError(f"the exponential schedule needs 0 < k < 1 (p = k ** step), got {self.k}")
            if self.schedule == "linear" and self.k <= 0:
                raise ValueError(f"the linear schedule needs k > 0 (steps until p reaches 0), got {self.k}")
        for name in ("p", "min_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"scheduled-sampling {name} must be in [0, 1], got {v}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feed_from(value: FeedConfig | dict | None) -> FeedConfig:
    """A FeedConfig from a config field (a dict when read back from config.json; None = default)."""
    if value is None:
        return FeedConfig()
    if isinstance(value, dict):
        return FeedConfig(**value)
    return value


def reference_probability(cfg: FeedConfig, step: int) -> float:
    """p(step): the probability of feeding the reference word (1.0 unless mode is "scheduled")."""
    if cfg.mode != "scheduled":
        return 1.0
    k = cfg.k
    if cfg.schedule == "constant":
        return cfg.p
    if cfg.schedule == "inverse_sigmoid":
        x = step / k
        p = k / (k + math.exp(x)) if x < 700 else 0.0
    elif cfg.schedule == "linear":
        p = 1.0 - step / k
    else:
        p = k ** step
    return min(1.0, max(cfg.min_p, p))


def start_distribution(column: torch.Tensor, vocab_size: int, bos_id: int) -> torch.Tensor:
    """[B, V] one-hot <s>: the first `state.prev_dist` of a distribution-fed decoder.

    `column` is any float [B, 1] tensor of the batch, so the exported encoder keeps B dynamic.
    """
    one_hot = torch.zeros(vocab_size, dtype=column.dtype, device=column.device)
    one_hot[bos_id] = 1.0
    return column * 0 + one_hot


def expected_embedding(prev_dist: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_v p(v) E[v]: the notes' "better idea?" input, [N, V] @ [V, E] -> [N, E]."""
    return prev_dist @ weight


def keep_token_input(logprobs: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """logprobs + 0 * token: a distribution-fed step never reads the token, and the exporter
    drops an input no op reads; the runtime loop feeds one, so it must stay in the graph."""
    return logprobs + (token * 0).unsqueeze(1).to(logprobs.dtype)


StepFn = Callable[[torch.Tensor, dict], tuple[torch.Tensor, torch.Tensor | None, dict]]


def _model_tokens(lp: torch.Tensor, pick: str, u: torch.Tensor) -> torch.Tensor:
    """The model's own next input from its log-probs lp [B, V]: argmax, or a sample drawn by
    inverse CDF from the uniform u [B] (so the draw is CPU-generator-seeded on any device)."""
    lp = lp.detach()
    if pick == "argmax":
        return lp.argmax(dim=1)
    cdf = lp.exp().cumsum(dim=1)
    ids = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1).contiguous()).squeeze(1)
    return ids.clamp_(max=lp.size(1) - 1)


def unroll(step_fn: StepFn, tgt_in: torch.Tensor, states: dict, feed: FeedConfig | None = None, step: int = 0,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run `step_fn(token [B], states) -> (logprobs [B, V], attention [B, L] or None, states)` over
    the T target positions; returns (logprobs [B, T, V], attention [B, T, L] or None).

    Position t reads tgt_in[:, t] (teacher forcing) unless the feed is "scheduled": then, for
    t >= 1 and each non-pad position, the reference with probability p(step), else the model's
    prediction from position t-1. Draws come from `generator` (default: torch's global CPU RNG).
    """
    B, T = tgt_in.shape
    p = reference_probability(feed, step) if feed is not None else 1.0
    mixed = p < 1.0 and T > 1
    if mixed:
        u = torch.rand(2, B, T, generator=generator).to(tgt_in.device)  # [choice, sample] uniforms
        from_ref = (u[0] < p) | (tgt_in == 0)
    lps, atts = [], []
    token = tgt_in[:, 0]
    for t in range(T):
        lp, alpha, states = step_fn(token, states)
        lps.append(lp)
        if alpha is not None:
            atts.append(alpha)
        if t + 1 < T:
            token = tgt_in[:, t + 1]
            if mixed:
                token = torch.where(from_ref[:, t + 1], token, _model_tokens(lp, feed.pick, u[1, :, t + 1]))
    return torch.stack(lps, 1), (torch.stack(atts, 1) if atts else None)


def feed_metrics(feed: FeedConfig, step: int) -> dict[str, float]:
    """{"ss_p": p at `step`} under scheduled sampling (what metrics.jsonl logs per epoch), else {}."""
    return {"ss_p": reference_probability(feed, step)} if feed.mode == "scheduled" else {}


def check_feed(feed: FeedConfig, input_feed: str) -> None:
    """The training feed and the model's input_feed must agree: a distribution-fed step reads no token."""
    if feed.mode == "distribution" and input_feed != "distribution":
        raise ValueError("feed mode 'distribution' trains a model fed distributions: set the model's "
                         "input_feed='distribution' (the CLI's --feed distribution does)")
    if input_feed == "distribution" and feed.mode != "distribution":
        raise ValueError(f"a model with input_feed='distribution' reads no token, so feed mode {feed.mode!r} "
                         "cannot apply: use feed mode 'distribution'")
