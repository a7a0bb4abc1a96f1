"""`edge-s2s caption`: images in, captions out (default model shipped in the package).

Every image is read on its own: an unreadable one gets an `error:` line on stderr naming
it, the others are still captioned, and the exit code is 1 if any failed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from .common import (
    STDIN,
    NoRepeatNgramOpt,
    ProviderOpt,
    RepetitionPenaltyOpt,
    ThreadsOpt,
    attention_targets,
    hypothesis_json,
    search_from_options,
    stdin_bytes,
)


def caption(
    images: Annotated[list[Path] | None, typer.Argument(help="Image files or directories of images; - reads one "
                                                            "image from standard input.")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Captioning bundle (default: the model "
                                                 "shipped with edge-s2s).")] = None,
    beam: Annotated[int, typer.Option(help="Beam size (1 = greedy).")] = 1,
    n_best: Annotated[int, typer.Option("--n-best", help="Captions to print per image (beam search).")] = 1,
    length_penalty: Annotated[float, typer.Option(help="Beam score = log p / length**penalty.")] = 1.0,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of searching.")] = False,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely words (0 = all).")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass (1.0 = off).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed for reproducible sampling.")] = None,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    no_repeat_ngram: NoRepeatNgramOpt = 0,
    max_length: Annotated[int | None, typer.Option(help="Most words (default: the bundle's limit).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per image.")] = False,
    attention: Annotated[Path | None, typer.Option("--attention", help="Write the attention picture as PNG: OUT.png "
                                                    "for one image, OUT-<stem>.png for each of several, or "
                                                    "DIR/<stem>.attention.png for a directory.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images through the CNN together (0 = 16, fewer on a small-memory "
                                                 "machine).")] = 0,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> int:
    """Caption images (files or directories) with the default model or --bundle."""
    from ..runtime.media.image import expand_image_paths, load_image
    from ..runtime.tasks.captioner import Captioner

    if not images:
        raise InputError("no images given: pass image files or directories, e.g. edge-s2s caption photo.jpg")
    if batch_size < 0:
        raise InputError(f"--batch-size must be >= 0 (0 = chosen by memory), got {batch_size}")
    search = search_from_options(beam, n_best, length_penalty, sample, temperature, top_k, top_p, seed,
                                 repetition_penalty, no_repeat_ngram)
    paths = expand_image_paths(images)
    piped = stdin_bytes(paths, "image")
    many = len(paths) > 1
    pictures = attention_targets(attention, paths) if attention is not None else None
    model = Captioner.load(bundle, provider=provider, threads=threads)
    show_bar = many and not no_progress and sys.stderr.isatty()
    bar = typer.progressbar(length=len(paths), label="captioning", file=sys.stderr) if show_bar else None
    failed = 0

    def show(start: int, results) -> None:
        nonlocal failed
        for i, r in enumerate(results):
            p = paths[start + i]
            if not r.ok:
                failed += 1
                typer.echo(f"error: {r.error}", err=True)
                if json_out:
                    typer.echo(json.dumps({"image": str(p), "error": r.error}, ensure_ascii=False))
                continue
            if pictures is not None:  # read once more for the picture: only when asked for
                _write_attention(model, pictures[start + i], load_image(piped if p == STDIN else p, model.spec), r)
            if json_out:
                obj = {"image": str(p), "hypotheses": [hypothesis_json(h) for h in r.hypotheses]}
                if r.labels is not None:
                    obj["labels"] = r.labels
                typer.echo(json.dumps(obj, ensure_ascii=False))
            elif n_best > 1:
                for h in r.hypotheses:
                    typer.echo(f"{p}\t{h.score:.4f}\t{h.text}" if many else f"{h.score:.4f}\t{h.text}")
            else:
                typer.echo(f"{p}\t{r.text}" if many else r.text)
        if bar is not None:
            bar.update(len(results))

    t0 = time.perf_counter()
    if bar is not None:
        bar.__enter__()
    try:
        model.caption([piped if p == STDIN else p for p in paths], search=search, max_length=max_length,
                      batch_size=batch_size, errors="keep", on_batch=show)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if many:  # throughput: reading, the CNN and the search, start to end
        seconds = time.perf_counter() - t0
        summary = {"images": len(paths), "failed": failed, "seconds": round(seconds, 3),
                   "images_per_s": round(len(paths) / max(seconds, 1e-9), 2)}
        if json_out:  # on stderr: stdout keeps one object per image
            typer.echo(json.dumps({"summary": summary}), err=True)
        elif show_bar:  # beside the progress bar, for a person; scripts get --json
            typer.echo(f"captioned {len(paths) - failed} of {len(paths)} images in {seconds:.2f} s "
                       f"({summary['images_per_s']} images/s)", err=True)
    if failed:
        if many:  # one input: its own error line says it all
            typer.echo(f"error: {failed} of {len(paths)} images could not be captioned (see above)", err=True)
        return 1
    return 0


def _write_attention(model, target: Path, image, result) -> None:
    from ..runtime.pictures.attention_map import save_attention_figure

    h = result.hypotheses[0]
    if h.attention is None:
        raise InputError("this bundle has no attention (a no-attention baseline): drop --attention")
    save_attention_figure(target, image, h.tokens, h.attention[: len(h.tokens)], grid=model.grid, spec=model.spec,
                          labels=result.labels)
