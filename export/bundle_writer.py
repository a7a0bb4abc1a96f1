"""Write a bundle from a training run: graphs, vocabulary, golden decodes, manifest.

Everything is written into a temporary directory next to `out_dir` and renamed into place
only after the graphs pass onnx.checker and (by default) parity, so a failed export never
leaves a half bundle behind.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import sys
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

# what each --int8-parts choice quantises (None: every op type ORT can; the CNN's convolutions too)
INT8_OPS = {"none": None, "linear": ["MatMul", "Gemm", "Gather"], "all": None}

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
    """"best" (falls back to last.pt when no epoch finished), "last", "average" (the parameter mean
    of the run's kept epoch ends, written to average.pt: train with keep_epochs), or a path."""
    if str(checkpoint) == "average":
        from ..train.core.checkpoint import EPOCH_PATTERN, CheckpointError, average_checkpoints

        kept = sorted(Path(run_dir).glob(EPOCH_PATTERN))
        if len(kept) < 2:
            raise CheckpointError(f"{run_dir} keeps {len(kept)} epoch checkpoint(s); averaging needs 2 or more: "
                                  "train with --keep-epochs N (N >= 2), or export best / last")
        return average_checkpoints(kept, Path(run_dir) / "average.pt")
    if str(checkpoint) == "best":
        p = run_dir / BEST
        return p if p.is_file() else run_dir / LAST
    if str(checkpoint) == "last":
        return run_dir / LAST
    p = Path(checkpoint)
    return p if p.is_absolute() or p.exists() else run_dir / p


def _quantize(src: Path, dst: Path, op_types: list[str] | None = None, keep_float: tuple[str, ...] = ()) -> None:
    """Dynamic int8 quantisation of `src` into `dst`; op_types None = every op ORT can
    quantise (Conv and LSTM included), e.g. ["MatMul", "Gemm", "Gather"] for linear layers only.

    Every quantised MatMul then gets its input's scale per row (export/int8_rows.py), so that a
    row's result does not depend on its batch-mates. A quantised LSTM (DynamicQuantizeLSTM)
    still scales its whole input at once: leave "LSTM" out of op_types where that matters.

    keep_float: initializer names whose consuming nodes stay float32. Dynamic quantisation also
    rounds a node's *input* to 256 levels, which turns small probabilities into ties (a top-K
    over them then picks by index): a node that must keep exact values is listed here."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .int8_rows import per_row_activations

    exclude = []
    if keep_float:
        graph = onnx.load(str(src), load_external_data=False).graph
        exclude = [n.name for n in graph.node if any(x.endswith(keep_float) for x in n.input)]

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                         nodes_to_exclude=exclude)
    finally:
        root.setLevel(level)
    model = onnx.load(str(dst))
    if per_row_activations(model):
        onnx.save(model, str(dst))


def quantize_bundle(src: Path, dst: Path, ops: list[str] | None,
                    golden: Callable[[Path], None] | None = None) -> Path:
    """A copy of bundle `src` at `dst` whose two graphs have int8 dynamic-quantised weights (`ops`:
    the op types to quantise, None = every one ORT can).

    Parity with PyTorch was proved on the fp32 graphs (their report is kept, marked as such); the
    golden cases must come from the int8 graphs themselves, so `golden(dir)` rewrites golden.json
    in the staged copy (or the fp32 one is dropped when no `golden` is given).
    """
    with staged_bundle(dst) as tmp:
        for p in src.iterdir():
            if p.is_file() and p.name not in (mf.ENCODER_FILE, mf.STEP_FILE):
                shutil.copyfile(p, tmp / p.name)
        for name in (mf.ENCODER_FILE, mf.STEP_FILE):
            _quantize(src / name, tmp / name, ops)
        manifest = Manifest.load(tmp)
        manifest.model["int8"] = "all" if not ops else "linear"
        metrics = dict(manifest.metrics)
        if "parity" in metrics:
            metrics["parity"] = {"of": "the fp32 graphs these were quantised from", **metrics["parity"]}
        if golden is None:
            (tmp / mf.GOLDEN_FILE).unlink(missing_ok=True)
        write_manifest(tmp, manifest, metrics)  # the new graphs' checksums, before golden decodes them
        if golden is not None:
            golden(tmp)
            write_manifest(tmp, manifest, metrics)
    return dst


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
    """Record every file's sha256 and `metrics` in the manifest and save it; returns the files.

    An int8 bundle also declares which of its graphs couple a batch (`model.couples_batch`,
    export/int8_rows.couples_batch), so that a runtime can run those one item at a time where a
    result must not depend on the other inputs of its batch."""
    int8 = manifest.model.get("int8")
    if int8 and int8 != "none":
        manifest.model["couples_batch"] = _coupled_graphs(directory)
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != mf.MANIFEST_FILE}
    manifest.files = files
    manifest.metrics = metrics
    manifest.save(directory)
    return files


def _coupled_graphs(directory: Path) -> list[str]:
    """"encoder" and/or "decoder_step": the graphs in `directory` whose int8 ops scale a whole batch."""
    import onnx

    from .int8_rows import couples_batch

    out = []
    for key, name in (("encoder", mf.ENCODER_FILE), ("decoder_step", mf.STEP_FILE)):
        if (directory / name).is_file() and couples_batch(onnx.load(str(directory / name), load_external_data=False)):
            out.append(key)
    return out


@contextmanager
def staged_bundle(out: Path, check: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """A temporary directory next to `out` that becomes `out` only when the block succeeds.

    Whatever fails inside (export, checker, parity) removes it, so a failed export never
    leaves a half bundle behind; the manifest must parse before the swap (`check`, default
    Manifest.load; a memory network's bundle passes MemoryManifest.load). A kill at any instant
    leaves the old bundle or the new one at `out` (`_finalize`); what a killed export left
    beside it is recovered or removed by the next export into the same place (`_recover`).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_TAG}{os.getpid()}-", dir=str(out.parent)))
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


TMP_TAG = ".tmp-"  # .NAME.tmp-PID-XXXX: an export being written (after a swap: the old bundle being removed)
OLD_TAG = ".old-"  # .NAME.old-PID: the old bundle moved aside (only where the atomic swap is unavailable)


def _fsync_path(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Every file of the new bundle, then its directory, on disk before the swap makes it visible."""
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            _fsync_path(p)
    for d in sorted({p.parent for p in root.rglob("*")} | {root}, key=lambda x: -len(x.parts)):
        _fsync_path(d)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def _finalize(tmp: Path, out: Path) -> None:
    """Make the finished temp bundle `out`, replacing an older bundle there, so that a kill at any
    instant leaves the old or the new bundle at `out`: files and directories are fsynced first,
    then the two directories are swapped atomically (the old one, now at the temp name, is
    removed afterwards; a kill before that leaves it for the next export to remove)."""
    _fsync_tree(tmp)
    if out.exists() or out.is_symlink():
        if out.is_symlink() or not out.is_dir() or (any(out.iterdir()) and not (out / mf.MANIFEST_FILE).is_file()):
            raise ExportError(f"{out} exists and is not an edge-s2s bundle: refusing to overwrite it, choose another "
                              "output directory")
        if _exchange(tmp, out):
            _fsync_path(out.parent)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        # no atomic swap here: move the old bundle aside under a name the next export recognises
        old = out.parent / f".{out.name}{OLD_TAG}{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        _fsync_path(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
        _fsync_path(out.parent)


def _recover(out: Path) -> None:
    """Clean up after an export that was killed: put a moved-aside old bundle back when `out` is
    missing (a kill between the two renames of the fallback path), and remove temporary and old
    directories of earlier exports into the same place."""
    leftovers = sorted(out.parent.glob(f".{glob.escape(out.name)}{OLD_TAG}*"))
    if not out.exists():
        complete = [d for d in leftovers if (d / mf.MANIFEST_FILE).is_file()]
        if complete:
            os.replace(complete[-1], out)
            leftovers.remove(complete[-1])
    for d in [*leftovers, *out.parent.glob(f".{glob.escape(out.name)}{TMP_TAG}*")]:
        if d.is_dir() and not d.is_symlink() and not _alive_elsewhere(d):
            shutil.rmtree(d, ignore_errors=True)


def _alive_elsewhere(d: Path) -> bool:
    """Whether the directory belongs to another export still running (its PID is in the name)."""
    tag = TMP_TAG if TMP_TAG in d.name else OLD_TAG
    pid = d.name.rsplit(tag, 1)[-1].split("-")[0]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
