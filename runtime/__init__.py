"""edge_s2s.runtime: load a bundle and decode with ONNX Runtime (numpy + onnxruntime only).

Never imports torch or onnx, so an application that embeds it installs neither. The public API is
here: the task front-ends (`Seq2Seq`/`Translator`, `Captioner`, `Transcriber`, `Generator`,
`MemoryNetwork`; they live in `runtime/tasks/`), the searches, results and errors. Media readers
are in `runtime/media/`, pictures in `runtime/pictures/`, whole-bundle tools in `runtime/tools/`.
"""

from .errors import BundleError, EdgeS2SError, InputError
from .loop_common import Timings
from .manifest import Manifest
from .results import Hypothesis, RawHypothesis, Result, TokenEvent
from .search import Beam, Greedy, Sample
from .tasks.seq2seq import Seq2Seq, Translator

__all__ = [
    "Seq2Seq", "Translator", "Captioner", "Greedy", "Beam", "Sample", "Result", "Hypothesis", "RawHypothesis", "TokenEvent",
    "Timings", "EdgeS2SError", "BundleError", "InputError", "Manifest", "MemoryNetwork",
    "Transcriber", "Generator",
]


def __getattr__(name: str):
    # Captioner pulls in Pillow: imported on first use, so text-only apps do not pay for it.
    if name == "Captioner":
        from .tasks.captioner import Captioner

        return Captioner
    if name == "MemoryNetwork":
        from .tasks.memory_network import MemoryNetwork

        return MemoryNetwork
    if name == "Transcriber":  # pulls in soundfile and soxr: imported on first use
        from .tasks.transcriber import Transcriber

        return Transcriber
    if name == "Generator":
        from .tasks.generator import Generator

        return Generator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
