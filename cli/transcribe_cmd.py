"""`edge-s2s transcribe`: recordings in, text out.

Every recording is read on its own: an unusable one gets an `error: FILE: ...` line on
stderr, the others are still transcribed, and the exit code is 1 if any failed. A
recording with no sound is not a failure: its transcript is empty and one `note:` line
on stderr says why. A transcript that stopped at its step limit before the model ended it (its
end may be missing) gets one `warning:` line on stderr and a "warning" field in --json; the exit
code stays 0 unless --strict.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from .common import STDIN, ProviderOpt, ThreadsOpt, attention_targets, search_from_options, stdin_bytes


def expand_audio_paths(paths: list[Path]) -> list[Path]:
    """Directories -> their audio files (sorted, not recursive, hidden files skipped); files kept as given,
    so a missing or odd file gets its own error when it is read."""
    from ..runtime.media.audio import AUDIO_EXTENSIONS

    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(f for f in path.iterdir()
                       if f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith(".") and f.is_file())
        if not found:
            raise InputError(f"directory {path} has no audio files ({' '.join(AUDIO_EXTENSIONS)}; subdirectories "
                             "are not searched): pass a directory that holds recordings, or the files themselves")
        out.extend(found)
    return out


def transcript_json(path: Path, result) -> dict:
    """One file's --json object: text, score, and each character with the time (s) of its attention peak."""
    if not result.ok:
        return {"file": str(path), "error": result.error}
    h = result.hypotheses[0]
    d = {"file": str(path), "text": h.text, "score": round(h.score, 6), "duration": round(result.duration, 4),
         "tokens": h.tokens, "times": result.token_times()}
    if result.note:
        d["note"] = result.note
    if result.warning:
        d["warning"] = result.warning
    if result.pieces:
        d["pieces"] = [list(p) for p in result.pieces]
    return d


def transcribe(
    audio: Annotated[list[Path] | None, typer.Argument(help="Recordings (WAV, FLAC, OGG, ...) or directories; - "
                                                           "reads one recording from standard input.")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Speech-recognition bundle (default: the "
                                                                       "digit-string model shipped with edge-s2s).")
                      ] = None,
    beam: Annotated[int, typer.Option(help="Beam size (1 = greedy).")] = 1,
    length_penalty: Annotated[float, typer.Option(help="Beam score = log p / length**penalty.")] = 1.0,
    max_length: Annotated[int | None, typer.Option(help="Most characters of each recording, or each piece of a long "
                                                        "one (default: from its length and the fastest speech "
                                                        "the model was trained on).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per file, with per-character times.")]
    = False,
    attention: Annotated[Path | None, typer.Option("--attention", help="Draw the log-mel spectrogram with each "
                                                    "character's attention under it, as PNG: OUT.png for one "
                                                    "recording, OUT-<stem>.png for each of several, or "
                                                    "DIR/<stem>.attention.png for a directory.")] = None,
    batch_size: Annotated[int, typer.Option(help="Recordings transcribed together.")] = 8,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 1 when a transcript stopped at its step "
                                                          "limit before the model ended it.")] = False,
) -> int:
    """Transcribe recordings (files or directories) with the default digit-string model or --bundle."""
    from ..runtime.tasks.transcriber import Transcriber

    if not audio:
        raise InputError("no recordings given: pass audio files or directories, e.g. edge-s2s transcribe call.wav")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    search = search_from_options(beam, 1, length_penalty, False, 1.0, 0, 1.0, None)
    paths = expand_audio_paths(audio)
    piped = stdin_bytes(paths, "recording")
    pictures = attention_targets(attention, paths) if attention is not None else None
    model = Transcriber.load(bundle, provider=provider, threads=threads)
    many = len(paths) > 1
    failed = cut = 0
    show_bar = many and not no_progress and sys.stderr.isatty()
    bar = typer.progressbar(length=len(paths), label="transcribing", file=sys.stderr) if show_bar else None

    def show(start: int, results) -> None:
        nonlocal failed, cut
        for k, r in enumerate(results):
            p = paths[start + k]
            if pictures is not None and r.ok:
                from ..runtime.pictures.speech_attention import save_transcript_attention

                save_transcript_attention(pictures[start + k], model, piped if p == STDIN else os.fspath(p), r)
            if not r.ok:
                failed += 1
                typer.echo(f"error: {r.error}", err=True)
            else:
                if r.note:
                    typer.echo(f"note: {p}: {r.note}", err=True)
                if r.warning:
                    cut += 1
                    typer.echo(f"warning: {p}: {r.warning}", err=True)
            if json_out:
                typer.echo(json.dumps(transcript_json(p, r), ensure_ascii=False))
            elif r.ok:
                typer.echo(f"{p}\t{r.text}" if many else r.text)
        if bar is not None:
            bar.update(len(results))

    t0 = time.perf_counter()
    if bar is not None:
        bar.__enter__()
    try:
        model.transcribe([piped if p == STDIN else os.fspath(p) for p in paths], search=search, max_length=max_length,
                         batch_size=batch_size, errors="keep", on_batch=show)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if many:  # throughput: reading, features, encoder and search, start to end
        seconds = time.perf_counter() - t0
        summary = {"recordings": len(paths), "failed": failed, "seconds": round(seconds, 3),
                   "recordings_per_s": round(len(paths) / max(seconds, 1e-9), 2)}
        if json_out:  # on stderr: stdout keeps one object per recording
            typer.echo(json.dumps({"summary": summary}), err=True)
        elif show_bar:  # beside the progress bar, for a person; scripts get --json
            typer.echo(f"transcribed {len(paths) - failed} of {len(paths)} recordings in {seconds:.2f} s "
                       f"({summary['recordings_per_s']} recordings/s)", err=True)
    if failed:
        if len(paths) > 1:  # one input: its own error line says it all
            typer.echo(f"error: {failed} of {len(paths)} recordings could not be transcribed (see above)", err=True)
        return 1
    if strict and cut:
        typer.echo(f"error: {cut} of {len(paths)} transcripts stopped at their step limit (--strict): pass a larger "
                   "--max-length", err=True)
        return 1
    return 0
