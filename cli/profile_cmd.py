"""`edge-s2s profile`: per-stage latency percentiles of a bundle on this device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError
from ..runtime.manifest import GOLDEN_FILE
from .common import ProviderOpt, ThreadsOpt


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--{what} takes comma-separated integers like 1,16, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"--{what} needs integers >= 1, got {text!r}")
    return values


def _sources(bundle: Path, input_file: Path | None) -> list[str]:
    if input_file is not None:
        if not input_file.is_file():
            raise InputError(f"{input_file} does not exist: give a text file with one input per line")
        lines = [ln for ln in input_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise InputError(f"{input_file} has no non-empty line")
        return lines
    golden = bundle / GOLDEN_FILE
    if golden.is_file():
        cases = json.loads(golden.read_text(encoding="utf-8")).get("cases", [])
        # captioners' golden inputs are image files inside the bundle; generators' are conditions
        # (a text generator is profiled generating from nothing; --input gives it prompts)
        lines = list(dict.fromkeys(str(bundle / c["image"]) if "image" in c else str(bundle / c["audio"])
                                   if "audio" in c else c["source"] if "source" in c
                                   else _condition_source(bundle, c) for c in cases))
        if lines:
            return lines
    raise InputError("the bundle has no golden.json inputs to profile with: pass --input FILE (one input per line)")


def _condition_source(bundle: Path, case: dict) -> str:
    from ..runtime.manifest import Manifest

    conditions = Manifest.load(bundle).preprocessing.get("conditions")
    return str(case["condition"]) if conditions else ""


def profile(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory written by `edge-s2s export`.")],
    batch: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1,16",
    beam: Annotated[str, typer.Option(help="Beam sizes, comma-separated (1 = greedy).")] = "1,5",
    runs: Annotated[int, typer.Option(help="Timed runs per setting (after 2 warm-up runs).")] = 20,
    input_file: Annotated[Path | None, typer.Option("--input", help="Inputs, one per line (captioners: image paths; transcribers: audio files; generators: prompts, or conditions for image models; default: golden.json's).")] = None,
    provider: ProviderOpt = "cpu",
    threads: ThreadsOpt = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the percentiles as JSON.")] = False,
) -> None:
    """Per-stage latency percentiles (p50/p90/p99, ms) for each batch size and beam."""
    from ..runtime.tools.profiling import STAGES, profile_generate, search_for

    batches, beams = _int_list(batch, "batch"), _int_list(beam, "beam")
    if runs < 1:
        raise InputError(f"--runs must be >= 1, got {runs}")
    from ..runtime.tasks.loading import load_any

    model = load_any(bundle, provider=provider, threads=threads)
    sources = _sources(bundle, input_file)
    policy = _policy(threads)
    bundle_of = getattr(model, "bundle", None)
    step_threads = bundle_of.step.get_session_options().intra_op_num_threads if bundle_of is not None else None
    if step_threads is not None and step_threads != policy["intra_op_threads"]:
        policy["step_intra_op_threads"] = step_threads  # a task's measured exception (Transcriber.load)
    rows = []
    if not json_out:
        step_note = (f" (decoder step: {policy['step_intra_op_threads']}, and one input at a time is encoded on "
                     "1)") if "step_intra_op_threads" in policy else ""
        typer.echo(f"bundle {bundle}   providers {','.join(model.providers)}   {runs} runs per setting   times in ms")
        typer.echo(f"threads: {policy['intra_op_threads']} intra-op{step_note}, {policy['inter_op_threads']} inter-op "
                   f"per session, spinning {'on' if policy['spinning'] else 'off'} ({policy['why']}); "
                   f"graph cache: {policy['cache'] or 'off'}")
    for b in batches:
        batch_sources = [sources[i % len(sources)] for i in range(b)]
        for k in beams:
            stats = profile_generate(model, batch_sources, search_for(k), runs)
            pct = stats.percentiles()
            tok_s = stats.tokens / (sum(stats.samples["total"]) / 1e9)
            rows.append({"batch": b, "beam": k, "stages": pct, "tokens_per_s": tok_s})
            if json_out:
                continue
            typer.echo(f"\nbatch {b}, {'greedy' if k == 1 else f'beam {k}'}   ({tok_s:,.0f} output tokens/s)")
            typer.echo(f"  {'stage':<26}{'p50':>10}{'p90':>10}{'p99':>10}")
            for s in STAGES:
                p50, p90, p99 = pct[s]
                unit = " (per step)" if s == "decoder step" else ""
                typer.echo(f"  {s + unit:<26}{p50:>10.3f}{p90:>10.3f}{p99:>10.3f}")
    if json_out:
        typer.echo(json.dumps({"bundle": str(bundle), "providers": model.providers, "threads": policy,
                               "results": rows}))


def _policy(threads: int) -> dict[str, object]:
    """The session settings in force (runtime/session.py's policy) and where they came from."""
    from ..runtime.cache import cache_dir
    from ..runtime.session import spinning_allowed, thread_policy

    policy = thread_policy(threads)
    source = f"--threads {threads}" if threads else "default: min(cores, 4)"
    policy["why"] = source + (", EDGE_S2S_SPIN=1" if spinning_allowed() else ", EDGE_S2S_SPIN=1 turns it on")
    cache = cache_dir()
    policy["cache"] = str(cache) if cache is not None else None
    return policy
