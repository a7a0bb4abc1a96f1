"""What the two search loops share, so that they cannot drift apart.

Both `reference_loop.decode` (plain Python + numpy, the readable one) and the compiled
`_loop.decode` call these helpers for everything that is not per-step bookkeeping:
initial states, the TopK width per search, sampling one token per row, forced-prefix
validation, the repetition / n-gram penalties, the host-side TopK used when penalties
are on, and timings. Sampling and the penalties in particular are vectorised numpy
functions used by both loops, so the same seed draws the same tokens in both.
"""

from __future__ import annotations

import functools

import operator
import os
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import InputError
from .manifest import MAX_LENGTH_CEILING, Manifest, StateSpec, state_input
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
    """(B, L): batch size and memory length, from the manifest's memory_length_from tensor.

    A model without memory (a decoder-only generator) has L = 0 and takes B from its
    first encoder-initialised state.
    """
    if not manifest.memory:
        first = next(s.name for s in manifest.state if s.init == "encoder")
        return int(encoder_outputs[state_input(first)].shape[0]), 0
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


def has_penalties(search) -> bool:
    """Whether `search` asks for a repetition penalty or n-gram blocking (see search.py)."""
    return search.repetition_penalty != 1.0 or search.no_repeat_ngram_size > 0


def check_prefix(prefix, batch: int, vocab_size: int, eos: int, max_length: int,
                 min_length: int) -> list[list[int]] | None:
    """Validate a forced prefix (one id list per batch item); the ids as plain int lists.

    Returns None when there is nothing to force (prefix None or every list empty), so
    the loops take their usual path. ValueError when the number of lists is not the
    batch size, an id is not in the vocabulary, the end token appears before the last
    position, a prefix is longer than max_length, or a prefix ending with the end token
    is shorter than min_length (it would end the output before min_length).
    """
    if prefix is None:
        return None
    if isinstance(prefix, (str, bytes)) or not hasattr(prefix, "__len__"):
        raise TypeError(f"prefix must be a list of token id lists, one per batch item, got {type(prefix).__name__}")
    if len(prefix) != batch:
        raise ValueError(f"prefix has {len(prefix)} id lists for a batch of {batch} inputs: pass one list per input "
                         "(an empty list forces nothing)")
    out: list[list[int]] = []
    for b, ids in enumerate(prefix):
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            raise TypeError(f"prefix[{b}] must be a list of token ids, got {type(ids).__name__}")
        try:
            ids = [operator.index(x) for x in ids]
        except TypeError:
            raise TypeError(f"prefix[{b}] must hold integer token ids, got {list(ids)!r}") from None
        if len(ids) > max_length:
            raise ValueError(f"prefix[{b}] has {len(ids)} tokens, more than max_length={max_length}")
        for pos, x in enumerate(ids):
            if not 0 <= x < vocab_size:
                raise ValueError(f"prefix[{b}][{pos}] = {x} is not a token id (the vocabulary has {vocab_size})")
            if x == eos and pos != len(ids) - 1:
                raise ValueError(f"prefix[{b}] has the end token {eos} at position {pos}, before its last token: "
                                 "the end token may only end a prefix")
        if ids and ids[-1] == eos and len(ids) < min_length:
            raise ValueError(f"prefix[{b}] ends with the end token after {len(ids)} tokens, below "
                             f"min_length={min_length}")
        out.append(ids)
    return out if any(out) else None


def apply_penalties(logprobs: np.ndarray, history: np.ndarray, search, eos: int,
                    out: np.ndarray | None = None) -> np.ndarray:
    """The repetition penalty and n-gram blocking of `search` applied to `logprobs` [N, V].

    history: int64 [N, T], row i's tokens so far (all rows of a step have the same T).
    Tokens in a row's history get log p * repetition_penalty; with no_repeat_ngram_size
    n > 0, a token completing an n-gram already in the history gets -inf (when that bans
    every token of a row, the end token stays allowed); each row is then renormalised
    with a log-softmax (float32 values, the normaliser summed in float64). Returns
    float32 [N, V]: a new array, or `out` when given (`out` may be `logprobs` itself,
    which the compiled loop uses to rewrite its logprobs buffer in place).
    """
    if out is None:
        x = np.array(logprobs, dtype=np.float32)
    else:
        x = out
        if x is not logprobs:
            np.copyto(x, logprobs)
    N, V = x.shape
    hist = np.asarray(history, dtype=np.int64).reshape(N, -1)
    T = hist.shape[1]
    r = float(search.repetition_penalty)
    if r != 1.0 and T:
        rows, cols = np.repeat(np.arange(N), T), hist.ravel()
        x[rows, cols] = x[rows, cols] * np.float32(r)  # a token seen twice is still penalised once
    n = int(search.no_repeat_ngram_size)
    if n > 0 and T >= n:
        win = sliding_window_view(hist, n, axis=1)  # [N, T-n+1, n]: every n-gram of the history
        if n > 1:
            match = (win[:, :, :-1] == hist[:, None, T - n + 1:]).all(axis=2)  # its first n-1 = the last n-1
        else:
            match = np.ones(win.shape[:2], dtype=bool)
        rows, at = np.nonzero(match)
        toks = win[rows, at, n - 1]
        keep = np.ones(len(rows), dtype=bool)
        for i in np.flatnonzero(np.bincount(rows, minlength=N) >= V):  # could every token be banned?
            if np.unique(toks[rows == i]).size == V:
                keep &= (rows != i) | (toks != eos)
        x[rows[keep], toks[keep]] = -np.inf
    x -= x.max(axis=1, keepdims=True)
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True, dtype=np.float64)).astype(np.float32)
    return x


