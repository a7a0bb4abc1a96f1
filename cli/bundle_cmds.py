"""`edge-s2s info` and `edge-s2s verify`: look at a bundle, re-check it on this device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import ProviderOpt

BundleArg = Annotated[Path, typer.Argument(help="Bundle directory written by `edge-s2s export`.")]


def _shape(shape: list) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def info(
    bundle: BundleArg,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
) -> None:
    """Show a bundle: task, files, vocabulary, graph inputs/outputs, state schema, metrics.

    The bundle is checked first (manifest fields, files inside the bundle, checksums, vocabulary):
    a damaged one is one error line naming the problem, and exit code 1."""
    from ..runtime.bundle import Bundle
    from ..runtime.tasks.loading import bundle_task

    if bundle_task(bundle) == "answer":
        from .answer_cmd import memory_info

        return memory_info(bundle, json_out)
    m, _ = Bundle.check(bundle)
    if json_out:
        typer.echo(m.to_json())
        return
    echo = typer.echo
    echo(f"bundle      {bundle}")
    echo(f"format      {m.format} v{m.format_version}   created by {m.created_by or '?'}")
    echo(f"task        {m.task}   max output length {m.max_length}   attention {'yes' if m.attention else 'no'}")
    echo("model       " + ", ".join(f"{k}={v}" for k, v in m.model.items()))
    echo(f"vocabulary  {m.tokens.size} tokens ({m.tokens.file})   pad={m.tokens.pad_id} unk={m.tokens.unk_id} "
         f"bos={m.tokens.bos_id} eos={m.tokens.eos_id}")
    echo("input       " + ", ".join(f"{k}={v}" for k, v in m.preprocessing.items()))
    echo("files")
    for name, sha in m.files.items():
        p = Path(bundle, name)
        size = f"{p.stat().st_size / 1e6:8.2f} MB" if p.exists() else "  MISSING"
        echo(f"  {name:<20}{size}  sha256 {sha[:12]}")
    for title, g in (("encoder", m.encoder), ("decoder step", m.decoder_step)):
        echo(f"{title} ({g.file})")
        for t in g.inputs:
            echo(f"  in   {t.name:<22}{t.dtype:<9}{_shape(t.shape)}")
        for t in g.outputs:
            echo(f"  out  {t.name:<22}{t.dtype:<9}{_shape(t.shape)}")
    echo("state (carried step to step; row axis N first)")
    for s in m.state:
        init = "from encoder" if s.init == "encoder" else f"constant {s.init}"
        echo(f"  state.{s.name:<16}{s.dtype:<9}{_shape(s.shape):<16}{init}")
    echo("memory      " + ", ".join(m.memory))
    if m.metrics:
        echo("metrics (edge-s2s info --json for all of it)")
        for k, v in m.metrics.items():
            for line in _metric_lines(k, v):
                echo("  " + line)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _metric_lines(key: str, value) -> list[str]:
    """A few readable lines per metrics entry (training history summarised, scores rounded)."""
    if key == "training" and isinstance(value, dict):
        hist = value.get("history") or []
        line = f"{'training':<20}checkpoint {value.get('checkpoint', '?')}, {len(hist)} epochs"
        if hist:
            last = {k: v for k, v in hist[-1].items() if k not in ("epoch", "seconds")}
            line += "; last epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in last.items())
        return [line]
    if key == "parity" and isinstance(value, dict):
        step = value.get("step", {})
        out = [f"{'parity':<20}{'enforced' if value.get('enforced') else 'reported'}: step max |onnx - torch| "
               f"{_fmt(step.get('max_abs_diff', float('nan')))}"]
        for name, r in value.get("search", {}).get("searches", {}).items():
            out.append(f"{'':<20}{name}: {r['identical']}/{r['of']} decodes identical, log-prob diff "
                       f"{_fmt(r['max_log_prob_diff'])}")
        return out
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [f"{key if i == 0 else '':<20}{name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in d.items())
                for i, (name, d) in enumerate(value.items())]
    return [f"{key:<20}{json.dumps(value) if isinstance(value, (dict, list)) else value}"]


def verify(
    bundle: BundleArg,
    provider: ProviderOpt = "cpu",
) -> None:
    """Re-run the bundle's golden cases on this device: tokens identical, log-probs close."""
    from ..runtime.tools.verify import verify_bundle

    cases = verify_bundle(bundle, provider=provider)
    failed = 0
    for i, c in enumerate(cases, 1):
        status = "PASS" if c.passed else "FAIL"
        failed += not c.passed
        typer.echo(f"{status}  case {i}: {c.description}")
    typer.echo(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
