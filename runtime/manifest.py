"""The bundle contract: what `manifest.json` holds and the fixed graph I/O names.

Export writes a `Manifest`, the runtime reads it back and checks the graphs against it.
Everything the decoding loop needs to know about a model is here; the loop never
looks inside a state tensor.

Bundle directory::

    manifest.json      this file's `Manifest`
    tokens.txt         one token a line, line number = id (ids 0-3: <pad> <unk> <s> </s>)
    golden.json        held-out inputs with their PyTorch decodes (`edge-s2s verify`)
    encoder.onnx       source -> memory tensors + encoder-initialised states
    decoder_step.onnx  one step for N rows

decoder_step.onnx
    inputs   token int64 [N]        previous token of each row (<s> at step 0)
             row int64 [N]          which previous row each new row continues; the graph
                                    Gathers every state.* with it (beam reorder in-graph)
             batch_of_row int64 [N] which encoder item each row reads (memory is never
                                    copied per beam)
             topk int64 [1]         how many (log-prob, id) pairs TopK returns per row
             <memory names>         encoder outputs, passed unchanged every step, [B, ...]
             state.<name>           every state, row axis first, [N_prev, ...]
    outputs  logprobs float32 [N, V]           log-softmax over the vocabulary
             topk_logprobs float32 [N, K], topk_ids int64 [N, K]
             attention float32 [N, L]          (only when the manifest names it)
             state.<name>.next                 every state after this step, [N, ...]
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import schema as sc
from .errors import BundleError

FORMAT = "edge-s2s-bundle"
FORMAT_VERSION = 1

MANIFEST_FILE = "manifest.json"
TOKENS_FILE = "tokens.txt"
GOLDEN_FILE = "golden.json"
ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"

# Fixed names in decoder_step.onnx.
TOKEN = "token"
ROW = "row"
BATCH_OF_ROW = "batch_of_row"
TOPK = "topk"
LOGPROBS = "logprobs"
TOPK_LOGPROBS = "topk_logprobs"
TOPK_IDS = "topk_ids"
ATTENTION = "attention"
STATE_PREFIX = "state."
NEXT_SUFFIX = ".next"

DTYPES = ("float32", "float16", "int64", "int32", "bool")
IO_DTYPES = (*DTYPES, "float64")  # what a graph input or output may be
MAX_LENGTH_CEILING = 4096  # most output tokens a bundle may declare (and so a caller may ask for)
MAX_TOKENS_PER_SECOND = 1000.0  # a higher output rate is a damaged manifest (fast speech is ~15 characters/s)
MAX_VOCAB = 10_000_000
MAX_STATE_DIM = 1 << 20  # a state axis longer than this is a damaged manifest, not a model
ANSWER_TASK = "answer"  # memory networks: their own manifest (runtime/tasks/memory_manifest.py)


# the command and class that run each manifest task: what a wrong-bundle error points to
TASK_USE = {"translate": "`edge-s2s translate` (Seq2Seq)", "caption": "`edge-s2s caption` (Captioner)",
            "transcribe": "`edge-s2s transcribe` (Transcriber)", "generate": "`edge-s2s generate` (Generator)",
            "answer": "`edge-s2s answer` (MemoryNetwork)"}


def wrong_task(task: str, wanted: str) -> BundleError:
    """One line for a bundle of another task: what it is, and what runs it."""
    use = TASK_USE.get(task, "the command for its task")
    return BundleError(f"this is a {task!r} bundle, not a {wanted!r} one: run it with {use}")


def read_manifest_dict(directory: str | Path) -> dict[str, Any]:
    """manifest.json of a bundle as a dict (any task); BundleError for a missing or unreadable one."""
    path = Path(directory, MANIFEST_FILE)
    if not Path(directory).is_dir():
        raise BundleError(f"bundle {directory} does not exist or is not a directory: "
                          "pass the directory `edge-s2s export` wrote")
    if not path.is_file():
        raise BundleError(f"{directory} has no manifest.json, so it is not a bundle: "
                          "pass the directory `edge-s2s export` wrote")
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} is not valid JSON ({e}): the bundle is corrupt, re-export it") from None
    if not isinstance(d, dict):
        raise BundleError(f"{path} is not a JSON object: the bundle is corrupt, re-export it")
    return d


def check_format(d: dict[str, Any]) -> None:
    """The format name and version every bundle manifest (any task) must carry."""
    if d.get("format") != FORMAT:
        raise BundleError(f"manifest.json is not an {FORMAT} manifest (format={d.get('format')!r}): point at a "
                          "bundle written by `edge-s2s export`")
    version = d.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"bundle format version {version} is not supported by this runtime (it reads version {FORMAT_VERSION}): "
            "re-export the bundle with this edge-s2s version, or install the edge-s2s version that wrote it"
        )


def graph_spec(g: dict[str, Any]) -> GraphSpec:
    """A GraphSpec from its manifest dict (checked with `check_graph_dict` first)."""
    return GraphSpec(file=g["file"], inputs=[TensorSpec(**t) for t in g["inputs"]],
                     outputs=[TensorSpec(**t) for t in g["outputs"]])


def check_graph_dict(g: Any, where: str) -> None:
    """One graph's entry: a plain file name and its declared inputs / outputs."""
    g = sc.dict_field(g, where)
    sc.plain_name(sc.require(g, "file", where), f"{where}.file")
    for side in ("inputs", "outputs"):
        tensors = sc.list_field(sc.require(g, side, where), f"{where}.{side}")
        names = set()
        for i, t in enumerate(tensors):
            at = f"{where}.{side}[{i}]"
            t = sc.dict_field(t, at)
            extra = sorted(set(t) - {"name", "dtype", "shape"})
            if extra:
                raise sc.fail(at, "an object with name, dtype and shape only", extra)
            name = sc.str_field(sc.require(t, "name", at), f"{at}.name")
            if name in names:
                raise sc.fail(at, "a tensor named once", name)
            names.add(name)
            sc.str_field(sc.require(t, "dtype", at), f"{at}.dtype", IO_DTYPES)
            for d in sc.list_field(sc.require(t, "shape", at), f"{at}.shape"):
                if isinstance(d, bool) or not (isinstance(d, str) or (isinstance(d, int) and d >= 0)):
                    raise sc.fail(f"{at}.shape", "a list of sizes (integers >= 0) or axis names", d)


