"""Tiny bundles built with onnx.helper, for the runtime tests (and any other test).

`write_table_bundle`: the step's log-probs are a constant table indexed by
(batch item, step, previous token), so every score can be worked out by hand.
`write_model_bundle`: a small random attention decoder with an LSTM-like state
`state.h` [N, H] (from the encoder) and an NTM-like memory `state.ntm` [N, slots, width]
(constant 0), whose log-probs depend on what was written to that memory.
Both write a complete bundle: manifest.json (with sha256s), tokens.txt, both graphs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_s2s.runtime.manifest import GraphSpec, Manifest, StateSpec, TensorSpec, TokensSpec

OPSET = 18
F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
_DT = {F: "float32", I64: "int64", BOOL: "bool"}


def vocab_tokens(V: int) -> list[str]:
    return ["<pad>", "<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(4, V)]


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _spec(vis) -> list[TensorSpec]:
    out = []
    for v in vis:
        t = v.type.tensor_type
        shape = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        out.append(TensorSpec(v.name, _DT[t.elem_type], shape))
    return out


def _model(nodes, inputs, outputs, inits, name) -> onnx.ModelProto:
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _c(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name + "_v"))


def encoder_graph(V: int, D: int, seed: int = 0, with_h: bool = False) -> onnx.ModelProto:
    """src [B,S], src_lengths [B] -> memory, memory_key [B,S,D], memory_mask [B,S] (+ state.h [B,D])."""
    rng = np.random.default_rng(seed)
    inits = {"E": rng.normal(0, 1, (V, D)).astype(np.float32), "EK": rng.normal(0, 1, (V, D)).astype(np.float32)}
    nodes = [
        helper.make_node("Gather", ["E", "src"], ["memory"]),
        helper.make_node("Gather", ["EK", "src"], ["memory_key"]),
        helper.make_node("Shape", ["src"], ["src_shape"]),
        _c("one_idx", np.array([1], np.int64)),
        helper.make_node("Gather", ["src_shape", "one_idx"], ["S1"]),
        helper.make_node("Squeeze", ["S1"], ["S"]),
        _c("zero", np.array(0, np.int64)),
        _c("one", np.array(1, np.int64)),
        helper.make_node("Range", ["zero", "S", "one"], ["pos"]),
        _c("ax1", np.array([1], np.int64)),
        helper.make_node("Unsqueeze", ["src_lengths", "ax1"], ["len_col"]),
        helper.make_node("Less", ["pos", "len_col"], ["memory_mask"]),
    ]
    outputs = [_vi("memory", F, ["B", "S", D]), _vi("memory_key", F, ["B", "S", D]), _vi("memory_mask", BOOL, ["B", "S"])]
    if with_h:
        nodes.append(helper.make_node("ReduceMean", ["memory", "ax1"], ["state.h"], keepdims=0))
        outputs.append(_vi("state.h", F, ["B", D]))
    inputs = [_vi("src", I64, ["B", "S"]), _vi("src_lengths", I64, ["B"])]
    return _model(nodes, inputs, outputs, inits, "encoder")


def _step_io(D: int, V: int, states: list[tuple[str, list]]):
    inputs = [_vi("token", I64, ["N"]), _vi("row", I64, ["N"]), _vi("batch_of_row", I64, ["N"]), _vi("topk", I64, [1]),
              _vi("memory", F, ["B", "L", D]), _vi("memory_key", F, ["B", "L", D]), _vi("memory_mask", BOOL, ["B", "L"])]
    outputs = [_vi("logprobs", F, ["N", V]), _vi("topk_logprobs", F, ["N", "K"]), _vi("topk_ids", I64, ["N", "K"]),
               _vi("attention", F, ["N", "L"])]
    for name, rest in states:
        inputs.append(_vi(f"state.{name}", F, ["Np", *rest]))
        outputs.append(_vi(f"state.{name}.next", F, ["N", *rest]))
    return inputs, outputs


def _uniform_attention_nodes():
    return [
        helper.make_node("Gather", ["memory_mask", "batch_of_row"], ["mask_rows"]),
        helper.make_node("Cast", ["mask_rows"], ["mask_f"], to=F),
        _c("att_ax", np.array([1], np.int64)),
        helper.make_node("ReduceSum", ["mask_f", "att_ax"], ["mask_n"], keepdims=1),
        helper.make_node("Div", ["mask_f", "mask_n"], ["attention"]),
    ]


def table_step_graph(table: np.ndarray, D: int) -> onnx.ModelProto:
    """logprobs[n] = table[batch_of_row[n], min(step, T-1), token[n]]; table is [Bmax, T, V, V].

    The step counter is the state `state.t` [N, 1] (constant 0), gathered with `row`.
    """
    Bmax, T, V, _ = table.shape
    inits = {"table": table.reshape(Bmax * T * V, V).astype(np.float32)}
    nodes = [
        helper.make_node("Gather", ["state.t", "row"], ["t"], axis=0),
        _c("f1", np.array(1.0, np.float32)),
        helper.make_node("Add", ["t", "f1"], ["state.t.next"]),
        _c("sq1", np.array([1], np.int64)),
        helper.make_node("Squeeze", ["t", "sq1"], ["t1"]),
        helper.make_node("Cast", ["t1"], ["ti"], to=I64),
        _c("tmax", np.array(T - 1, np.int64)),
        helper.make_node("Min", ["ti", "tmax"], ["tc"]),
        _c("cT", np.array(T, np.int64)),
        _c("cV", np.array(V, np.int64)),
        helper.make_node("Mul", ["batch_of_row", "cT"], ["bT"]),
        helper.make_node("Add", ["bT", "tc"], ["bt"]),
        helper.make_node("Mul", ["bt", "cV"], ["btV"]),
        helper.make_node("Add", ["btV", "token"], ["idx"]),
        helper.make_node("Gather", ["table", "idx"], ["logprobs"], axis=0),
        helper.make_node("TopK", ["logprobs", "topk"], ["topk_logprobs", "topk_ids"], axis=1),
        *_uniform_attention_nodes(),
    ]
    inputs, outputs = _step_io(D, V, [("t", [1])])
    return _model(nodes, inputs, outputs, inits, "table_step")


def model_step_graph(V: int, H: int, slots: int, width: int, seed: int = 0, read_scale: float = 3.0,
                     eos_bias: float = 1.5) -> onnx.ModelProto:
    """A small attention decoder step with an LSTM-like `h` and an NTM-like memory `ntm`."""
    rng = np.random.default_rng(seed + 1)

    def w(*shape, s=1.0):
        return (rng.normal(0, s / np.sqrt(shape[0]), shape)).astype(np.float32)

    inits = {"Emb": w(V, H, s=np.sqrt(V)), "Wh": w(H, H), "Wc": w(H, H), "Ws": w(H, slots, s=2.0), "Wa": w(H, width, s=2.0),
             "Wo": w(H, V, s=3.0), "Wr": (w(width, V, s=3.0) * read_scale).astype(np.float32),
             "bias": np.where(np.arange(V) == 3, eos_bias, np.where(np.arange(V) < 3, -5.0, 0.0)).astype(np.float32)}
    nodes = [
        helper.make_node("Gather", ["state.h", "row"], ["h"], axis=0),
        helper.make_node("Gather", ["state.ntm", "row"], ["M"], axis=0),
        helper.make_node("Gather", ["Emb", "token"], ["e"], axis=0),
        helper.make_node("MatMul", ["h", "Wh"], ["hW"]),
        helper.make_node("Add", ["hW", "e"], ["q0"]),
        helper.make_node("Tanh", ["q0"], ["q"]),
        helper.make_node("Gather", ["memory_key", "batch_of_row"], ["keys"], axis=0),
        helper.make_node("Gather", ["memory", "batch_of_row"], ["mem"], axis=0),
        helper.make_node("Gather", ["memory_mask", "batch_of_row"], ["mask"], axis=0),
        _c("ax1", np.array([1], np.int64)),
        _c("ax2", np.array([2], np.int64)),
        helper.make_node("Unsqueeze", ["q", "ax2"], ["q3"]),
        helper.make_node("MatMul", ["keys", "q3"], ["sc3"]),
        helper.make_node("Squeeze", ["sc3", "ax2"], ["sc"]),
        _c("neg", np.array(-1e9, np.float32)),
        helper.make_node("Where", ["mask", "sc", "neg"], ["scm"]),
        helper.make_node("Softmax", ["scm"], ["attention"], axis=1),
        helper.make_node("Unsqueeze", ["attention", "ax1"], ["att3"]),
        helper.make_node("MatMul", ["att3", "mem"], ["ctx3"]),
        helper.make_node("Squeeze", ["ctx3", "ax1"], ["ctx"]),
        helper.make_node("MatMul", ["ctx", "Wc"], ["cW"]),
        helper.make_node("Add", ["q", "cW"], ["h20"]),
        helper.make_node("Tanh", ["h20"], ["state.h.next"]),
        # NTM-style write: softmax weighting over slots, add vector, decay the old memory.
        helper.make_node("MatMul", ["state.h.next", "Ws"], ["ws0"]),
        helper.make_node("Softmax", ["ws0"], ["ww"], axis=1),
        helper.make_node("MatMul", ["state.h.next", "Wa"], ["a0"]),
        helper.make_node("Tanh", ["a0"], ["add"]),
        _c("decay", np.array(0.5, np.float32)),
        helper.make_node("Mul", ["M", "decay"], ["Md"]),
        helper.make_node("Unsqueeze", ["ww", "ax2"], ["ww3"]),
        helper.make_node("Unsqueeze", ["add", "ax1"], ["add3"]),
        helper.make_node("Mul", ["ww3", "add3"], ["outer"]),
        helper.make_node("Add", ["Md", "outer"], ["state.ntm.next"]),
        # Read with a weighting from the *previous* memory's content, so old writes matter.
        helper.make_node("ReduceSum", ["M", "ax2"], ["Msum"], keepdims=0),
        helper.make_node("Softmax", ["Msum"], ["rw"], axis=1),
        helper.make_node("Unsqueeze", ["rw", "ax1"], ["rw3"]),
        helper.make_node("MatMul", ["rw3", "state.ntm.next"], ["rd3"]),
        helper.make_node("Squeeze", ["rd3", "ax1"], ["read"]),
        helper.make_node("MatMul", ["state.h.next", "Wo"], ["lo1"]),
        helper.make_node("MatMul", ["read", "Wr"], ["lo2"]),
        helper.make_node("Add", ["lo1", "lo2"], ["lo3"]),
        helper.make_node("Add", ["lo3", "bias"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["logprobs"], axis=1),
        helper.make_node("TopK", ["logprobs", "topk"], ["topk_logprobs", "topk_ids"], axis=1),
    ]
    inputs, outputs = _step_io(H, V, [("h", [H]), ("ntm", [slots, width])])
    return _model(nodes, inputs, outputs, inits, "model_step")


def _write(directory: Path, encoder: onnx.ModelProto, step: onnx.ModelProto, V: int, states: list[StateSpec],
           max_length: int, max_source_length: int = 50) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(encoder, directory / "encoder.onnx")
    onnx.save(step, directory / "decoder_step.onnx")
    (directory / "tokens.txt").write_text("\n".join(vocab_tokens(V)) + "\n", encoding="utf-8")
    files = {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in ("encoder.onnx", "decoder_step.onnx", "tokens.txt")}
    m = Manifest(
        task="translate",
        tokens=TokensSpec(size=V),
        preprocessing={"type": "text", "lowercase": True, "max_source_length": max_source_length},
        max_length=max_length,
        encoder=GraphSpec("encoder.onnx", _spec(encoder.graph.input), _spec(encoder.graph.output)),
        decoder_step=GraphSpec("decoder_step.onnx", _spec(step.graph.input), _spec(step.graph.output)),
        memory=["memory", "memory_key", "memory_mask"],
        state=states,
        attention=True,
        files=files,
        created_by="tests/helpers/graphs.py",
    )
    m.save(directory)
    return directory


def write_table_bundle(directory, table: np.ndarray, max_length: int = 10, D: int = 4) -> Path:
    """Bundle whose step log-probs are table[item, step, previous token] ([Bmax, T, V, V])."""
    V = table.shape[2]
    return _write(directory, encoder_graph(V, D), table_step_graph(table, D), V,
                  [StateSpec("t", ["N", 1], "float32", 0.0)], max_length)


def write_model_bundle(directory, V: int = 24, H: int = 8, slots: int = 3, width: int = 5, max_length: int = 12,
                       seed: int = 0) -> Path:
    """Bundle of a small random attention decoder with states h [N,H] (encoder) and ntm [N,slots,width] (0)."""
    return _write(directory, encoder_graph(V, H, seed, with_h=True), model_step_graph(V, H, slots, width, seed), V,
                  [StateSpec("h", ["N", H], "float32", "encoder"), StateSpec("ntm", ["N", slots, width], "float32", 0.0)],
                  max_length)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return (x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))).astype(np.float32)


def run_loop(model, loop: str, sources: list[str], search, **kw):
    """Raw hypotheses of one loop ("reference" or "compiled") for `sources` on a loaded Seq2Seq.

    Calls the loop's `decode` directly, so keyword arguments only the loops take (prefix)
    reach it; `tokens` defaults to the model's vocabulary.
    """
    from edge_s2s.runtime import _loop
    from edge_s2s.runtime.reference_loop import decode, ort_step

    enc = model.encode(model.encode_sources(sources))
    kw.setdefault("tokens", model.vocab.tokens)
    if loop == "compiled":
        return _loop.decode(model.bundle.step, model.manifest, enc, search, device=model.bundle.device, **kw)
    if loop == "reference":
        return decode(model.manifest, enc, ort_step(model.bundle.step), search, **kw)
    raise ValueError(f"unknown loop {loop!r}")


EOS = 3  # </s> in the table bundles' vocabulary


def random_prefixes(seed: int, batch: int, V: int = 24, max_length: int = 12) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(batch):
        n = int(rng.integers(0, 6))
        ids = [int(x) for x in rng.integers(4, V, n)]
        if ids and rng.random() < 0.3:
            ids[-1] = EOS
        out.append(ids)
    if batch > 2:
        out[2] = [int(x) for x in rng.integers(4, V, max_length)]  # as long as max_length
    return out


def assert_same(a, b):
    assert [[h.ids for h in r] for r in a] == [[h.ids for h in r] for r in b]
    for ra, rb in zip(a, b):
        for ha, hb in zip(ra, rb):
            assert ha.finished == hb.finished
            assert ha.log_prob == pytest.approx(hb.log_prob, abs=1e-6) and ha.score == pytest.approx(hb.score, abs=1e-6)
            assert ha.token_log_probs == pytest.approx(hb.token_log_probs, abs=1e-6)
            assert np.array_equal(ha.attention, hb.attention)
