"""Load a bundle directory and check it against its manifest before anything runs.

Every problem is one `BundleError` line that names it and the fix: missing file, wrong
checksum, unsupported format version, vocabulary size, graph inputs/outputs or dtypes that
do not match the manifest, a corrupt graph.
"""

from __future__ import annotations

import functools

import hashlib
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from .cache import known_sha256s
from .errors import BundleError
from .manifest import GraphSpec, Manifest, state_input, state_output
from .schema import bundle_path
from .session import create_session, device_of
from .text import Vocab

ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
}
FIX = "re-export the bundle with `edge-s2s export`"
SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models"  # package data: the default bundles


def shipped_bundle(name: str) -> Path:
    """Where a default bundle ("captioner", "transcriber") ships inside the package."""
    return SHIPPED_MODELS / name


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_files(directory: Path, files: dict[str, str], needed: list[str], full: bool = False) -> None:
    """Every needed and listed file is a plain file inside the bundle; every listed sha256 matches.

    manifest.json itself is not listed: the schema check reads every field of it instead.
    full=False takes a file's sha256 from the cache when the file is unchanged since it was last
    hashed (runtime/cache.py: same inode, size, mtime and ctime); full=True always hashes.
    """
    for name in needed:
        if not bundle_path(directory, name, "a file").is_file():
            raise BundleError(f"bundle {directory} is missing {name}: {FIX} (or copy the whole directory)")
    paths = {}
    for name in files:
        p = bundle_path(directory, name, "a name in files")
        if not p.is_file():
            raise BundleError(f"bundle {directory} is missing {name}, listed in manifest.json: {FIX} (or copy the whole directory)")
        paths[name] = p
    sums = {p: sha256_file(p) for p in paths.values()} if full else known_sha256s(list(paths.values()), sha256_file)
    for name, expected in files.items():
        got = sums[paths[name]]
        if got != expected:
            raise BundleError(f"{name} does not match its sha256 in manifest.json (file changed or corrupt): {FIX}")


def _check_io(title: str, kind: str, spec: list, real: list, required: list[str], exact: bool) -> None:
    """Compare one side (inputs or outputs) of a graph with its spec and the contract names."""
    spec_by = {t.name: t for t in spec}
    real_by = {t.name: t for t in real}
    for name in required:
        if name not in spec_by:
            raise BundleError(f"manifest.json: {title} {kind} list lacks {name!r}, which the runtime needs: {FIX}")
    for name, t in spec_by.items():
        if name not in real_by:
            raise BundleError(f"{title} has no {kind[:-1]} {name!r} although manifest.json declares it: {FIX}")
        got = ORT_DTYPES.get(real_by[name].type, real_by[name].type)
        if got != t.dtype:
            raise BundleError(f"{title} {kind[:-1]} {name!r} is {got} but manifest.json says {t.dtype}: {FIX}")
    if exact:
        extra = [n for n in real_by if n not in spec_by]
        if extra:
            raise BundleError(f"{title} has {kind} {extra} that manifest.json does not declare: {FIX}")


def check_graph(session: ort.InferenceSession, spec: GraphSpec, title: str, required_inputs: list[str],
                required_outputs: list[str]) -> None:
    _check_io(title, "inputs", spec.inputs, session.get_inputs(), required_inputs, exact=True)
    _check_io(title, "outputs", spec.outputs, session.get_outputs(), required_outputs, exact=False)


def check_manifest(manifest: Manifest) -> None:
    """Internal consistency of the manifest itself."""
    if manifest.memory and manifest.memory_length_from not in manifest.memory:
        raise BundleError(f"manifest.json: memory_length_from {manifest.memory_length_from!r} is not one of the memory "
                          f"tensors {manifest.memory}: {FIX}")
    if not manifest.memory and not any(s.init == "encoder" for s in manifest.state):
        raise BundleError(f"manifest.json: a bundle without memory tensors needs an encoder-initialised state "
                          f"(the batch size comes from it): {FIX}")
    if manifest.max_length < 1:
        raise BundleError(f"manifest.json: max_length must be >= 1, got {manifest.max_length}: {FIX}")
    declared = {t.name: t.dtype for t in [*manifest.decoder_step.inputs, *manifest.decoder_step.outputs,
                                          *manifest.encoder.outputs]}
    for s in manifest.state:
        if not s.shape or s.shape[0] != "N":
            raise BundleError(f"manifest.json: state.{s.name} shape {s.shape} must start with the row axis 'N': {FIX}")
        if s.init != "encoder" and not isinstance(s.init, (int, float)):
            raise BundleError(f"manifest.json: state.{s.name} init {s.init!r} must be 'encoder' or a number: {FIX}")
        for name in (state_input(s.name), state_output(s.name)):
            if name in declared and declared[name] != s.dtype:
                raise BundleError(f"manifest.json: state.{s.name} is {s.dtype} but the graphs' {name} is "
                                  f"{declared[name]}: {FIX}")


