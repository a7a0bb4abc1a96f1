"""Seeing the memory: the per-step weightings (and states) of one finished output, saved as .npz.

The search loops never keep per-step state: beam search reorders rows every step and the
compiled loop double-buffers state on the device. Instead, a finished hypothesis is
REPLAYED: its tokens (forced prefix included, the end token when it ended) are fed one by
one through the bundle's step graph for that one item (batch 1, row [0]), and the chosen
step outputs are recorded. A path's states are a function of its tokens, so the trace is
exact for greedy, beam and sampling alike, and the loops stay untouched and model-agnostic.
The replay is the reference loop itself (`reference_loop.decode`) with every token forced
(`prefix=`), over the same `ort_step` wrapper, so there is no second step runner.

Step t of a trace is the step that read token t-1 (<s> at t = 0) and produced token t:

    ids, tokens    int64 [T] / str [T]   the tokens produced, the end token included
    forced         bool [T]              True for the tokens of the forced prefix (prompt)
    log_probs      float32 [T]           the model's log-prob of each token (no penalties)
    tensor.<name>  [T, ...]              the step output recorded after each step

Recorded by default: every `state.<name>.next` whose name says it is a weighting or an
attention (`is_weighting`: read_w, write_w, ...; axes [T, heads..., positions], one head per
index of the middle axes) and the step's `attention` [T, L] when it has one. memory=True
records every state (the NTM memory matrix [T, slots, width] included).

File: `save_trace` writes those arrays plus `format`, `format_version` and `info` (JSON:
the manifest's task and model summary, the state shapes, which tensors are weightings,
the source tokens of a translation) with numpy's .npz; `load_trace` reads them back
without pickle and checks them (one InputError line for anything that is not a trace).
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bundle import Bundle
from ..errors import InputError
from ..manifest import ATTENTION, state_output
from ..output_files import check_writable, write_atomic
from ..reference_loop import decode, ort_step
from ..search import Greedy

if TYPE_CHECKING:
    from ..tasks.generator import Generator
    from ..tasks.seq2seq import Seq2Seq

TRACE_FORMAT = "edge-s2s-trace"
TRACE_VERSION = 1
TENSOR_PREFIX = "tensor."
_FIELDS = ("ids", "tokens", "forced", "log_probs")
# Name parts that mark a weighting: read_w, write_w, attn_weights, alignment, alpha, ...
_WEIGHT_PARTS = {"w", "weight", "weights", "weighting", "weightings", "att", "attn", "attention", "alpha",
                 "align", "alignment"}
FIX = "pass the .npz that `edge-s2s generate --trace` (or `translate --trace`) wrote"


def is_weighting(name: str) -> bool:
    """Whether a state (or output) name says it holds weightings over positions, by its parts."""
    return any(part in _WEIGHT_PARTS for part in re.split(r"[._\-]", name.lower()))


@dataclass
class Trace:
    """One output's tokens and its recorded step outputs, step t = the step producing token t."""

    tensors: dict[str, np.ndarray]  # name (state name, or "attention") -> [T, ...]
    ids: list[int]
    tokens: list[str]
    forced: list[bool]
    log_probs: list[float]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.ids)

    @property
    def prefix_length(self) -> int:
        """How many leading tokens were forced (the prompt)."""
        return int(sum(self.forced))

    @property
    def log_prob(self) -> float:
        return float(sum(self.log_probs))

    @property
    def weightings(self) -> list[str]:
        """The tensors that are weightings over positions (drawn as heat maps over time)."""
        return [n for n in self.tensors if n in self.info.get("weightings", [])]


def traced_outputs(bundle: Bundle, memory: bool = False) -> dict[str, str]:
    """Trace name -> step-graph output name of what a trace records (see the module docstring)."""
    m = bundle.manifest
    names = {s.name: state_output(s.name) for s in m.state if memory or is_weighting(s.name)}
    if m.attention:
        names[ATTENTION] = ATTENTION
    return names


