"""edge-s2s: attention sequence-to-sequence models trained in PyTorch, run on ONNX Runtime.

Subpackages: ``edge_s2s.train`` (PyTorch), ``edge_s2s.export`` (PyTorch -> ONNX bundle),
``edge_s2s.runtime`` (numpy + onnxruntime only), ``edge_s2s.cli`` (the ``edge-s2s`` command).
"""

__version__ = "0.2.0"
