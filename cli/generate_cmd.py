"""`edge-s2s generate`: sample text (streamed to the terminal) or images (a PNG grid).

Text bundles: `--prompt` is forced, then tokens are printed as the loop produces them.
Image bundles: `--n` images (of class `--condition` for a conditional model) go to
`--out grid.png`, or are drawn in the terminal without --out; `--complete img.png --rows R`
keeps an image's top R rows and generates the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from .common import (
    BundleOpt,
    NoRepeatNgramOpt,
    ProviderOpt,
    RepetitionPenaltyOpt,
    ThreadsOpt,
    hypothesis_json,
    search_from_options,
)


def _search(greedy: bool, beam: int, temperature: float, top_k: int, top_p: float, seed: int | None,
            repetition_penalty: float, no_repeat_ngram: int):
    """Sampling unless --greedy or --beam (generation's default differs from translate's)."""
    if greedy and beam > 1:
        raise InputError("--greedy and --beam exclude each other: choose one search")
    return search_from_options(beam, 1, 1.0, not greedy and beam <= 1, temperature, top_k, top_p, seed,
                               repetition_penalty, no_repeat_ngram)


def generate(
    bundle: BundleOpt,
    prompt: Annotated[str, typer.Option(help="Text the model continues (text bundles); forced as given.")] = "",
    n: Annotated[int, typer.Option("--n", help="How many sequences or images to generate.")] = 1,
    condition: Annotated[str | None, typer.Option(help="Class id or name for a conditional model "
                                                       "(e.g. 7 or Sneaker).")] = None,
    out: Annotated[Path | None, typer.Option(help="Image bundles: write the samples as a PNG grid here.")] = None,
    complete: Annotated[Path | None, typer.Option(help="Image bundles: an image whose top --rows rows are kept "
                                                       "and the rest generated.")] = None,
    rows: Annotated[int, typer.Option(help="Rows of --complete kept (default: half the image).")] = -1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (<1 safer, >1 wilder).")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely tokens (0 = all).")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass (1.0 = off).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed: the same seed gives the same output.")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Most likely token at every step instead of sampling.")] = False,
    beam: Annotated[int, typer.Option(help="Beam search with this many hypotheses (text; 1 = off).")] = 1,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    no_repeat_ngram: NoRepeatNgramOpt = 0,
    max_length: Annotated[int | None, typer.Option(help="Most tokens, prompt included (default: the bundle's).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Text: one JSON object per sequence.")] = False,
    columns: Annotated[int | None, typer.Option(help="Images per row in the grid (default: square).")] = None,
    trace: Annotated[Path | None, typer.Option(
        help="Text bundles: save the per-step weightings (NTM read/write weightings, attention) of the FIRST "
             "output (with --n > 1 the first sequence, with --beam the best one) to this .npz; draw it with "
             "`edge-s2s plot-trace`.")] = None,
    trace_memory: Annotated[bool, typer.Option(
        "--trace-memory", help="With --trace: also save every state per step (the NTM memory matrix "
                               "included).")] = False,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
) -> int:
    """Generate text or images with a generator bundle (sampling by default)."""
    from ..runtime.tasks.generator import Generator

    if n < 1:
        raise InputError(f"--n must be >= 1 (how many to generate), got {n}")
    if out is not None:
        from ..runtime.output_files import check_writable

        check_writable(out)
    if trace is not None:
        from ..runtime.output_files import check_writable

        check_writable(trace)
    elif trace_memory:
        raise InputError("--trace-memory goes with --trace out.npz: name the file the trace is written to")
    search = _search(greedy, beam, temperature, top_k, top_p, seed, repetition_penalty, no_repeat_ngram)
    model = Generator.load(bundle, provider=provider, threads=threads)
    if model.is_image:
        if prompt:
            raise InputError("this is an image model: it takes no --prompt (use --complete image.png to start "
                             "from the top rows of an image)")
        if trace is not None:
            raise InputError("--trace records a text output's weightings; this bundle generates images: drop --trace")
        return _images(model, n, condition, out, complete, rows, search, columns)
    if out is not None or complete is not None:
        raise InputError("--out and --complete are for image bundles; this bundle generates text")
    if trace is not None:
        from ..runtime.tools.trace import check_traceable

        check_traceable(model.bundle, trace_memory)
    if json_out or n > 1 or beam > 1:
        results = model.generate([prompt], n=n, condition=condition, search=search, max_length=max_length)
        for r in results:
            h = r.hypotheses[0]
            typer.echo(json.dumps(hypothesis_json(h), ensure_ascii=False) if json_out else h.text)
        if trace is not None:
            from ..runtime.tools.trace import hypothesis_finished

            h = results[0].hypotheses[0]
            _write_trace(model, h.ids, hypothesis_finished(h), prompt, condition, trace, trace_memory)
        return 0
    from ..runtime.text import join_units, split_units

    units = split_units(prompt, model.unit)
    shown = join_units(units, model.unit)
    events = model.stream(prompt, search=search, max_length=max_length, condition=condition)  # checks the prompt
    typer.echo(prompt, nl=False)
    produced: list[int] = []  # what --trace replays
    finished = False
    for ev in events:
        produced.append(ev.id)
        finished = ev.finished
        units.append(ev.token)
        text = join_units(units, model.unit)
        sys.stdout.write(text[len(shown):])  # detokenizing is append-only, so only the new part prints
        sys.stdout.flush()
        shown = text
    typer.echo("")
    if trace is not None:
        _write_trace(model, model.prompt_ids(prompt) + produced, finished, prompt, condition, trace, trace_memory)
    return 0


def _write_trace(model, ids: list[int], finished: bool, prompt: str, condition, path: Path, memory: bool) -> None:
    """Replay one output through the step graph and save its weightings (runtime/tools/trace.py)."""
    from ..runtime.tools.trace import save_trace, trace_generated

    tr = trace_generated(model, ids, finished, len(model.prompt_ids(prompt)), condition, memory,
                         info={"prompt": prompt})
    save_trace(path, tr)
    typer.echo(f"traced {tr.steps} steps of the first output ({', '.join(tr.tensors)}) to {path}; draw it with "
               f"`edge-s2s plot-trace {path} --out memory.png`", err=True)


def _images(model, n: int, condition, out: Path | None, complete: Path | None, rows: int, search, columns) -> int:
    from ..runtime.pictures.sample_grid import ascii_preview, save_grid

    cond_name = None
    if complete is not None:
        rows = model.height // 2 if rows < 0 else rows
        start = model.quantise(_read_gray(complete, model.height, model.width))
        images = model.complete(start[None].repeat(n, axis=0), rows, condition, search)
    else:
        images = model.sample_images(n, condition, search)
    if model.conditions and condition is not None:
        cond_name = model.conditions[model.condition_id(condition)]
    if out is not None:
        path = save_grid(out, images, model.levels, columns=columns)
        what = f" of {cond_name}" if cond_name else ""
        typer.echo(f"wrote {len(images)} images{what} to {path}")
    else:
        for img in images:
            typer.echo(ascii_preview(img, model.levels))
            typer.echo("")
    return 0


def _read_gray(path: Path, height: int, width: int):
    """An image file as gray uint8 [height, width] (resized), one clear line when unreadable."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"--complete {path}: no such file")
    try:
        with Image.open(path) as im:
            g = im.convert("L").resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(g, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"--complete {path}: not a readable image ({e})") from None
