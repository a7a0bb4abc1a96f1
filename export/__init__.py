"""edge_s2s.export: PyTorch -> ONNX bundle (graphs, parity, int8, manifest)."""

from .bundle_writer import ExportError, ExportReport, export_bundle
from .parity import ParityError

__all__ = ["export_bundle", "ExportReport", "ExportError", "ParityError"]