def check_traceable(bundle: Bundle, memory: bool = False) -> dict[str, str]:
    """`traced_outputs`, or one InputError line when there is nothing to record (before any decoding)."""
    wanted = traced_outputs(bundle, memory)
    if not wanted:
        raise InputError(f"this bundle's step has no weighting or attention to trace (its states: "
                         f"{', '.join(bundle.manifest.state_names)}): add --trace-memory to record every state")
    return wanted


def replay(bundle: Bundle, encoder_outputs: dict[str, np.ndarray], ids: Sequence[int], finished: bool = True,
           item: int = 0, forced: int = 0, memory: bool = False, info: dict[str, Any] | None = None) -> Trace:
    """Feed one hypothesis's tokens through the step graph and record its weightings per step.

    encoder_outputs: the encoder's outputs for the batch the hypothesis came from; `item`
    picks its row. ids: the hypothesis's ids (the end token excluded, as the loops return
    them), forced prefix included; finished: whether it ended with the end token (then that
    step is traced too). forced: how many leading ids were a forced prefix.
    """
    m = bundle.manifest
    eos = m.tokens.eos_id
    seq = [int(x) for x in ids] + ([eos] if finished else [])
    if not seq:
        raise InputError("nothing to trace: the output has no tokens and did not end")
    if not 0 <= forced <= len(ids):
        raise InputError(f"forced={forced} must be between 0 and the {len(ids)} tokens of the output")
    B = next(iter(encoder_outputs.values())).shape[0] if encoder_outputs else 0
    if not 0 <= item < B:
        raise InputError(f"item {item} is not in the encoded batch of {B}: pass the hypothesis's input index")
    one = {k: np.ascontiguousarray(v[item:item + 1]) for k, v in encoder_outputs.items()}
    wanted = check_traceable(bundle, memory)
    run = ort_step(bundle.step, [t.name for t in m.decoder_step.outputs])
    records: dict[str, list[np.ndarray]] = {n: [] for n in wanted}

    def step(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = run(feeds)
        for name, output in wanted.items():
            records[name].append(np.array(out[output][0]))
        return out

    try:
        raw = decode(m, one, step, Greedy(), max_length=len(seq), prefix=[seq])[0][0]
    except ValueError as e:  # check_prefix: an id outside the vocabulary, the end token inside
        raise InputError(f"cannot replay these tokens: {e}") from None
    T = len(raw.token_log_probs)
    if list(raw.ids) + ([eos] if raw.finished else []) != seq or T != len(seq):
        raise RuntimeError(f"replay produced {raw.ids} for the forced tokens {seq}")  # a bug, not user input
    summary = {"task": m.task, "model": m.model, "bundle": str(bundle.path), "max_length": m.max_length,
               "states": {s.name: list(s.shape) for s in m.state},
               "state_titles": {s.name: s.title for s in m.state if s.title},
               "state_axes": {s.name: list(s.axes) for s in m.state if s.axes},
               "weightings": [n for n in wanted if n == ATTENTION or is_weighting(n)], **(info or {})}
    return Trace(tensors={n: np.stack(v) for n, v in records.items()}, ids=seq,
                 tokens=bundle.vocab.decode(seq), forced=[i < forced for i in range(T)],
                 log_probs=[float(x) for x in raw.token_log_probs], info=summary)


def hypothesis_finished(hyp) -> bool:
    """Whether a Hypothesis ended with the end token (its log-probs then count one token more)."""
    return len(hyp.token_log_probs) > len(hyp.ids)


def trace_generated(model: Generator, ids: Sequence[int], finished: bool, prompt_length: int,
                    condition: int | str | None = None, memory: bool = False,
                    info: dict[str, Any] | None = None) -> Trace:
    """Trace a generator's output: `ids` with the prompt (its first `prompt_length` ids) included."""
    enc = model.encode_conditions([model.condition_id(condition)])
    return replay(model.bundle, enc, ids, finished, forced=prompt_length, memory=memory, info=info)


def trace_translation(model: Seq2Seq, source: str, ids: Sequence[int], finished: bool, memory: bool = False,
                      info: dict[str, Any] | None = None) -> Trace:
    """Trace a translation of `source` (encoded alone, so the attention spans its own tokens)."""
    src = model.encode_sources([source])
    extra = {"source": source, "source_tokens": model.vocab.decode(src[0]), **(info or {})}
    return replay(model.bundle, model.encode(src), ids, finished, memory=memory, info=extra)


# --- the file ------------------------------------------------------------------------------------


def save_trace(path: str | os.PathLike, trace: Trace) -> Path:
    """Write `trace` as .npz atomically (no pickled objects); returns the path."""
    path = check_writable(path)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(TRACE_FORMAT), "format_version": np.array(TRACE_VERSION, np.int64),
        "info": np.array(json.dumps(trace.info, ensure_ascii=False)),
        "ids": np.asarray(trace.ids, np.int64), "tokens": np.array([str(t) for t in trace.tokens], dtype=np.str_),
        "forced": np.asarray(trace.forced, bool), "log_probs": np.asarray(trace.log_probs, np.float32),
    }
    for name, value in trace.tensors.items():
        arrays[TENSOR_PREFIX + name] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return write_atomic(path, lambda f: f.write(buf.getvalue()))


