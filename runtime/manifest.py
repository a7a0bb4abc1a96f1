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
ANSWER_TASK = "answer"  # memory networks: their own manifest (runtime/tasks/memory_manifest.py)


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
    """A GraphSpec from its manifest dict."""
    return GraphSpec(file=g["file"], inputs=[TensorSpec(**t) for t in g["inputs"]],
                     outputs=[TensorSpec(**t) for t in g["outputs"]])


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
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    # --- serialisation -------------------------------------------------------------

    def to_json(self) -> str:
        d = asdict(self)
        d["state"] = [s.to_dict() for s in self.state]
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
