"""edge_s2s.export: PyTorch -> ONNX bundle (graphs, parity, int8, manifest)."""

from .bundle_writer import ExportError, ExportReport
from .parity import ParityError
from .translate import export_bundle

__all__ = ["ExportError", "ExportReport", "ParityError", "export_bundle"]
