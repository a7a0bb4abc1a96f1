"""What the two search loops share, so that they cannot drift apart.

Both `reference_loop.decode` (plain Python + numpy, the readable one) and the compiled
`_loop.decode` call these helpers for everything that is not per-step bookkeeping:
initial states, the TopK width per search, sampling one token per row, and timings.
Sampling in particular is one vectorised numpy function used by both loops, so the same
seed draws the same tokens in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .manifest import Manifest, StateSpec, state_input
from .search import Beam, Greedy, Sample

NP_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
}


@dataclass
class Timings:
    """Per-stage wall times of one decode, in nanoseconds (filled only when asked for).

    encoder_ns: one entry per encoder run; step_ns: one entry per step-graph run (the raw
    ORT time, the floor a loop can reach); total_ns: the whole search loop, bookkeeping
    included (encoder excluded), summed over the decodes it was passed to.
    """

    encoder_ns: list[int] = field(default_factory=list)
    step_ns: list[int] = field(default_factory=list)
    total_ns: int = 0

    @property
    def loop_overhead_ns(self) -> int:
        """Time the loop spent outside the step graph."""
        return self.total_ns - sum(self.step_ns)


def batch_and_length(manifest: Manifest, encoder_outputs: dict[str, np.ndarray]) -> tuple[int, int]:
    """(B, L): batch size and memory length, from the manifest's memory_length_from tensor."""
    ref = encoder_outputs[manifest.memory_length_from]
    return int(ref.shape[0]), int(ref.shape[1])


def _dims(spec: StateSpec, rows: int, length: int) -> tuple[int, ...]:
    dims = []
    for d in spec.shape:
        if d == "N":
            dims.append(rows)
        elif d == "L":
            dims.append(length)
        elif isinstance(d, int):
            dims.append(d)
        else:
            raise ValueError(f"state.{spec.name}: unknown symbolic dim {d!r} (use 'N', 'L' or an int)")
    return tuple(dims)


def initial_states(manifest: Manifest, encoder_outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """state name -> its value before step 0, [B, ...] (encoder output or constant)."""
    B, L = batch_and_length(manifest, encoder_outputs)
    states = {}
    for s in manifest.state:
        if s.init == "encoder":
            states[s.name] = np.ascontiguousarray(encoder_outputs[state_input(s.name)])
        else:
            states[s.name] = np.full(_dims(s, B, L), float(s.init), dtype=NP_DTYPES[s.dtype])
    return states


def check_search(search, callback, max_length: int, min_length: int) -> None:
    if not isinstance(search, (Greedy, Beam, Sample)):
        raise TypeError(f"search must be Greedy(), Beam(...) or Sample(...), got {type(search).__name__}")
    if isinstance(search, Beam) and callback is not None:
        raise ValueError("beam search does not stream (hypotheses change until the end): use Greedy() or Sample() with a callback")
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if min_length < 0 or min_length > max_length:
        raise ValueError(f"min_length must be between 0 and max_length={max_length}, got {min_length}")


def topk_width(search, vocab_size: int, min_length: int) -> int:
    """K passed to the step graph's TopK for this search."""
    if isinstance(search, Beam):
        return min(2 * search.size, vocab_size)
    if isinstance(search, Greedy):
        # The runner-up is needed while min_length forbids the end token.
        return min(2, vocab_size) if min_length > 1 else 1
    return 1  # sampling reads the full log-probs


def make_rng(search: Sample) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(search.seed))


def sample_rows(logprobs: np.ndarray, search: Sample, uniforms: np.ndarray, forbid_id: int) -> np.ndarray:
    """Draw one token per row of `logprobs` [N, V] with temperature, top-k and top-p.

    uniforms: [N] draws in [0, 1), one per row in row order. forbid_id >= 0 removes that
    token (the end token before min_length). Returns int64 ids [N].
    """
    x = logprobs.astype(np.float64) / search.temperature
    if forbid_id >= 0:
        x[:, forbid_id] = -np.inf
    order = np.argsort(-x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    p = np.exp(xs - xs[:, :1])  # the best token has weight 1, so at least one survives
    if search.top_k > 0:
        p[:, search.top_k:] = 0.0
    if search.top_p < 1.0:
        total = p.sum(axis=1, keepdims=True)
        before = (np.cumsum(p, axis=1) - p) / total  # mass strictly before each token
        p[before >= search.top_p] = 0.0  # keep the smallest prefix reaching top_p
    cdf = np.cumsum(p, axis=1)
    target = uniforms[:, None] * cdf[:, -1:]
    pick = (cdf <= target).sum(axis=1)
    # Never land on a zero-weight tail token (u * total can round up to total).
    last_nonzero = (p > 0).sum(axis=1) - 1
    pick = np.minimum(pick, last_nonzero)
    return order[np.arange(len(order)), pick].astype(np.int64)