def check_state_shapes(step: ort.InferenceSession, manifest: Manifest) -> None:
    """Each declared state has the rank (and the fixed sizes) of the step graph's real input."""
    real = {t.name: t.shape for t in step.get_inputs()}
    for s in manifest.state:
        shape = real.get(state_input(s.name))
        if shape is None:
            continue  # check_graph names a missing input
        fixed = [(i, d) for i, d in enumerate(s.shape) if isinstance(d, int) and i < len(shape)
                 and isinstance(shape[i], int) and shape[i] != d]
        if len(shape) != len(s.shape) or fixed:
            raise BundleError(f"manifest.json: state.{s.name} has shape {s.shape} but the step graph's input is "
                              f"{shape}: {FIX}")


@dataclass
class Bundle:
    """A loaded, checked bundle: manifest, vocabulary and the two sessions."""

    path: Path
    manifest: Manifest
    vocab: Vocab
    encoder: ort.InferenceSession
    step: ort.InferenceSession

    @property
    def providers(self) -> list[str]:
        """Providers the step session really got (onnxruntime may fall back silently)."""
        return self.step.get_providers()

    @functools.cached_property
    def device(self) -> str:
        """Where the loop keeps state ("cpu" or "cuda"); fixed once the step session exists."""
        return device_of(self.providers)

    @staticmethod
    def check(path: str | Path, full: bool = False) -> tuple[Manifest, Vocab]:
        """Everything about a bundle that needs no ONNX Runtime session: the manifest field by field,
        its consistency, every file inside the bundle with its checksum, the vocabulary size.
        `edge-s2s info` runs this; `load` runs it and then checks the graphs' real inputs and outputs."""
        directory = Path(path)
        manifest = Manifest.load(directory)
        check_manifest(manifest)
        check_files(directory, manifest.files, [manifest.encoder.file, manifest.decoder_step.file, manifest.tokens.file],
                    full)
        vocab = Vocab.load(directory / manifest.tokens.file)
        if len(vocab) != manifest.tokens.size:
            raise BundleError(f"{manifest.tokens.file} has {len(vocab)} tokens but manifest.json says {manifest.tokens.size}: {FIX}")
        return manifest, vocab

    @classmethod
    def load(cls, path: str | Path, provider: str = "cpu", threads: int = 0, optimization: str = "all",
             full_check: bool = False, step_threads: int | None = None) -> Bundle:
        """Check and load a bundle; threads for both sessions (0 = the policy), step_threads for the
        decoder step alone when a task knows better (None = threads)."""
        directory = Path(path)
        manifest, vocab = cls.check(directory, full_check)
        encoder = create_session(directory / manifest.encoder.file, provider, threads, optimization,
                                 manifest.files.get(manifest.encoder.file))
        step = create_session(directory / manifest.decoder_step.file, provider,
                              threads if step_threads is None else step_threads, optimization,
                              manifest.files.get(manifest.decoder_step.file))
        check_graph(encoder, manifest.encoder, manifest.encoder.file, [], manifest.encoder_output_names())
        check_graph(step, manifest.decoder_step, manifest.decoder_step.file, manifest.step_input_names(),
                    manifest.step_output_names())
        check_state_shapes(step, manifest)
        extra = [t.name for t in manifest.decoder_step.inputs if t.name not in manifest.step_input_names()]
        if extra:
            raise BundleError(f"{manifest.decoder_step.file} inputs {extra} are not in the step contract "
                              f"(token, row, batch_of_row, topk, memory, state.*): {FIX}")
        return cls(directory, manifest, vocab, encoder, step)