def check_tokens_dict(t: Any, where: str = "tokens") -> int:
    """The vocabulary entry: plain file name, size, special ids inside the vocabulary; returns the size."""
    t = sc.dict_field(t, where)
    extra = sorted(set(t) - {"file", "size", "pad_id", "unk_id", "bos_id", "eos_id"})
    if extra:
        raise sc.fail(where, "an object with file, size and the special ids only", extra)
    sc.plain_name(sc.require(t, "file", where), f"{where}.file")
    size = sc.int_field(sc.require(t, "size", where), f"{where}.size", 4, MAX_VOCAB)
    ids = {k: sc.int_field(t.get(k, d), f"{where}.{k}", 0, size - 1)
           for k, d in (("pad_id", 0), ("unk_id", 1), ("bos_id", 2), ("eos_id", 3))}
    if len(set(ids.values())) < 4:
        raise sc.fail(where, "four different special ids (pad, unk, bos, eos)", ids)
    return size


def check_files_dict(files: Any, needed: list[str]) -> None:
    """`files`: every file of the bundle with its sha256; a bundle without checksums is refused."""
    files = sc.dict_field(files, "files")
    if not files:
        raise BundleError(f"manifest.json lists no files with checksums, so nothing proves the graphs are the "
                          f"exported ones: {sc.FIX}")
    for name, sha in files.items():
        sc.plain_name(name, "a name in files")
        sc.sha256_field(sha, f"files[{name!r}]")
    missing = [n for n in needed if n not in files]
    if missing:
        raise BundleError(f"manifest.json: files lacks the checksum of {', '.join(missing)}: {sc.FIX}")


