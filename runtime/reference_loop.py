"""The reference search loop: plain Python + numpy, written to be read.

It defines the semantics the compiled loop (`_loop.pyx`) reproduces token for token,
and it is what the exporter's parity check runs with a PyTorch step function.

`step` is any callable taking the step graph's inputs by name and returning its outputs
by name (for ONNX Runtime: a thin wrapper around `session.run`). Step 0 has one row per
batch item fed the start token; after that `row` says which previous row each new row
continues, and the step Gathers every state with it, so beam reorder and the start-up
expansion never copy state here. Rows of finished inputs are dropped from the next step;
`batch_of_row` keeps pointing into the full encoder memory.

Searches (lengths count the end token):

* Greedy: the best token of each row; while the length is below min_length the end token
  is skipped (the runner-up is taken). A row stops at the end token or at max_length.
* Sample: one token per row drawn by `loop_common.sample_rows` (temperature, top-k,
  top-p) from uniforms drawn once per step in row order from PCG64(seed).
  Scores are the model's own log-probs (not tempered).
* Beam (fairseq): each item's candidates are live_sum[row] + topk_logprobs[row, j],
  sorted best first, ties by lower row then lower j; of the best 2*size, an end-token
  candidate among the first `size` finishes a hypothesis (score = sum / length**lp;
  skipped below min_length), and the first `size` other candidates live on.
  early_stop: an item is done once `size` hypotheses finished. Otherwise the finished set
  keeps the best `size` and the item is done when the best live sum / length**lp cannot
  beat the worst of them. At max_length live hypotheses fill up to n_best as unfinished.

Penalties (`repetition_penalty`, `no_repeat_ngram_size`, see search.py): when either is
on, every step's log-probs go through `loop_common.apply_penalties` with each row's
history (its tokens so far, forced ones included, <s> excluded) before anything reads
them, and greedy / beam take their top-K from those penalised log-probs with
`loop_common.host_topk` instead of the step graph's TopK outputs.

Forced prefix (`prefix`, one id list per batch item, checked by `loop_common.check_prefix`):
at step t < len(prefix[b]) item b's token is prefix[b][t] whatever the search, with its
log-prob read from the step's (penalised) `logprobs`; it counts in the sum, ids and
token_log_probs like any token, and min_length counts it. An item keeps exactly one row
while it is in its prefix (beam search expands from that row afterwards: at the first
free step the item's candidates are the top-K of its single row, as at step 0). The end
token may only be a prefix's last token: the hypothesis then finishes there (finished,
score = sum / length**lp for beam), which scores a given sequence. Sampling still draws
rng.random(N) once per step for all N rows in row order; a forced row's draw is unused.
Streaming callbacks get forced tokens too, with TokenEvent.forced=True.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .loop_common import (
    Timings,
    apply_penalties,
    batch_and_length,
    check_prefix,
    check_search,
    has_penalties,
    host_topk,
    initial_states,
    make_rng,
    sample_rows,
    topk_width,
)
from .manifest import (
    ATTENTION,
    BATCH_OF_ROW,
    LOGPROBS,
    ROW,
    TOKEN,
    TOPK,
    TOPK_IDS,
    TOPK_LOGPROBS,
    Manifest,
    state_input,
    state_output,
)
from .results import RawHypothesis, TokenEvent
from .search import Beam, Sample

StepFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class _Hyp:
    """A live hypothesis: its item, tokens so far, their log-probs and attention rows."""

    __slots__ = ("item", "ids", "lps", "atts", "sum")

    def __init__(self, item: int, ids: list[int], lps: list[float], atts: list[np.ndarray], total: float):
        self.item, self.ids, self.lps, self.atts, self.sum = item, ids, lps, atts, total


def _raw(h: _Hyp, score: float, finished: bool, attention: int | None) -> RawHypothesis:
    """attention: the memory length L when the model has attention, else None."""
    if attention is None:
        att = None
    else:
        att = np.stack(h.atts) if h.atts else np.zeros((0, attention), np.float32)
    return RawHypothesis(ids=list(h.ids), log_prob=h.sum, score=score, token_log_probs=list(h.lps), attention=att,
                         finished=finished)


def decode(
    manifest: Manifest,
    encoder_outputs: dict[str, np.ndarray],
    step: StepFn,
    search,
    max_length: int | None = None,
    min_length: int = 0,
    callback: Callable[[TokenEvent], bool | None] | None = None,
    tokens: Sequence[str] | None = None,
    timings: Timings | None = None,
    prefix: Sequence[Sequence[int]] | None = None,
) -> list[list[RawHypothesis]]:
    """Run the search; one list of hypotheses per batch item, best first.

    tokens: the vocabulary, only used to fill TokenEvent.token for the callback.
    timings: when given, filled with per-step `step` times and the total loop time.
    prefix: one list of token ids per batch item forced at its first steps (see the
    module docstring); None or empty lists force nothing.
    """
    max_length = manifest.max_length if max_length is None else int(max_length)
    check_search(search, callback, max_length, min_length)
    t_start = time.perf_counter_ns()
    B, L = batch_and_length(manifest, encoder_outputs)
    V = manifest.tokens.size
    bos, eos = manifest.tokens.bos_id, manifest.tokens.eos_id
    prefix = check_prefix(prefix, B, V, eos, max_length, min_length)
    K = topk_width(search, V, min_length)
    fixed = {name: encoder_outputs[name] for name in manifest.memory}
    fixed[TOPK] = np.array([K], dtype=np.int64)
    states = initial_states(manifest, encoder_outputs)

    def run(token, row, live: list[_Hyp]):
        feeds = dict(fixed)
        feeds[TOKEN] = np.asarray(token, dtype=np.int64)
        feeds[ROW] = np.asarray(row, dtype=np.int64)
        feeds[BATCH_OF_ROW] = np.array([h.item for h in live], dtype=np.int64)
        for name, value in states.items():
            feeds[state_input(name)] = value
        t0 = time.perf_counter_ns() if timings is not None else 0
        out = step(feeds)
        if timings is not None:
            timings.step_ns.append(time.perf_counter_ns() - t0)
        for name in states:
            states[name] = out[state_output(name)]
        return out

    att_len = L if manifest.attention else None
    live = [_Hyp(b, [], [], [], 0.0) for b in range(B)]
    token = [bos] * B
    row = list(range(B))
    if isinstance(search, Beam):
        results = _beam(manifest, search, run, live, token, row, B, max_length, min_length, eos, att_len, prefix)
    else:
        results = _one_per_row(manifest, search, run, live, token, row, B, max_length, min_length, eos, callback,
                               tokens, att_len, prefix)
    if timings is not None:
        timings.total_ns += time.perf_counter_ns() - t_start
    return results


def _step_logprobs(out, search, live: list[_Hyp], t: int, eos: int, penalised: bool) -> np.ndarray:
    """The step's log-probs [N, V], with the search's penalties applied when it has any."""
    logprobs = np.asarray(out[LOGPROBS])
    if penalised:
        history = np.array([h.ids for h in live], dtype=np.int64).reshape(len(live), t)
        logprobs = apply_penalties(logprobs, history, search, eos)
    return logprobs


def _topk(out, logprobs: np.ndarray, K: int, penalised: bool) -> tuple[np.ndarray, np.ndarray]:
    """(top_ids, top_lps): the graph's TopK outputs, or the host's over penalised log-probs."""
    if penalised:
        top_lps, top_ids = host_topk(logprobs, K)
        return top_ids, top_lps
    return out[TOPK_IDS], out[TOPK_LOGPROBS]


def _forced(prefix, h: _Hyp, t: int) -> int:
    """The token forced on hypothesis h at step t, or -1 when it is free."""
    if prefix is None:
        return -1
    p = prefix[h.item]
    return p[t] if t < len(p) else -1


def _one_per_row(manifest, search, run, live, token, row, B, max_length, min_length, eos, callback, tokens, att_len,
                 prefix):
    """Greedy and sampling: every item has one row, which stops at the end token."""
    results: list[list[RawHypothesis]] = [[] for _ in range(B)]
    rng = make_rng(search) if isinstance(search, Sample) else None
    penalised = has_penalties(search)
    K = topk_width(search, manifest.tokens.size, min_length)
    for t in range(max_length):
        out = run(token, row, live)
        length = t + 1
        forbid = eos if length < min_length else -1
        N = len(live)
        logprobs = _step_logprobs(out, search, live, t, eos, penalised)
        if rng is not None:
            uniforms = rng.random(N)  # all N rows, forced or not
            ids = [int(x) for x in sample_rows(logprobs, search, uniforms, forbid)]
            lps = [float(logprobs[i, ids[i]]) for i in range(N)]
        else:
            top_ids, top_lps = _topk(out, logprobs, K, penalised)
            ids, lps = [], []
            for i in range(N):
                j = 1 if (forbid >= 0 and int(top_ids[i, 0]) == forbid and top_ids.shape[1] > 1) else 0
                ids.append(int(top_ids[i, j]))
                lps.append(float(top_lps[i, j]))
        forced = [False] * N
        if prefix is not None:
            for i, h in enumerate(live):
                f = _forced(prefix, h, t)
                if f >= 0:
                    ids[i], lps[i], forced[i] = f, float(logprobs[i, f]), True
        att = out[ATTENTION] if manifest.attention else None
        next_live, token, row = [], [], []
        for i, h in enumerate(live):
            tok, lp = int(ids[i]), lps[i]
            h.sum += lp
            h.lps.append(lp)
            ended = tok == eos
            if not ended:
                h.ids.append(tok)
                if att is not None:
                    h.atts.append(np.array(att[i], dtype=np.float32))
            last = ended or length == max_length
            if callback is not None:
                ev = TokenEvent(batch_index=h.item, step=t, id=tok, token=tokens[tok] if tokens is not None else "",
                                log_prob=lp, is_last=last, forced=forced[i])
                if callback(ev) is True and not last:
                    last = True
            if last:
                results[h.item] = [_raw(h, h.sum, ended, att_len)]
            else:
                next_live.append(h)
                token.append(tok)
                row.append(i)
        live = next_live
        if not live:
            break
    return results


def _beam(manifest, search: Beam, run, live, token, row, B, max_length, min_length, eos, att_len, prefix):
    size, lp_pen = search.size, search.length_penalty
    finished: list[list[tuple[float, RawHypothesis]]] = [[] for _ in range(B)]
    penalised = has_penalties(search)
    K = topk_width(search, manifest.tokens.size, min_length)
    for t in range(max_length):
        out = run(token, row, live)
        length = t + 1
        norm = length ** lp_pen
        logprobs = _step_logprobs(out, search, live, t, eos, penalised) if penalised or prefix is not None else None
        top_ids, top_lps = _topk(out, logprobs, K, penalised)
        att = out[ATTENTION] if manifest.attention else None
        next_live, token, row = [], [], []
        # The rows of one item are contiguous and items come in increasing order.
        by_item: dict[int, list[int]] = {}
        for i, h in enumerate(live):
            by_item.setdefault(h.item, []).append(i)
        for b, rows in by_item.items():
            f = _forced(prefix, live[rows[0]], t)
            if f >= 0:  # in its prefix, an item has one row and one candidate (j = -1: forced)
                cands = [(live[rows[0]].sum + float(logprobs[rows[0], f]), rows[0], -1)]
            else:
                cands = [(live[r].sum + float(top_lps[r, j]), r, j) for r in rows for j in range(K)]
                cands = sorted(cands, key=lambda c: -c[0])[: 2 * size]  # stable: ties keep (row, j) order
            fin = finished[b]
            kept: list[_Hyp] = []
            for rank, (total, r, j) in enumerate(cands):
                if j < 0:
                    tok, lp = f, float(logprobs[r, f])
                else:
                    tok, lp = int(top_ids[r, j]), float(top_lps[r, j])
                parent = live[r]
                if tok == eos:
                    if j >= 0 and (rank >= size or length < min_length):
                        continue
                    h = _Hyp(b, list(parent.ids), parent.lps + [lp], list(parent.atts), total)
                    score = total / norm
                    if len(fin) < size:
                        fin.append((score, _raw(h, score, True, att_len)))
                    elif not search.early_stop:
                        w = _worst(fin)
                        if score > fin[w][0]:
                            fin[w] = (score, _raw(h, score, True, att_len))
                elif len(kept) < size:
                    atts = parent.atts + [np.array(att[r], dtype=np.float32)] if att is not None else []
                    kept.append(_Hyp(b, parent.ids + [tok], parent.lps + [lp], atts, total))
                    row.append(r)
                    token.append(tok)
            done = not kept or length == max_length
            if len(fin) >= size:
                if search.early_stop:
                    done = True
                elif kept and max(h.sum for h in kept) / norm <= fin[_worst(fin)][0]:
                    done = True
            if done:
                if length == max_length:
                    for h in kept:
                        if len(fin) >= search.n_best:
                            break
                        fin.append((h.sum / norm, _raw(h, h.sum / norm, False, att_len)))
                del row[len(row) - len(kept):]
                del token[len(token) - len(kept):]
            else:
                next_live.extend(kept)
        live = next_live
        if not live:
            break
    results = []
    for fin in finished:
        ranked = sorted(fin, key=lambda f: -f[0])  # stable
        results.append([raw for _, raw in ranked[: search.n_best]])
    return results


def _worst(fin: list[tuple[float, RawHypothesis]]) -> int:
    """Index of the lowest score, the last one on ties (it ranks last in a stable sort)."""
    w = 0
    for i in range(1, len(fin)):
        if fin[i][0] <= fin[w][0]:
            w = i
    return w


def ort_step(session, output_names: list[str] | None = None) -> StepFn:
    """Wrap an onnxruntime.InferenceSession as a `step` function (outputs by name)."""
    names = output_names or [o.name for o in session.get_outputs()]

    def step(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, feeds)))

    return step
