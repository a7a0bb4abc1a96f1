"""`edge-s2s export`: run directory -> checked bundle (needs the [train] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export(
    run: Annotated[Path, typer.Argument(help="Run directory written by `edge-s2s train`.")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")] = Path("bundles/model"),
    checkpoint: Annotated[str, typer.Option(help="Which checkpoint: best (lowest validation loss) or last.")] = "best",
    int8: Annotated[bool, typer.Option("--int8", help="Also quantise weights to int8 (dynamic quantisation).")] = False,
    parity: Annotated[bool, typer.Option("--parity/--no-parity", help="Prove ONNX == PyTorch before writing.")] = True,
) -> None:
    """Export a trained model as a bundle: ONNX graphs, tokens, manifest; checked and parity-proven."""
    from ..export.bundle_writer import export_bundle

    report = export_bundle(run, out, checkpoint=checkpoint, int8=int8, parity=parity)
    typer.echo(str(report))
    typer.echo(f"bundle written: {out}   try: edge-s2s info {out}")