def host_topk(logprobs: np.ndarray, K: int, out_lp: np.ndarray | None = None,
              out_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The K best (log-prob, id) pairs of each row of `logprobs` [N, V], best first.

    Ties go to the lower id, as the step graph's TopK orders them. Used instead of the
    graph's TopK outputs when penalties change the log-probs; written into the first N
    rows of out_lp [>= N, K] / out_ids [>= N, K] when given (the loop's TopK buffers).
    """
    x = np.asarray(logprobs)
    N, V = x.shape
    idx = None
    if K < V:
        kth = np.partition(x, V - K, axis=1)[:, V - K]  # each row's K-th largest value
        rows, cols = np.nonzero(x >= kth[:, None])  # K or more per row (ties), ids ascending
        order = np.lexsort((cols, -x[rows, cols], rows))  # by row, then value down, then id up
        rows, cols = rows[order], cols[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position inside its row
        if np.count_nonzero(rank < K) == N * K:  # else NaNs: fall through to the plain sort
            idx = cols[rank < K].reshape(N, K)
    if idx is None:
        idx = np.argsort(-x, axis=1, kind="stable")[:, :K]
    lp = np.take_along_axis(x, idx, axis=1)
    if out_lp is None:
        return lp.astype(np.float32), idx.astype(np.int64)
    out_lp[:N] = lp
    out_ids[:N] = idx
    return out_lp[:N], out_ids[:N]


def decode_bytes(manifest: Manifest, rows: int, length: int, max_length: int) -> int:
    """Memory one decode of `rows` rows (batch x beam) needs at the least: every state twice (the
    loop double-buffers them), the step's log-probs and the host's copy of them, and each row's
    token history."""
    per_row = 0
    for s in manifest.state:
        n = 1
        for d in s.shape[1:]:
            n *= length if d == "L" else int(d)
        per_row += 2 * n * np.dtype(NP_DTYPES[s.dtype]).itemsize
    per_row += 2 * 4 * manifest.tokens.size + 8 * max_length
    return rows * per_row


def memory_budget() -> int:
    """Bytes a single decode may plan to use: half of this machine's memory (8 GiB when unknown),
    or EDGE_S2S_MAX_DECODE_BYTES."""
    env = os.environ.get("EDGE_S2S_MAX_DECODE_BYTES")
    if env and env.isdigit():
        return int(env)
    return _physical_memory() // 2


@functools.lru_cache(maxsize=1)
def _physical_memory() -> int:
    """This machine's memory in bytes (16 GiB when unknown); asked once (a sysconf per decode cost ~15 us)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def check_decode(manifest: Manifest, encoder_outputs: dict[str, np.ndarray], search, max_length: int | None) -> int:
    """Refuse, before the first step, a decode that could not finish: max_length beyond the stated
    ceiling (MAX_LENGTH_CEILING; the bundle's own max_length is the default), or batch x beam rows
    whose states would not fit in memory. Returns the max_length used."""
    ml = manifest.max_length if max_length is None else max_length
    if isinstance(ml, bool) or not isinstance(ml, (int, np.integer)) or not 1 <= ml <= MAX_LENGTH_CEILING:
        raise InputError(f"max_length must be an integer from 1 to {MAX_LENGTH_CEILING} (this bundle's default is "
                         f"{manifest.max_length}), got {ml!r}")
    B, L = batch_and_length(manifest, encoder_outputs)
    rows = B * (search.size if isinstance(search, Beam) else 1)
    need, budget = decode_bytes(manifest, rows, L, int(ml)), memory_budget()
    if need > budget:
        raise InputError(f"{B} inputs x {rows // max(B, 1)} beams need about {need / 2**30:.1f} GiB for the decoder "
                         f"state, more than the {budget / 2**30:.1f} GiB allowed: use a smaller batch or beam")
    return int(ml)
