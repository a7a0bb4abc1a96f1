"""Prove that the exported graphs compute what the PyTorch model computes.

Two checks, both on held-out inputs at sizes different from the export example
(B=2, S=5, N=3, K=3):

* `step_parity`: encoder and decoder step in ONNX Runtime vs PyTorch on the same inputs,
  step by step, with beam-like row reordering (N = B x beams rows, `row` permuted) and a
  different K. Every output (log-probs, top-k, attention, states) must agree within `tol`.
* `search_parity`: whole decodes. The runtime's `Seq2Seq` (compiled loop on ORT) against
  `runtime.reference_loop.decode` driven by the PyTorch model, for greedy and beam search:
  tokens identical, sequence log-probs within `tol`.

Failing parity raises ParityError naming what differed and by how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime import manifest as mf
from ..runtime.errors import EdgeS2SError
from ..runtime.loop_common import NP_DTYPES
from ..runtime.manifest import Manifest
from ..runtime.reference_loop import decode
from ..runtime.search import Beam, Greedy
from ..train.core.torch_step import pad_ids, torch_encode_fn, torch_step_fn
from ..train.translate.model import Translator
from .graphs import ort_session

TOL = 1e-4


class ParityError(EdgeS2SError):
    """The exported graphs do not reproduce the PyTorch model."""


def _maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
        return 0.0 if np.array_equal(a, b) else float("inf")
    if not a.size:
        return 0.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    same = a == b  # equal infinities (blocked tokens' -inf log-probs) differ by 0, not nan
    with np.errstate(invalid="ignore"):
        return float(np.max(np.where(same, 0.0, np.abs(a - b))))


def step_parity(model: Translator, encoder_path: str | Path, step_path: str | Path, id_lists: list[list[int]],
                steps: int = 6, beams: int = 3, k: int = 5, tol: float | None = TOL) -> dict:
    """Run encoder + `steps` decoder steps in ORT and torch; returns max differences per output.

    tol=None reports without raising (int8 bundles).
    """
    model.eval()
    src, lengths = pad_ids(id_lists)
    report = graph_parity(model, encoder_path, step_path, {"src": src, "src_lengths": lengths},
                          torch_encode_fn(model)(src, lengths), steps, beams, k, tol)
    return {"source_lengths": [int(x) for x in lengths], **report}


def graph_parity(model, encoder_path: str | Path, step_path: str | Path, encoder_feeds: dict[str, np.ndarray],
                 t_enc: dict[str, np.ndarray], steps: int = 6, beams: int = 3, k: int = 5,
                 tol: float | None = TOL) -> dict:
    """Any `DecoderContract` model: encoder on `encoder_feeds` in ORT vs `t_enc` (the torch
    encoder's outputs on the same input), then `steps` beam-like steps through both."""
    enc_sess, step_sess = ort_session(encoder_path), ort_session(step_path)
    B = int(next(iter(t_enc.values())).shape[0])
    enc_names = [o.name for o in enc_sess.get_outputs()]
    o_enc = dict(zip(enc_names, enc_sess.run(enc_names, encoder_feeds)))
    diffs: dict[str, float] = {}
    for name in model.encoder_output_names():
        diffs[f"encoder.{name}"] = _maxdiff(o_enc[name], t_enc[name])

    step_fn = torch_step_fn(model)
    step_out_names = [o.name for o in step_sess.get_outputs()]
    V = model.vocab_size
    K = min(k, V)
    specs = model.state_specs()

    def init(enc):
        st = {}
        for s in specs:
            if s.init == "encoder":
                st[s.name] = enc[mf.state_input(s.name)]
            else:
                st[s.name] = np.full((B, *s.shape[1:]), float(s.init), NP_DTYPES[s.dtype])
        return st

    t_st, o_st = init(t_enc), init(o_enc)
    N = B * beams
    batch_of_row = np.repeat(np.arange(B, dtype=np.int64), beams)
    row = batch_of_row.copy()  # step 0: every item's single row expands to `beams` rows
    token = np.full(N, 2, dtype=np.int64)  # <s>
    rng = np.random.default_rng(0)
    for t in range(steps):
        common = {mf.TOKEN: token, mf.ROW: row, mf.BATCH_OF_ROW: batch_of_row, mf.TOPK: np.array([K], np.int64)}
        t_feeds = dict(common, **{n: t_enc[n] for n in model.memory_names},
                       **{mf.state_input(n): v for n, v in t_st.items()})
        o_feeds = dict(common, **{n: o_enc[n] for n in model.memory_names},
                       **{mf.state_input(n): v for n, v in o_st.items()})
        t_out = step_fn(t_feeds)
        o_out = dict(zip(step_out_names, step_sess.run(step_out_names, o_feeds)))
        for name in model.step_output_names():
            if name == mf.TOPK_IDS:
                continue  # ids may legitimately differ on exact ties; values are compared
            key = f"step.{name}"
            diffs[key] = max(diffs.get(key, 0.0), _maxdiff(o_out[name], t_out[name]))
        ids_equal = np.array_equal(o_out[mf.TOPK_IDS], t_out[mf.TOPK_IDS])
        diffs["step.topk_ids_mismatches"] = diffs.get("step.topk_ids_mismatches", 0) + (0 if ids_equal else 1)
        for s in specs:
            t_st[s.name] = t_out[mf.state_output(s.name)]
            o_st[s.name] = o_out[mf.state_output(s.name)]
        # Next step: each item's rows continue a random choice of its own rows (beam reorder),
        # fed one of the torch top-k tokens.
        perm = np.concatenate([b * beams + rng.integers(0, beams, beams) for b in range(B)]).astype(np.int64)
        row = perm
        token = t_out[mf.TOPK_IDS][perm, rng.integers(0, K, N)].astype(np.int64)
    report = {"batch": B, "rows": N, "k": K, "steps": steps,
              "max_abs_diff": max(v for k_, v in diffs.items() if not k_.endswith("mismatches")),
              "per_output": diffs}
    if tol is not None:
        bad = {k_: v for k_, v in diffs.items() if not k_.endswith("mismatches") and v > tol}
        if bad:
            worst = max(bad, key=bad.get)
            raise ParityError(f"ONNX graphs differ from PyTorch: {worst} max |diff| = {bad[worst]:.3g} > {tol:g} "
                              f"(B={B}, N={N}, K={K}); all failing outputs: {sorted(bad)}")
    return report


def torch_decode(model: Translator, manifest: Manifest, id_lists: list[list[int]], search, max_length: int | None = None):
    """The PyTorch reference search: the runtime's reference loop driven by the torch model."""
    src, lengths = pad_ids(id_lists)
    enc = torch_encode_fn(model)(src, lengths)
    return decode(manifest, enc, torch_step_fn(model), search, max_length=max_length)


def search_parity(bundle_dir: str | Path, model: Translator, id_lists: list[list[int]], searches=None,
                  tol: float | None = TOL) -> dict:
    """Runtime Seq2Seq (compiled loop when available) vs the PyTorch reference search.

    Tokens must be identical and log-probs within tol (tol=None: report only).
    """
    from ..runtime.tasks.seq2seq import Seq2Seq

    rt, loop = load_runtime(Seq2Seq, bundle_dir)
    return compare_searches(lambda s: rt.decode_ids(id_lists, s),
                            lambda s: torch_decode(model, rt.manifest, id_lists, s), len(id_lists), loop, searches, tol)


def load_runtime(cls, bundle_dir: str | Path):
    """(cls.load(bundle_dir) on CPU with the compiled loop, or the reference loop when the
    extension is not built in this checkout, the loop's name)."""
    try:
        return cls.load(bundle_dir, provider="cpu", loop="compiled"), "compiled"
    except ImportError:
        return cls.load(bundle_dir, provider="cpu", loop="reference"), "reference"


def compare_searches(runtime_decode, torch_decode_fn, n_inputs: int, loop: str, searches=None,
                     tol: float | None = TOL) -> dict:
    """runtime_decode(search) vs torch_decode_fn(search): hypotheses per input, both sides."""
    searches = searches or [Greedy(), Beam(size=5, n_best=1)]
    out: dict = {"loop": loop, "inputs": n_inputs, "searches": {}}
    for search in searches:
        name = ("greedy" if isinstance(search, Greedy) else f"beam{search.size}" if isinstance(search, Beam)
                else "sample")
        got = runtime_decode(search)
        ref = torch_decode_fn(search)
        same, diff, first_bad = 0, 0.0, None
        for i, (g, r) in enumerate(zip(got, ref)):
            ok = len(g) == len(r) and all(a.ids == b.ids for a, b in zip(g, r))
            if ok:
                same += 1
                diff = max([diff] + [abs(a.log_prob - b.log_prob) for a, b in zip(g, r)])
            elif first_bad is None:
                first_bad = (i, [h.ids for h in g], [h.ids for h in r])
        out["searches"][name] = {"identical": same, "of": n_inputs, "max_log_prob_diff": diff}
        if tol is not None:
            if first_bad is not None:
                i, g_ids, r_ids = first_bad
                raise ParityError(f"{name} search: the runtime ({loop} loop on ONNX Runtime) and PyTorch decode input "
                                  f"{i} differently: runtime {g_ids} vs PyTorch {r_ids} "
                                  f"({n_inputs - same} of {n_inputs} inputs differ)")
            if diff > tol:
                raise ParityError(f"{name} search: sequence log-probs differ by {diff:.3g} > {tol:g} between the runtime "
                                  "and PyTorch (tokens identical)")
    return out
