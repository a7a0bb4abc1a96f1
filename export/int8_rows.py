"""Per-row activation scales for dynamically quantised graphs: int8 answers that do not depend
on what else is in the batch.

ONNX Runtime's dynamic quantisation (`quantize_dynamic`) puts a `DynamicQuantizeLinear` before
each quantised MatMul: ONE scale and zero point for the whole activation tensor, and a batch is
one tensor. So a sentence's int8 activations, and with them its translation, changed with its
batch-mates: 72 of 500 validation sentences came out differently from the translator then shipped
at batch 1 and at batch 32 (beam rows are batch-mates too).

This pass replaces every such `DynamicQuantizeLinear` whose outputs only feed `MatMulInteger`
(and the scale product) with the same quantisation done per row, symmetric:

    s   = max(|x|, over the last axis, kept) / 127           one scale per row
    x_q = uint8(round(x / s) + 128),  zero point 128           x_q - 128 in [-127, 127]

`MatMulInteger` subtracts the zero point as before and its output is multiplied by `s` row by
row, so the rest of the graph is unchanged. A row's result now depends on that row alone
(bit-identical whatever the batch, tested), at a cost of eight small elementwise ops per quantised
input and one Mul per MatMul (the translator's int8 decode: 1.1-1.2x the time). Symmetric per-row ranges are at least as fine as one asymmetric range for the
whole tensor whenever the rows differ in size, which is the case this fixes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QMAX = 127.0
ZERO_POINT = 128
EPS = 1e-30  # a row of zeros: scale EPS / 127, every x_q = 128 (exactly zero after the zero point)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def per_row_activations(model: onnx.ModelProto) -> int:
    """Rewrite `model` in place (see the module docstring); returns how many inputs were rewritten."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    opset = _opset(model)
    consts = {"qmax": np.array(QMAX, np.float32), "eps": np.array(EPS, np.float32),
              "zp_float": np.array(float(ZERO_POINT), np.float32), "axes": np.array([-1], np.int64),
              "one": np.array(1.0, np.float32)}
    const_names = {key: f"int8_rows.{key}" for key in consts}
    axes_name = const_names["axes"]
    replaced: set[str] = set()
    after: dict[str, list[onnx.NodeProto]] = {}  # output name -> nodes to insert right after its node

    rewritten = 0
    new_nodes: list[onnx.NodeProto] = []
    for n in graph.node:
        if n.op_type != "DynamicQuantizeLinear" or n.domain not in ("", "ai.onnx") or len(n.output) != 3:
            new_nodes.append(n)
            continue
        x = n.input[0]
        xq, xs, xzp = n.output
        scale_muls = consumers.get(xs, [])
        ok = (all(c.op_type == "MatMulInteger" and c.input[0] == xq for c in consumers.get(xq, []))
              and all(c.op_type == "MatMulInteger" and len(c.input) > 2 and c.input[2] == xzp
                      for c in consumers.get(xzp, []))
              and all(c.op_type == "Mul" and all(d.op_type == "Mul" for d in consumers.get(c.output[0], []))
                      for c in scale_muls)
              and not any(o.name in (xq, xs, xzp) for o in graph.output))
        if not ok:
            new_nodes.append(n)
            continue
        # The scale product `xs * w_scale` feeds the output Mul `int32_as_float * product`. ORT fuses
        # MatMulInteger -> Cast -> Mul into one MatMulIntegerToFloat that takes the input's scale as
        # one number (a per-row scale there gave wrong results), so the row scale is applied by a
        # Mul of its own after that output: product = 1 * w_scale, out = (int32 * product) * xs.
        for c in scale_muls:
            for d in consumers.get(c.output[0], []):
                out = d.output[0]
                d.output[0] = f"{out}.before_rows"
                after.setdefault(d.output[0], []).append(
                    helper.make_node("Mul", [d.output[0], xs], [out], name=f"{out}.row_scale"))
            c.input[:] = [const_names["one"] if i == xs else i for i in c.input]
        p = f"{n.name or x}.rows"
        reduce = (helper.make_node("ReduceMax", [f"{p}.abs", axes_name], [f"{p}.amax"], keepdims=1, name=f"{p}.max")
                  if opset >= 18 else
                  helper.make_node("ReduceMax", [f"{p}.abs"], [f"{p}.amax"], axes=[-1], keepdims=1, name=f"{p}.max"))
        new_nodes += [
            helper.make_node("Abs", [x], [f"{p}.abs"], name=f"{p}.abs"),
            reduce,
            helper.make_node("Max", [f"{p}.amax", const_names["eps"]], [f"{p}.amax_eps"], name=f"{p}.eps"),
            helper.make_node("Div", [f"{p}.amax_eps", const_names["qmax"]], [xs], name=f"{p}.scale"),
            helper.make_node("Div", [x, xs], [f"{p}.scaled"], name=f"{p}.div"),
            helper.make_node("Round", [f"{p}.scaled"], [f"{p}.rounded"], name=f"{p}.round"),
            helper.make_node("Add", [f"{p}.rounded", const_names["zp_float"]], [f"{p}.shifted"], name=f"{p}.shift"),
            helper.make_node("Cast", [f"{p}.shifted"], [xq], to=TensorProto.UINT8, name=f"{p}.cast"),
        ]
        graph.initializer.append(numpy_helper.from_array(np.array(ZERO_POINT, np.uint8), xzp))
        replaced.update((xq, xs, xzp))
        rewritten += 1
    if not rewritten:
        return 0
    ordered = []
    for node in new_nodes:
        ordered.append(node)
        for o in node.output:
            ordered += after.get(o, [])
    del graph.node[:]
    graph.node.extend(ordered)
    for key, value in consts.items():
        if key != "axes" or opset >= 18:
            graph.initializer.append(numpy_helper.from_array(value, const_names[key]))
    # shapes recorded for the old outputs (a scalar scale) would contradict the new [..., 1] one
    keep = [v for v in graph.value_info if v.name not in replaced]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    return rewritten


# ops that quantise an activation with ONE range for the whole tensor, i.e. the whole batch
WHOLE_BATCH_OPS = ("DynamicQuantizeLinear", "DynamicQuantizeLSTM")


def couples_batch(model: onnx.ModelProto) -> bool:
    """Whether an item's result can depend on its batch-mates: a dynamic quantisation that
    `per_row_activations` could not rewrite (before a ConvInteger) or a DynamicQuantizeLSTM
    (it scales the whole padded batch inside the op) is left in the graph."""
    return any(n.op_type in WHOLE_BATCH_OPS for n in model.graph.node)
