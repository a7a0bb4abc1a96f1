"""`edge-s2s info` and `edge-s2s verify`: look at a bundle, re-check it on this device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..runtime.manifest import Manifest
from .common import ProviderOpt

BundleArg = Annotated[Path, typer.Argument(help="Bundle directory written by `edge-s2s export`.")]


def _shape(shape: list) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def info(
    bundle: BundleArg,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole manifest as JSON.")] = False,
) -> None:
    """Show a bundle: task, files, vocabulary, graph inputs/outputs, state schema, metrics."""
    m = Manifest.load(bundle)
    if json_out:
        typer.echo(m.to_json())
        return
    echo = typer.echo
    echo(f"bundle      {bundle}")
    echo(f"format      {m.format} v{m.format_version}   created by {m.created_by or '?'}")
    echo(f"task        {m.task}   max output length {m.max_length}   attention {'yes' if m.attention else 'no'}")
    echo(f"model       " + ", ".join(f"{k}={v}" for k, v in m.model.items()))
    echo(f"vocabulary  {m.tokens.size} tokens ({m.tokens.file})   pad={m.tokens.pad_id} unk={m.tokens.unk_id} "
         f"bos={m.tokens.bos_id} eos={m.tokens.eos_id}")
    echo(f"input       " + ", ".join(f"{k}={v}" for k, v in m.preprocessing.items()))
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
        echo("metrics")
        for k, v in m.metrics.items():
            echo(f"  {k:<20}{json.dumps(v) if isinstance(v, (dict, list)) else v}")


def verify(
    bundle: BundleArg,
    provider: ProviderOpt = "cpu",
) -> None:
    """Re-run the bundle's golden cases on this device: tokens identical, log-probs close."""
    from ..runtime.verify import verify_bundle

    cases = verify_bundle(bundle, provider=provider)
    failed = 0
    for i, c in enumerate(cases, 1):
        status = "PASS" if c.passed else "FAIL"
        failed += not c.passed
        typer.echo(f"{status}  case {i}: {c.description}")
    typer.echo(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)