def check_manifest_dict(d: dict[str, Any]) -> None:
    """The whole manifest of a decoder bundle, field by field, before anything is built from it.

    Types and ranges of every field the runtime reads, special ids inside the vocabulary, state
    dtypes the loop carries and shapes it can allocate, plain file names, checksums present.
    Each problem is one BundleError line naming the field.
    """
    known = {f for f in Manifest.__dataclass_fields__}
    extra = sorted(set(d) - known)
    if extra:
        raise BundleError(f"manifest.json has fields this runtime does not know ({', '.join(extra)}): install the "
                          f"edge-s2s version that wrote the bundle, or {sc.FIX}")
    sc.str_field(sc.require(d, "task", ""), "task")
    check_tokens_dict(sc.require(d, "tokens", ""))
    sc.dict_field(sc.require(d, "preprocessing", ""), "preprocessing")
    sc.int_field(sc.require(d, "max_length", ""), "max_length", 1, MAX_LENGTH_CEILING)
    for key in ("encoder", "decoder_step"):
        check_graph_dict(sc.require(d, key, ""), key)
    memory = sc.list_field(sc.require(d, "memory", ""), "memory")
    for i, m in enumerate(memory):
        sc.str_field(m, f"memory[{i}]")
    names = set()
    for i, s in enumerate(sc.list_field(sc.require(d, "state", ""), "state")):
        at = f"state[{i}]"
        s = sc.dict_field(s, at)
        extra = sorted(set(s) - {f for f in StateSpec.__dataclass_fields__})
        if extra:
            raise sc.fail(at, "an object with name, shape, dtype, init, title, axes", extra)
        name = sc.str_field(sc.require(s, "name", at), f"{at}.name")
        if not name or name in names:
            raise sc.fail(f"{at}.name", "a state name given once", name)
        names.add(name)
        shape = sc.list_field(sc.require(s, "shape", at), f"{at}.shape")
        if not shape or shape[0] != "N":
            raise sc.fail(f"state.{name}.shape", "a list that starts with the row axis 'N'", shape)
        for dim in shape[1:]:
            if dim != "L":
                sc.int_field(dim, f"state.{name}.shape", 1, MAX_STATE_DIM)
        sc.str_field(s.get("dtype", "float32"), f"state.{name}.dtype", DTYPES)
        init = s.get("init", "encoder")
        if init != "encoder":
            sc.number_field(init, f"state.{name}.init (or 'encoder')")
        sc.str_field(s.get("title", ""), f"state.{name}.title")
        for a in sc.list_field(s.get("axes", []), f"state.{name}.axes"):
            sc.str_field(a, f"state.{name}.axes")
    rate = d.get("max_tokens_per_second")
    if rate is not None and not 0 < sc.number_field(rate, "max_tokens_per_second") <= MAX_TOKENS_PER_SECOND:
        raise sc.fail("max_tokens_per_second", f"a rate above 0 and at most {MAX_TOKENS_PER_SECOND:g} tokens a second "
                      "(or absent)", rate)
    sc.bool_field(d.get("attention", True), "attention")
    sc.str_field(d.get("memory_length_from", "memory"), "memory_length_from")
    sc.dict_field(d.get("model", {}), "model")
    sc.dict_field(d.get("metrics", {}), "metrics")
    sc.str_field(d.get("source_checkpoint_sha256", ""), "source_checkpoint_sha256")
    sc.str_field(d.get("created_by", ""), "created_by")
    needed = [d["encoder"]["file"], d["decoder_step"]["file"], d["tokens"]["file"]]
    check_files_dict(d.get("files", {}), needed)


def state_input(name: str) -> str:
    """Graph input (and encoder output, when encoder-initialised) of state `name`."""
    return f"{STATE_PREFIX}{name}"


def state_output(name: str) -> str:
    """Step-graph output holding state `name` after the step."""
    return f"{STATE_PREFIX}{name}{NEXT_SUFFIX}"


@dataclass
class TensorSpec:
    """One graph input or output: name, dtype, shape with symbolic dims as strings."""

    name: str
    dtype: str
    shape: list[int | str]


