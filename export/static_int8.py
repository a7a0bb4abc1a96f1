"""Static (calibrated) int8 for a graph's convolution stack.

Dynamic int8 (bundle_writer._quantize) measures each activation's range at run time; for
convolutions ORT then runs ConvInteger, which is 7-11x *slower* than float32 on a CPU like
ours. Static quantisation fixes the ranges once from calibration inputs and writes QDQ pairs
that ORT fuses into QLinearConv / QLinearAdd, which use the CPU's int8 dot-product
instructions: EfficientNet-Lite0's CNN runs ~2.2x faster than float32 here.

Two details decide whether that speed shows up:
- The graph is first optimised by ORT at the basic level (`quant_pre_process`), which folds
  the explicit TensorFlow-style `Pad` nodes into their `Conv`s. Left in, each Pad sits between
  a DequantizeLinear and a QuantizeLinear and costs more than the int8 convolution saves.
- Only nodes whose names start with `prefix` (the CNN) are quantised; everything after it
  (projections, the classifier and the label top-K) keeps its own precision, so the label
  path's float32 guarantee (export.caption.LABEL_PATH_FLOAT) holds.

Ranges are min-max over the calibration inputs, weights per output channel (per-tensor
weights are what breaks depthwise convolutions under int8).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .bundle_writer import ExportError

STATIC_OPS = ("Conv", "Clip", "Add")


@contextmanager
def _quiet() -> Iterator[None]:
    """The quantiser's Python warnings ("consider pre-processing") and ORT's C++ warnings
    ("Removing initializer ...") on every call: neither is actionable here."""
    import onnxruntime as ort

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        root.setLevel(level)
        ort.set_default_logger_severity(2)  # ORT's default (it has no getter for the current level)


def quantize_static_prefix(src: Path, dst: Path, input_name: str, calibration: Iterable[np.ndarray],
                           prefix: str, ops: tuple[str, ...] = STATIC_OPS) -> int:
    """`src` -> `dst` with the nodes named `prefix`* of types `ops` statically quantised (QDQ,
    per-channel int8 weights, uint8 activations, min-max ranges over `calibration`, a stream of
    input batches for `input_name`). Returns how many nodes were quantised."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self) -> dict | None:
            x = next(self._it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x, dtype=np.float32)}

    with _quiet(), tempfile.TemporaryDirectory(prefix="edge-s2s-static-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        nodes = [n.name for n in graph.node if n.name.startswith(prefix) and n.op_type in ops]
        if not nodes:
            raise ExportError(f"{src.name} has no {'/'.join(ops)} node named {prefix}*: nothing to quantise "
                              "statically (export with int8 'linear')")
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, op_types_to_quantize=list(ops),
                        nodes_to_quantize=nodes, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False})
    return len(nodes)
