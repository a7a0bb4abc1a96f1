"""Per-row activation scales (export/int8_rows.py): int8 results that do not depend on batch-mates."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_s2s.export.bundle_writer import _quantize
from edge_s2s.export.int8_rows import per_row_activations


def _matmul_model(path, shape):
    """y = x @ W (+ a second consumer of x when asked), float32, opset 17."""
    W = np.random.default_rng(0).standard_normal((shape[-1], 24)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*shape[:-1], 24])],
                          [numpy_helper.from_array(W, "W")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return W


def _run(path, x, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("shape", [["N", 64], ["B", "L", 64]])
@pytest.mark.parametrize("level", [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL])
def test_a_rows_result_is_the_same_alone_and_next_to_a_large_row(tmp_path, shape, level):
    W = _matmul_model(tmp_path / "f.onnx", shape)
    _quantize(tmp_path / "f.onnx", tmp_path / "q.onnx")  # dynamic int8, then per-row scales
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "MatMulInteger" in ops
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 64) if len(shape) == 3 else (4, 64)).astype(np.float32)
    x[0] *= 1000  # a batch-mate 1000x larger: one scale for the tensor would crush the others
    both = _run(tmp_path / "q.onnx", x, level)
    for i in range(1, 4):
        alone = _run(tmp_path / "q.onnx", x[i : i + 1], level)[0]
        assert np.array_equal(alone, both[i])  # bit for bit
    ref = x @ W
    rel = np.linalg.norm(both - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert rel.max() < 0.03, rel  # int8 with a scale per row: ~1% error on every row


def test_without_the_rewrite_rows_do_depend_on_each_other(tmp_path):
    """What the pass fixes, shown on ORT's own dynamic quantisation."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    W = _matmul_model(tmp_path / "f.onnx", ["N", 64])
    quantize_dynamic(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), weight_type=QuantType.QInt8)
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    x[0] *= 1000
    both, alone = _run(tmp_path / "q.onnx", x), _run(tmp_path / "q.onnx", x[1:2])
    assert not np.array_equal(alone[0], both[1])
    ref = x @ W
    assert np.linalg.norm(both[1] - ref[1]) / np.linalg.norm(ref[1]) > 0.1


def test_a_quantised_input_used_elsewhere_is_left_alone():
    """A DynamicQuantizeLinear whose outputs also leave the graph is not rewritten."""
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"], name="dq")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("xq", TensorProto.UINT8, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert per_row_activations(m) == 0 and [n.op_type for n in m.graph.node] == ["DynamicQuantizeLinear"]