def load_trace(path: str | os.PathLike) -> Trace:
    """Read and check a trace file; InputError (one line) for a missing, foreign or corrupt file."""
    path = Path(os.fsdecode(path))
    if not path.exists():
        raise InputError(f"trace file {path} does not exist: {FIX}")
    if not path.is_file():
        raise InputError(f"trace file {path} is not a file: {FIX}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (AttributeError, TypeError):  # a plain .npy array has no files / no context manager
        raise InputError(f"{path} is a single numpy array, not a trace: {FIX}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        reason = " ".join(str(e).split())[:120]
        raise InputError(f"{path} is not a readable trace (.npz) file ({reason}): {FIX}") from None
    if "format" not in data or str(data["format"]) != TRACE_FORMAT:
        raise InputError(f"{path} is an .npz file but not an edge-s2s trace: {FIX}")
    version = int(data["format_version"]) if "format_version" in data else None
    if version != TRACE_VERSION:
        raise InputError(f"{path} is trace format version {version}, this edge-s2s reads version {TRACE_VERSION}: "
                         "trace the output again with this version")
    return _from_arrays(path, data)


def _from_arrays(path: Path, data: dict[str, np.ndarray]) -> Trace:
    def corrupt(what: str) -> InputError:
        return InputError(f"trace file {path} is corrupt ({what}): trace the output again")

    missing = [k for k in (*_FIELDS, "info") if k not in data]
    if missing:
        raise corrupt(f"missing {', '.join(missing)}")
    try:
        info = json.loads(str(data["info"]))
    except json.JSONDecodeError:
        raise corrupt("its info is not JSON") from None
    if not isinstance(info, dict):
        raise corrupt("its info is not a JSON object")
    fields = {k: np.asarray(data[k]) for k in _FIELDS}
    T = len(fields["ids"])
    if T == 0 or any(v.ndim != 1 or len(v) != T for v in fields.values()):
        raise corrupt("ids, tokens, forced and log_probs must be non-empty and of one length")
    tensors = {k[len(TENSOR_PREFIX):]: v for k, v in data.items() if k.startswith(TENSOR_PREFIX)}
    for name, v in tensors.items():
        if v.ndim < 2 or v.shape[0] != T:
            raise corrupt(f"tensor {name} has shape {v.shape}, expected [{T}, ...] (one entry per step)")
    if not tensors:
        raise corrupt("it holds no traced tensors")
    return Trace(tensors=tensors, ids=[int(x) for x in fields["ids"]], tokens=[str(t) for t in fields["tokens"]],
                 forced=[bool(x) for x in fields["forced"]], log_probs=[float(x) for x in fields["log_probs"]],
                 info=info)
