"""Options and helpers every runtime command shares: loading a bundle, reading input."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from ..runtime.search import Beam, Greedy, Sample, SearchConfig

BundleOpt = Annotated[Path, typer.Option("--bundle", "-b", help="Bundle directory written by `edge-s2s export`.")]
ProviderOpt = Annotated[str, typer.Option(help="Execution provider: cpu, cuda or auto (best available).")]
ThreadsOpt = Annotated[int, typer.Option(help="Intra-op threads for ONNX Runtime (0 = its default).")]
RepetitionPenaltyOpt = Annotated[float, typer.Option(help="Multiply the log-prob of tokens already in the output "
                                                          "by this (>1 discourages repeats; 1 = off).")]
NoRepeatNgramOpt = Annotated[int, typer.Option(help="Never repeat an n-gram of this size (0 = off).")]


def read_lines(texts: list[str] | None) -> list[str]:
    """The inputs: the arguments, or one per line of standard input (UTF-8)."""
    if texts:
        return list(texts)
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("no input: give the text as an argument or pipe one sentence per line on standard input")
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"standard input is not UTF-8 text (invalid byte at line {line}): convert it with iconv -t UTF-8") from None
    lines = text.splitlines()
    if not lines:
        raise InputError("standard input is empty: pipe one sentence per line")
    return lines


def search_from_options(beam: int, n_best: int, length_penalty: float, sample: bool,
                        temperature: float, top_k: int, top_p: float, seed: int | None,
                        repetition_penalty: float = 1.0, no_repeat_ngram: int = 0) -> SearchConfig:
    """Build the search config from CLI flags, turning bad combinations into one clear line."""
    if beam < 1:
        raise InputError(f"--beam must be >= 1 (1 = greedy), got {beam}")
    if n_best < 1:
        raise InputError(f"--n-best must be >= 1, got {n_best}")
    pen = {"repetition_penalty": repetition_penalty, "no_repeat_ngram_size": no_repeat_ngram}
    try:
        if sample:
            if beam > 1:
                raise InputError("--sample and --beam exclude each other: choose one search")
            if n_best > 1:
                raise InputError("--n-best applies to beam search: drop it, or use --beam instead of --sample")
            return Sample(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, **pen)
        if n_best > beam:
            raise InputError(f"--n-best {n_best} needs a beam at least as wide: add --beam {n_best} (or more)")
        if beam > 1:
            return Beam(size=beam, length_penalty=length_penalty, n_best=n_best, **pen)
        return Greedy(**pen)
    except ValueError as e:
        raise InputError(f"{e}: fix the search options") from None


STDIN = Path("-")


def stdin_bytes(paths: list[Path], what: str) -> bytes | None:
    """The bytes of standard input when `-` is among the inputs (once; a file piped in), else None."""
    if STDIN not in paths:
        return None
    if paths.count(STDIN) > 1:
        raise InputError(f"'-' (standard input) can be given once: pipe one {what}")
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError(f"'-' reads the {what} from standard input, but nothing is piped in: "
                         f"cat FILE | edge-s2s ... -")
    data = sys.stdin.buffer.read()
    if not data:
        raise InputError(f"standard input is empty: pipe one {what}")
    return data


def attention_targets(target: Path, paths: list[Path]) -> list[Path]:
    """Where --attention writes each input's picture, one rule for every command:

    * an existing directory (or a name ending in '/'), or several inputs and a name without a
      suffix: a directory (created), `<input stem>.attention.png` inside it;
    * one input: `target` itself;
    * several inputs and a file name: `<target stem>-<input stem><suffix>` beside it.
    A stem that repeats gets its position added. Checked before any work (one error line).
    """
    from ..runtime.output_files import check_writable

    as_dir = target.is_dir() or str(target).endswith(("/", "\\")) or (len(paths) > 1 and not target.suffix)
    if as_dir:
        if target.exists() and not target.is_dir():
            raise InputError(f"--attention {target} is not a directory: pass a directory, or a file name for one input")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--attention {target}: cannot create the directory ({e.strerror or e}): choose a "
                             "writable place") from None
    elif len(paths) == 1:
        return [check_writable(target)]
    else:
        check_writable(target)
    seen: set[str] = set()
    out = []
    for i, p in enumerate(paths):
        stem = p.stem if p.stem not in seen else f"{p.stem}-{i}"
        seen.add(stem)
        out.append(target / f"{stem}.attention.png" if as_dir
                   else target.with_name(f"{target.stem}-{stem}{target.suffix or '.png'}"))
    return out


def hypothesis_json(h, with_attention: bool = False) -> dict:
    """One hypothesis as the --json output of every command prints it."""
    d = {"text": h.text, "tokens": h.tokens, "score": round(h.score, 6), "log_prob": round(h.log_prob, 6)}
    if with_attention and h.attention is not None:
        d["attention"] = [[round(float(a), 4) for a in row] for row in h.attention]
    return d