@dataclass
class StateSpec:
    """One decoder state tensor.

    shape: row axis first, written "N"; other dims are ints or "L" (memory length).
    init: "encoder" (the encoder outputs `state.<name>` [B, ...]) or a number, the
    constant every element starts from.
    title, axes: what a person calls the tensor ("write weighting") and each of its axes,
    row axis first (["row", "head", "memory slot"]); only pictures read them (`edge-s2s
    plot-trace`), the loop never does. Empty means unnamed, and is left out of manifest.json.
    """

    name: str
    shape: list[int | str]
    dtype: str = "float32"
    init: str | float = "encoder"
    title: str = ""
    axes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As manifest.json stores it: the display names only when given."""
        d = asdict(self)
        for key in ("title", "axes"):
            if not d[key]:
                del d[key]
        return d


@dataclass
class GraphSpec:
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


@dataclass
class TokensSpec:
    file: str = TOKENS_FILE
    size: int = 0
    pad_id: int = 0
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3


@dataclass
class Manifest:
    """Everything the runtime needs to load and run a bundle."""

    task: str  # "translate" (text -> text); later: "caption", "transcribe", "generate"
    tokens: TokensSpec
    preprocessing: dict[str, Any]  # text: {"type": "text", "lowercase": true, "max_source_length": 100}
    max_length: int  # most output tokens a decode may produce (end token included)
    encoder: GraphSpec
    decoder_step: GraphSpec
    memory: list[str]  # encoder outputs handed to every step unchanged
    state: list[StateSpec]
    attention: bool = True  # whether decoder_step outputs `attention` [N, L]
    memory_length_from: str = "memory"  # memory tensor whose axis 1 is L
    model: dict[str, Any] = field(default_factory=dict)  # free-form: architecture config
    metrics: dict[str, Any] = field(default_factory=dict)  # training / parity metrics
    source_checkpoint_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    created_by: str = ""
    # Speech bundles: the most output tokens per second of audio among the training recordings, so
    # that the runtime's step limit follows each recording's length (runtime/tasks/transcriber.py
    # `step_limit`) instead of one max_length. None: not recorded (bundles exported before it was),
    # and left out of manifest.json so that runtimes older than the field still read the bundle.
    max_tokens_per_second: float | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    # --- serialisation -------------------------------------------------------------

    def to_json(self) -> str:
        d = asdict(self)
        d["state"] = [s.to_dict() for s in self.state]
        if d["max_tokens_per_second"] is None:
            del d["max_tokens_per_second"]
        return json.dumps(d, indent=2, ensure_ascii=False)

    def save(self, directory: str | Path) -> None:
        Path(directory, MANIFEST_FILE).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            check_format(d)
            if d.get("task") == ANSWER_TASK:  # runtime/tasks/memory_manifest.py: one graph, no decoder step
                raise BundleError("this bundle is a memory network (task 'answer'): it answers questions about a "
                                  "story, run it with `edge-s2s answer --bundle DIR --story story.txt "
                                  "\"Where is Mary?\"` (MemoryNetwork.load in Python)")
            check_manifest_dict(d)
            d = dict(d)
            d["tokens"] = TokensSpec(**d["tokens"])
            for key in ("encoder", "decoder_step"):
                d[key] = graph_spec(d[key])
            d["state"] = [StateSpec(**s) for s in d["state"]]
            return cls(**d)
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"manifest.json is malformed ({type(e).__name__}: {e}): re-export the bundle") from None

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        return cls.from_dict(read_manifest_dict(directory))

    # --- derived views ---------------------------------------------------------------

    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.state]

    def step_input_names(self) -> list[str]:
        return [TOKEN, ROW, BATCH_OF_ROW, TOPK, *self.memory, *(state_input(n) for n in self.state_names)]

    def step_output_names(self) -> list[str]:
        names = [LOGPROBS, TOPK_LOGPROBS, TOPK_IDS]
        if self.attention:
            names.append(ATTENTION)
        return names + [state_output(n) for n in self.state_names]

    def encoder_output_names(self) -> list[str]:
        return [*self.memory, *(state_input(s.name) for s in self.state if s.init == "encoder")]
