"""Export a trained Translator as the bundle's two ONNX graphs.

Uses the TorchScript-based exporter (`dynamo=False`): it keeps `nn.LSTM` dynamic in the
time axis, and `dynamic_axes` names every batch / length / rows / K axis. The example
sizes are all >= 2 and pairwise different (B=2, S=5, N=3, K=3), so no axis is frozen or
tied to another; `check_graphs` then runs both graphs at other sizes.
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import onnx
import torch

from ..runtime import manifest as mf
from ..runtime.manifest import TensorSpec
from ..train.core.step_contract import EncoderGraph
from ..train.translate.model import StepGraph, Translator

OPSET = 17
EXAMPLE_B, EXAMPLE_S, EXAMPLE_N, EXAMPLE_K = 2, 5, 3, 3

_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.BOOL: "bool",
}


def _quiet_export(module, args, path, input_names, output_names, dynamic_axes) -> None:
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)


def example_encoder_inputs(model: Translator, B: int = EXAMPLE_B, S: int = EXAMPLE_S, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, model.vocab_size, (B, S), generator=g)
    lengths = torch.tensor([S - (i % 2) for i in range(B)], dtype=torch.long)
    for b in range(B):
        src[b, lengths[b]:] = 0
    return src, lengths


def export_encoder(model: Translator, path: str | Path) -> None:
    model.eval()
    src, lengths = example_encoder_inputs(model)
    outs = model.encoder_output_names()
    axes: dict[str, dict[int, str]] = {"src": {0: "B", 1: "S"}, "src_lengths": {0: "B"}}
    for name in outs:
        if name in ("memory", "memory_key", "memory_mask") and model.attention:
            axes[name] = {0: "B", 1: "L"}
        else:
            axes[name] = {0: "B"}
    for s in model.state_specs():
        if s.init == "encoder":
            axes[mf.state_input(s.name)] = {0: "B", **_length_axes(s.shape)}
    with torch.no_grad():
        _quiet_export(EncoderGraph(model).eval(), (src, lengths), path, ["src", "src_lengths"], outs, axes)


def example_step_inputs(model: Translator, N: int = EXAMPLE_N, K: int = EXAMPLE_K):
    """Step inputs for N rows continuing the B encoder items of the example encoder inputs."""
    with torch.no_grad():
        enc = model.encode(*example_encoder_inputs(model))
    B = enc[model.encoder_output_names()[0]].size(0)
    states = model.initial_states(enc)
    token = torch.arange(N, dtype=torch.long) % (model.vocab_size - 4) + 4
    row = torch.arange(N, dtype=torch.long) % B
    batch_of_row = row.clone()
    k = torch.tensor([K], dtype=torch.long)
    return (token, row, batch_of_row, k, *(enc[n] for n in model.memory_names),
            *(states[s.name] for s in model.state_specs()))


def export_step(model: Translator, path: str | Path) -> None:
    model.eval()
    args = example_step_inputs(model)
    ins, outs = model.step_input_names(), model.step_output_names()
    with torch.no_grad():
        _quiet_export(StepGraph(model).eval(), args, path, ins, outs, step_axes(model, variable_length=True))


def step_axes(model, variable_length: bool) -> dict[str, dict[int, str]]:
    """dynamic_axes of any DecoderContract step graph: rows N (N_prev for states read),
    K, batch B of the memory, and the memory length L when it varies (text sources)."""
    axes: dict[str, dict[int, str]] = {mf.TOKEN: {0: "N"}, mf.ROW: {0: "N"}, mf.BATCH_OF_ROW: {0: "N"},
                                       mf.LOGPROBS: {0: "N"}, mf.TOPK_LOGPROBS: {0: "N", 1: "K"},
                                       mf.TOPK_IDS: {0: "N", 1: "K"}}
    varies = variable_length and model.attention
    for name in model.memory_names:
        axes[name] = {0: "B", 1: "L"} if varies else {0: "B"}
    for s in model.state_specs():
        length = _length_axes(s.shape) if varies else {}
        axes[mf.state_input(s.name)] = {0: "N_prev", **length}
        axes[mf.state_output(s.name)] = {0: "N", **length}
    if model.attention:
        axes[mf.ATTENTION] = {0: "N", 1: "L"} if varies else {0: "N"}
    return axes


def _length_axes(shape: list) -> dict[int, str]:
    """The axes a state spec declares as the memory length "L" (an NTM memory over the source)."""
    return {i: "L" for i, d in enumerate(shape) if d == "L"}


def expected_shapes(model: Translator) -> tuple[dict[str, list], dict[str, list]]:
    """Declared output shapes of (encoder, step): symbolic axes by name, the rest fixed."""
    D, V = model.cfg.memory_dim, model.vocab_size
    L = "L" if model.attention else 1
    names = model.memory_names
    enc: dict[str, list] = {}
    if "memory" in names:
        enc["memory"] = ["B", L, D]
    if "memory_key" in names:
        enc["memory_key"] = ["B", "L", model.cfg.key_dim]
    if "memory_mask" in names:
        enc["memory_mask"] = ["B", "L"]
    for s in model.state_specs():
        if s.init == "encoder":
            enc[mf.state_input(s.name)] = ["B", *s.shape[1:]]
    step: dict[str, list] = {mf.LOGPROBS: ["N", V], mf.TOPK_LOGPROBS: ["N", "K"], mf.TOPK_IDS: ["N", "K"],
                             mf.ATTENTION: ["N", "L"]}
    for s in model.state_specs():
        step[mf.state_output(s.name)] = ["N", *s.shape[1:]]
    return enc, step


def set_output_shapes(path: str | Path, shapes: dict[str, list]) -> None:
    """Overwrite the exporter's inferred output shapes (it names some fixed dims oddly)."""
    m = onnx.load(str(path))
    for out in m.graph.output:
        if out.name not in shapes:
            continue
        dims = out.type.tensor_type.shape.dim
        want = shapes[out.name]
        del dims[:]
        for d in want:
            nd = dims.add()
            if isinstance(d, str):
                nd.dim_param = d
            else:
                nd.dim_value = int(d)
    onnx.save(m, str(path))


def export_graphs(model: Translator, directory: str | Path, encoder_file: str = mf.ENCODER_FILE,
                  step_file: str = mf.STEP_FILE) -> tuple[Path, Path]:
    """Export both graphs into `directory`, fix their declared shapes, run onnx.checker."""
    directory = Path(directory)
    enc_path, step_path = directory / encoder_file, directory / step_file
    export_encoder(model, enc_path)
    export_step(model, step_path)
    enc_shapes, step_shapes = expected_shapes(model)
    set_output_shapes(enc_path, enc_shapes)
    set_output_shapes(step_path, step_shapes)
    check_model(enc_path)
    check_model(step_path)
    return enc_path, step_path


def tensor_specs(values) -> list[TensorSpec]:
    out = []
    for v in values:
        t = v.type.tensor_type
        dtype = _ONNX_DTYPES.get(t.elem_type)
        if dtype is None:
            raise ValueError(f"graph tensor {v.name} has an unsupported element type {t.elem_type}")
        shape: list[int | str] = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        out.append(TensorSpec(v.name, dtype, shape))
    return out


def graph_io(path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) TensorSpecs read from an exported model (initialisers excluded)."""
    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return tensor_specs([i for i in m.graph.input if i.name not in inits]), tensor_specs(m.graph.output)


def check_model(path: str | Path) -> None:
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def ort_session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def to_numpy(args) -> list[np.ndarray]:
    return [a.detach().cpu().numpy() for a in args]
