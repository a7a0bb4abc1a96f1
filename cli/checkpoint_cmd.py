"""`edge-s2s convert-checkpoint`: rewrite a checkpoint of an older edge-s2s in today's safe format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def convert_checkpoint(
    checkpoint: Annotated[Path, typer.Argument(help="The last.pt or best.pt an older edge-s2s wrote.")],
    out: Annotated[Path | None, typer.Option(help="Where to write the converted checkpoint (default: in place).")] = None,
) -> None:
    """Convert a checkpoint written before edge-s2s 0.2 (numpy objects pickled inside) ONCE, so that it loads
    without unpickling. Converting unpickles the file, which can run code hidden in it: convert only
    checkpoints you trust (your own runs)."""
    from ..train.core.checkpoint import convert_legacy_checkpoint

    written = convert_legacy_checkpoint(checkpoint, out)
    typer.echo(f"converted {checkpoint} -> {written}: it now loads without running code")
