"""The bundle contract of a memory network (task "answer"): one graph, no decoding loop.

An End-To-End Memory Network answers with one softmax, so its bundle has no encoder /
decoder-step pair and no state schema; `Manifest` (runtime/manifest.py) refuses it with a
line pointing here, and `MemoryManifest` reads it. Same format tag, version, tokens and
sha256 checks as every bundle.

Bundle directory::

    manifest.json   this file's `MemoryManifest`
    tokens.txt      the words, one a line (ids 0-3: <pad> <unk> <s> </s>; <pad> = 0 is padding)
    answers.txt     the answer classes, one a line ("apple,football" is one class)
    golden.json     held-out stories and questions with PyTorch's answers (`edge-s2s verify`)
    memn2n.onnx     story int64 [B, M, J]      word ids, sentence i in row i (oldest first), 0-padded
                    question int64 [B, Jq]     word ids, 0-padded
                    n_sentences int64 [B]      rows of story in use (the rest is padding)
                 -> answer_logprobs float32 [B, A]   log-softmax over the answer classes
                    attention float32 [B, K, M]      each hop's weights over the sentences

M is at most `memory_size` (the runtime keeps the most recent sentences, as the paper).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import schema as sc
from ..errors import BundleError
from ..manifest import (
    ANSWER_TASK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    GraphSpec,
    TokensSpec,
    check_files_dict,
    check_format,
    check_graph_dict,
    check_tokens_dict,
    graph_spec,
    read_manifest_dict,
)

GRAPH_FILE = "memn2n.onnx"
ANSWERS_FILE = "answers.txt"
STORY = "story"
QUESTION = "question"
N_SENTENCES = "n_sentences"
ANSWER_LOGPROBS = "answer_logprobs"
ATTENTION = "attention"
INPUTS = [STORY, QUESTION, N_SENTENCES]
OUTPUTS = [ANSWER_LOGPROBS, ATTENTION]
FIX = "re-export the bundle with `edge-s2s export`"


@dataclass
class AnswersSpec:
    file: str = ANSWERS_FILE
    size: int = 0


@dataclass
class MemoryManifest:
    """Everything the runtime needs to load and run a memory-network bundle."""

    task: str  # always "answer"
    tokens: TokensSpec
    answers: AnswersSpec
    graph: GraphSpec
    memory_size: int  # most sentences the memory holds (the most recent are kept)
    hops: int
    dim: int
    encoding: str  # "pe" (position encoding) or "bow"
    preprocessing: dict[str, Any] = field(default_factory=dict)  # {"type": "story", "lowercase": true, ...}
    model: dict[str, Any] = field(default_factory=dict)  # the MemN2NConfig and more, free-form
    metrics: dict[str, Any] = field(default_factory=dict)  # training summary, test errors, parity
    source_checkpoint_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    created_by: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def save(self, directory: str | Path) -> None:
        Path(directory, MANIFEST_FILE).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MemoryManifest:
        check_format(d)
        task = d.get("task", "translate")
        if task != ANSWER_TASK:
            raise BundleError(f"this is a {task!r} bundle, not a memory network (task 'answer'): use "
                              f"`edge-s2s {task}` with it, or pass a bundle exported from `edge-s2s train babi`")
        check_memory_manifest_dict(d)
        try:
            d = dict(d)
            d["tokens"] = TokensSpec(**d["tokens"])
            d["answers"] = AnswersSpec(**d["answers"])
            d["graph"] = graph_spec(d["graph"])
            m = cls(**d)
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"manifest.json is malformed ({type(e).__name__}: {e}): {FIX}") from None
        m.check()
        return m

    @classmethod
    def load(cls, directory: str | Path) -> MemoryManifest:
        return cls.from_dict(read_manifest_dict(directory))

    def check(self) -> None:
        """Internal consistency: sizes positive, the graph declares the contract's names."""
        for name in ("memory_size", "hops", "dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise BundleError(f"manifest.json: {name} must be a positive integer, got {v!r}: {FIX}")
        if self.answers.size < 1:
            raise BundleError(f"manifest.json: the bundle declares {self.answers.size} answers: {FIX}")
        ins, outs = [t.name for t in self.graph.inputs], [t.name for t in self.graph.outputs]
        missing = [n for n in INPUTS if n not in ins] + [n for n in OUTPUTS if n not in outs]
        if missing:
            raise BundleError(f"manifest.json: the graph lacks {missing}, which the runtime needs: {FIX}")


def check_memory_manifest_dict(d: dict[str, Any]) -> None:
    """The whole manifest of a memory-network bundle, field by field (runtime/schema.py): types,
    ranges, plain file names, checksums present. Each problem is one BundleError line."""
    known = set(MemoryManifest.__dataclass_fields__)
    extra = sorted(set(d) - known)
    if extra:
        raise BundleError(f"manifest.json has fields this runtime does not know ({', '.join(extra)}): install the "
                          f"edge-s2s version that wrote the bundle, or {FIX}")
    check_tokens_dict(sc.require(d, "tokens", ""))
    answers = sc.dict_field(sc.require(d, "answers", ""), "answers")
    sc.plain_name(sc.require(answers, "file", "answers"), "answers.file")
    sc.int_field(sc.require(answers, "size", "answers"), "answers.size", 1, 1_000_000)
    check_graph_dict(sc.require(d, "graph", ""), "graph")
    for name, hi in (("memory_size", 10_000), ("hops", 100), ("dim", 1_000_000)):
        sc.int_field(sc.require(d, name, ""), name, 1, hi)
    sc.str_field(sc.require(d, "encoding", ""), "encoding")
    for name in ("preprocessing", "model", "metrics"):
        sc.dict_field(d.get(name, {}), name)
    for name in ("source_checkpoint_sha256", "created_by"):
        sc.str_field(d.get(name, ""), name)
    check_files_dict(d.get("files", {}), [d["graph"]["file"], d["tokens"]["file"], answers["file"]])


def read_answers(path: str | Path, size: int) -> list[str]:
    """answers.txt: one answer class a line; BundleError when missing, unreadable or the wrong size."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise BundleError(f"answers file {path} is missing: {FIX}") from None
    except UnicodeDecodeError:
        raise BundleError(f"answers file {path} is not UTF-8 text: {FIX}") from None
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != size or not all(lines):
        raise BundleError(f"{path} has {len(lines)} answers but manifest.json says {size} (or an empty line): {FIX}")
    return lines


def write_answers(path: str | Path, answers: list[str]) -> None:
    bad = [a for a in answers if not a or "\n" in a]
    if bad:
        raise ValueError(f"answers cannot be empty or contain newlines: {bad[:3]}")
    Path(path).write_text("\n".join(answers) + "\n", encoding="utf-8")
