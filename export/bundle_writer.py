"""Write a bundle from a training run: graphs, vocabulary, golden decodes, manifest.

Everything is written into a temporary directory next to `out_dir` and renamed into place
only after the graphs pass onnx.checker and (by default) parity, so a failed export never
leaves a half bundle behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import manifest as mf
from ..runtime.bundle import sha256_file
from ..runtime.errors import EdgeS2SError
from ..runtime.manifest import GraphSpec, Manifest, TokensSpec
from ..runtime.search import Beam, Greedy
from ..runtime.text import Vocab
from ..train.core.checkpoint import BEST, LAST
from .graphs import graph_io

GOLDEN_SEARCHES = [
    ({"type": "greedy"}, Greedy()),
    ({"type": "beam", "size": 5, "length_penalty": 1.0, "n_best": 1, "early_stop": True},
     Beam(size=5, length_penalty=1.0, n_best=1, early_stop=True)),
]


class ExportError(EdgeS2SError):
    """The run directory or checkpoint cannot be exported as asked."""


@dataclass
class ExportReport:
    """What `export_bundle` wrote and what it proved."""

    bundle: Path
    checkpoint: Path
    manifest: Manifest
    int8: bool = False
    parity: dict = field(default_factory=dict)  # {"step": ..., "search": ...}; empty when parity=False
    golden_cases: int = 0
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256 (manifest.json excluded)

    @property
    def max_abs_diff(self) -> float | None:
        step = self.parity.get("step")
        return None if not step else step["max_abs_diff"]


def resolve_checkpoint(run_dir: Path, checkpoint: str | Path) -> Path:
    """"best" (falls back to last.pt when no epoch finished), "last", or a path."""
    if str(checkpoint) == "best":
        p = run_dir / BEST
        return p if p.is_file() else run_dir / LAST
    if str(checkpoint) == "last":
        return run_dir / LAST
    p = Path(checkpoint)
    return p if p.is_absolute() or p.exists() else run_dir / p


def _quantize(src: Path, dst: Path, op_types: list[str] | None = None) -> None:
    """Dynamic int8 quantisation of `src` into `dst`; op_types None = every op ORT can
    quantise (Conv included), e.g. ["MatMul", "Gemm", "Gather"] for linear layers only."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=op_types)
    finally:
        root.setLevel(level)


def bundle_manifest(directory: Path, task: str, model, vocab: Vocab, preprocessing: dict, max_length: int,
                    model_info: dict, checkpoint: Path) -> Manifest:
    """The manifest of the graphs already written into `directory` (any DecoderContract model)."""
    enc_in, enc_out = graph_io(directory / mf.ENCODER_FILE)
    step_in, step_out = graph_io(directory / mf.STEP_FILE)
    return Manifest(
        task=task,
        tokens=TokensSpec(file=mf.TOKENS_FILE, size=len(vocab), pad_id=vocab.pad_id, unk_id=vocab.unk_id,
                          bos_id=vocab.bos_id, eos_id=vocab.eos_id),
        preprocessing=preprocessing,
        max_length=max_length,
        encoder=GraphSpec(mf.ENCODER_FILE, enc_in, enc_out),
        decoder_step=GraphSpec(mf.STEP_FILE, step_in, step_out),
        memory=model.memory_names,
        state=model.state_specs(),
        attention=model.attention,
        memory_length_from=model.memory_length_from,
        model=model_info,
        source_checkpoint_sha256=sha256_file(checkpoint),
        created_by="edge-s2s export",
    )


def write_manifest(directory: Path, manifest: Manifest, metrics: dict) -> dict[str, str]:
    """Record every file's sha256 and `metrics` in the manifest and save it; returns the files."""
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != mf.MANIFEST_FILE}
    manifest.files = files
    manifest.metrics = metrics
    manifest.save(directory)
    return files


@contextmanager
def staged_bundle(out: Path, check: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """A temporary directory next to `out` that becomes `out` only when the block succeeds.

    Whatever fails inside (export, checker, parity) removes it, so a failed export never
    leaves a half bundle behind; the manifest must parse before the rename (`check`, default
    Manifest.load; a memory network's bundle passes MemoryManifest.load).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(out.parent)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is an ordinary directory
    try:
        yield tmp
        (check or Manifest.load)(tmp)  # what the runtime reads back must parse
        _finalize(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finalize(tmp: Path, out: Path) -> None:
    """Move the finished temp bundle to `out`, replacing an older bundle there."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / mf.MANIFEST_FILE).is_file()):
            raise ExportError(f"{out} exists and is not an edge-s2s bundle: refusing to overwrite it, choose another "
                              "output directory")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


