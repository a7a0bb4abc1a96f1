"""`edge-s2s translate` and `edge-s2s evaluate`: text in, text (or JSON, or BLEU) out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from ..runtime.results import Result
from .common import (
    BundleOpt,
    NoRepeatNgramOpt,
    ProviderOpt,
    RepetitionPenaltyOpt,
    ThreadsOpt,
    hypothesis_json,
    read_lines,
    search_from_options,
)


def _load(bundle: Path | None, provider: str, threads: int):
    from ..runtime.tasks.seq2seq import Seq2Seq

    return Seq2Seq.load(bundle, provider=provider, threads=threads)


def _generate_with_progress(model, sources: list[str], search, batch_size: int, **kw) -> list[Result]:
    """Decode in chunks so a long input shows a progress bar on stderr."""
    if len(sources) <= batch_size:
        return model.generate(sources, search=search, batch_size=batch_size, **kw)
    out: list[Result] = []
    with typer.progressbar(length=len(sources), label="translating", file=sys.stderr) as bar:
        for i in range(0, len(sources), batch_size):
            chunk = sources[i : i + batch_size]
            out.extend(model.generate(chunk, search=search, batch_size=batch_size, **kw))
            bar.update(len(chunk))
    return out


def _warn_cut(results: list[Result], limit: int) -> None:
    """One stderr line per translation that stopped at the output limit before the model ended it
    (never a silently cut answer; stdout keeps one line per input)."""
    from ..runtime.tools.trace import hypothesis_finished

    for i, r in enumerate(results, 1):
        if r.hypotheses and not hypothesis_finished(r.hypotheses[0]):
            typer.echo(f"warning: input {i}: the translation stopped at the limit of {limit} tokens before the model "
                       "ended it: raise --max-length, or split the input into shorter sentences", err=True)


def _result_json(source: str, r: Result, with_attention: bool) -> dict:
    return {"source": source, "hypotheses": [hypothesis_json(h, with_attention) for h in r.hypotheses]}


def translate(
    bundle: Annotated[Path | None, typer.Option("--bundle", "-b", help="Translation bundle (default: the German->"
                                                "English model shipped with edge-s2s).")] = None,
    texts: Annotated[list[str] | None, typer.Argument(help="Sentences to translate; none = one per line on stdin.")] = None,
    beam: Annotated[int, typer.Option(help="Beam size (1 = greedy).")] = 1,
    n_best: Annotated[int, typer.Option("--n-best", help="Hypotheses to print per input (beam search).")] = 1,
    length_penalty: Annotated[float, typer.Option(help="Beam score = log p / length**penalty.")] = 1.0,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of searching.")] = False,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample from the k most likely tokens (0 = all).")] = 0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass (1.0 = off).")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed for reproducible sampling.")] = None,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    no_repeat_ngram: NoRepeatNgramOpt = 0,
    max_length: Annotated[int | None, typer.Option(help="Most output tokens (default: the bundle's limit).")] = None,
    min_length: Annotated[int, typer.Option(help="Fewest output tokens, end token included.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per input line.")] = False,
    attention: Annotated[bool, typer.Option("--attention", help="With --json: include the attention matrix.")] = False,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they are produced (greedy/sampling).")] = False,
    batch_size: Annotated[int, typer.Option(help="Inputs decoded together.")] = 32,
    trace: Annotated[Path | None, typer.Option(help="Save the per-step attention (and weighting states) of the "
                                                    "first input's best translation to this .npz; draw it with "
                                                    "`edge-s2s plot-trace`.")] = None,
    trace_memory: Annotated[bool, typer.Option("--trace-memory", help="With --trace: also save every state "
                                                                      "per step.")] = False,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
) -> None:
    """Translate sentences (arguments, or one per line on stdin) with the default German->English model or
    --bundle."""
    search = search_from_options(beam, n_best, length_penalty, sample, temperature, top_k, top_p, seed,
                                 repetition_penalty, no_repeat_ngram)
    sources = read_lines(texts)
    for i, s in enumerate(sources):
        if not s.strip():
            raise InputError(f"input {i + 1} is empty: give one non-empty sentence per line")
    if trace is not None:
        from ..runtime.output_files import check_writable

        if stream:
            raise InputError("--trace replays a finished translation: drop --stream")
        check_writable(trace)
    elif trace_memory:
        raise InputError("--trace-memory goes with --trace out.npz: name the file the trace is written to")
    model = _load(bundle, provider, threads)
    if trace is not None:
        from ..runtime.tools.trace import check_traceable

        check_traceable(model.bundle, trace_memory)
    if stream:
        if json_out or beam > 1:
            raise InputError("--stream prints plain tokens for greedy or sampling: drop --json/--beam")
        for src in sources:
            ids: list[int] = []
            shown = ""
            for ev in model.stream(src, search=search, max_length=max_length, min_length=min_length):
                ids.append(ev.id)
                text = model.text.decode(ids)  # the same spacing rules as the final text
                sys.stdout.write(text[len(shown):])
                sys.stdout.flush()
                shown = text
            sys.stdout.write("\n")
        return
    results = _generate_with_progress(model, sources, search, batch_size, max_length=max_length, min_length=min_length)
    for src, r in zip(sources, results):
        if json_out:
            typer.echo(json.dumps(_result_json(src, r, attention), ensure_ascii=False))
        elif n_best > 1:
            for h in r.hypotheses:
                typer.echo(f"{h.score:.4f}\t{h.text}")
        else:
            typer.echo(r.text)
    _warn_cut(results, max_length or model.manifest.max_length)
    if trace is not None:
        from ..runtime.tools.trace import hypothesis_finished, save_trace, trace_translation

        h = results[0].hypotheses[0]
        tr = trace_translation(model, sources[0], h.ids, hypothesis_finished(h), trace_memory)
        save_trace(trace, tr)
        typer.echo(f"traced {tr.steps} steps of the first translation ({', '.join(tr.tensors)}) to {trace}; draw it "
                   f"with `edge-s2s plot-trace {trace} --out attention.png`", err=True)


def evaluate(
    data: Annotated[Path, typer.Argument(help="Tab-separated file: source<TAB>reference per line.")],
    bundle: BundleOpt,
    beam: Annotated[int, typer.Option(help="Beam size (1 = greedy).")] = 1,
    length_penalty: Annotated[float, typer.Option(help="Beam length penalty.")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Inputs decoded together.")] = 32,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    images: Annotated[Path | None, typer.Option(help="Captioners: the image folder of the caption JSON.")] = None,
    split: Annotated[str, typer.Option(help="Captioners: which split of a Karpathy file to score.")] = "test",
) -> None:
    """Score a bundle: BLEU on a parallel TSV (translators), or BLEU-1..4/METEOR/CIDEr-D on a
    caption JSON + --images (captioners)."""
    from ..runtime.manifest import Manifest

    if Manifest.load(bundle).task == "caption":
        _evaluate_captions(data, bundle, images, split, beam, length_penalty, batch_size, provider, threads, json_out)
        return
    try:
        import sacrebleu
    except ImportError:
        raise InputError("evaluate needs sacrebleu: pip install sacrebleu (or 'edge-s2s[train]')") from None

    if not data.is_file():
        raise InputError(f"{data} does not exist: give a tab-separated source<TAB>reference file")
    sources, refs = [], []
    for n, line in enumerate(data.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise InputError(f"{data}:{n}: expected source<TAB>reference, found {len(parts)} fields")
        sources.append(parts[0])
        refs.append(parts[1])
    if not sources:
        raise InputError(f"{data} is empty: give at least one source<TAB>reference line")
    model = _load(bundle, provider, threads)
    search = search_from_options(beam, 1, length_penalty, False, 1.0, 0, 1.0, None)
    results = _generate_with_progress(model, sources, search, batch_size)
    # Compare in the model's own tokenisation so casing/tokenising never decides the score.
    hyps = [r.text for r in results]
    norm_refs = [model.text.reference(r) for r in refs]
    bleu = sacrebleu.corpus_bleu(hyps, [norm_refs])
    scores = {"bleu": round(bleu.score, 2), "sentences": len(sources), "search": type(search).__name__.lower(), "beam": beam}
    typer.echo(json.dumps(scores) if json_out else f"BLEU {bleu.score:.2f} on {len(sources)} sentences ({scores['search']}, beam {beam})")


def _evaluate_captions(data: Path, bundle: Path, images: Path | None, split: str, beam: int, length_penalty: float,
                       batch_size: int, provider: str, threads: int, json_out: bool) -> None:
    from ..runtime.tasks.captioner import Captioner
    from ..train.caption.evaluate import evaluate_captioner, items_of_split

    if images is None:
        raise InputError("captioners are scored on a caption JSON and its images: add --images FOLDER")
    if not data.is_file():
        raise InputError(f"{data} does not exist: give a COCO-style or Karpathy caption JSON")
    items = items_of_split(data, images, split)
    if not items:
        raise InputError(f"{data} has no images in split {split!r}: choose --split train, val or test")
    model = Captioner.load(bundle, provider=provider, threads=threads)
    search = search_from_options(beam, 1, length_penalty, False, 1.0, 0, 1.0, None)
    scores, _ = evaluate_captioner(model, items, search, batch_size)
    scores.update(search=type(search).__name__.lower(), beam=beam, split=split)
    if json_out:
        typer.echo(json.dumps(scores))
    else:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float) and k != "seconds")
        typer.echo(f"{shown} on {len(items)} {split} images ({scores['search']}, beam {beam})")
