"""`edge-s2s answer`: questions about a story, answered by a memory-network bundle.

Everything is read and checked before anything is printed, so a mistake (missing bundle,
a bundle of another task, missing / unreadable / empty story file, a question line in the
story, an empty question) is one `error:` line and exit code 1. What the runtime changed
about the input (unknown words read as <unk>, the oldest sentences dropped when the story
is longer than the memory) is said once, as `warning:` lines on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from .common import ProviderOpt, ThreadsOpt, read_lines


def read_story_file(path: Path | None) -> str:
    """The story file's text; InputError (one line) when it is not given, missing, unreadable or empty."""
    if path is None:
        raise InputError("--story is required: a text file with the story, one sentence a line")
    if not path.exists():
        raise InputError(f"story file {path} does not exist: give a text file with one sentence a line")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a story file: give a text file with one sentence a line")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read story file {path} ({e.strerror or e}): check its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"story file {path} is not UTF-8 text (invalid byte at line {line}): convert it with "
                         "iconv -t UTF-8") from None
    if not text.strip():
        raise InputError(f"story file {path} is empty: write the story in it, one sentence a line")
    return text


def _answer_json(a, top: int) -> dict:
    first = a.dropped + 1  # sentence numbers count the whole story as given
    return {"question": a.question, "answer": a.text, "probability": round(a.probability, 6),
            "hops": [{"hop": h, "top": [{"sentence": first + i, "text": s, "attention": round(w, 6)}
                                        for i, s, w in a.top(h, top)]} for h in range(1, a.hops + 1)],
            "unknown_words": a.unknown_words, "dropped_sentences": a.dropped, "notes": a.notes}


def _answer_lines(a, top: int) -> list[str]:
    lines = [a.question, f"answer: {a.text}  (p = {a.probability:.3f})"]
    for h in range(1, a.hops + 1):
        for j, (_, s, w) in enumerate(a.top(h, top)):
            lines.append(f"  {f'hop {h}' if j == 0 else '':<7}{w:6.3f}  {s}")
    return lines


def answer(
    questions: Annotated[list[str] | None, typer.Argument(help="Questions about the story; none = one per line "
                                                               "on standard input.")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Memory-network bundle written by "
                                                                      "`edge-s2s export`.")] = None,
    story: Annotated[Path | None, typer.Option("--story", "-s", help="Text file with the story, one sentence a "
                                                                     "line (bAbI-numbered lines are fine).")] = None,
    top: Annotated[int, typer.Option(help="Sentences shown per hop, most attended first.")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per question.")] = False,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
) -> None:
    """Answer questions about a story with a memory network; show what each hop attended to."""
    from ..runtime.tasks.memory_network import MemoryNetwork, dropped_note, unknown_note

    if top < 1:
        raise InputError(f"--top must be >= 1, got {top}")
    if bundle is None:
        raise InputError("--bundle is required: a memory-network bundle (edge-s2s train babi, then edge-s2s export)")
    net = MemoryNetwork.load(bundle, provider=provider, threads=threads)
    text = read_story_file(story)
    memory = net.memory(text, source=str(story))
    asked = read_lines(questions)
    answers = net.answer_many([memory] * len(asked), asked)
    unknown = list(dict.fromkeys(w for a in answers for w in a.unknown_words))
    if unknown:
        typer.echo(f"warning: {unknown_note(unknown)}", err=True)
    if memory.dropped:
        typer.echo(f"warning: {dropped_note(memory.dropped, memory.total, net.memory_size)}", err=True)
    for i, a in enumerate(answers):
        if json_out:
            typer.echo(json.dumps(_answer_json(a, top), ensure_ascii=False))
            continue
        if i:
            typer.echo("")
        for line in _answer_lines(a, top):
            typer.echo(line)


def memory_info(bundle: Path, json_out: bool = False) -> None:
    """`edge-s2s info` of a memory-network bundle: model, vocabulary, answers, graph, metrics."""
    from ..runtime.tasks.memory_network import MemoryNetwork

    m, _, _ = MemoryNetwork.check(bundle)  # a damaged bundle is one error line and exit 1
    if json_out:
        typer.echo(m.to_json())
        return
    echo = typer.echo
    echo(f"bundle      {bundle}")
    echo(f"format      {m.format} v{m.format_version}   created by {m.created_by or '?'}")
    echo(f"task        {m.task} (memory network: {m.hops} hops, d={m.dim}, memory {m.memory_size} sentences, "
         f"encoding {m.encoding})")
    echo("model       " + ", ".join(f"{k}={v}" for k, v in m.model.items()))
    echo(f"vocabulary  {m.tokens.size} tokens ({m.tokens.file})   answers {m.answers.size} ({m.answers.file})")
    echo("input       " + ", ".join(f"{k}={v}" for k, v in m.preprocessing.items()))
    echo("files")
    for name, sha in m.files.items():
        p = Path(bundle, name)
        size = f"{p.stat().st_size / 1e6:8.2f} MB" if p.exists() else "  MISSING"
        echo(f"  {name:<20}{size}  sha256 {sha[:12]}")
    echo(f"graph ({m.graph.file})")
    for kind, tensors in (("in ", m.graph.inputs), ("out", m.graph.outputs)):
        for t in tensors:
            echo(f"  {kind}  {t.name:<22}{t.dtype:<9}[{', '.join(str(d) for d in t.shape)}]")
    tr = m.metrics.get("training", {})
    if tr:
        hist = tr.get("history") or []
        line = f"  {'training':<20}checkpoint {tr.get('checkpoint', '?')}, {len(hist)} epochs"
        if hist:
            line += f"; last val error {hist[-1].get('val_error', float('nan')):.4g}"
        echo("metrics")
        echo(line)
        for t, e in (tr.get("test_error") or {}).items():
            echo(f"  {'test error':<20}task {t}: {100 * e:.1f}%")
    p = m.metrics.get("parity")
    if p:
        echo(f"  {'parity':<20}enforced: max |onnx - torch| {p.get('max_abs_diff', float('nan')):.3g} over "
             f"{len(p.get('settings', []))} batch/memory settings, answers identical")
