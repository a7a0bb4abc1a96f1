"""`edge-s2s plot-trace`: a trace file (`generate --trace`, `translate --trace`) drawn as heat maps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def plot_trace(
    trace: Annotated[Path, typer.Argument(help="Trace file (.npz) written by `edge-s2s generate --trace`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write (PNG).")],
    tensor: Annotated[list[str] | None, typer.Option(
        "--tensor", help="Draw this traced tensor (repeat for several; default: the weightings and attention). "
                         "A [T, A, B] state such as ntm_memory is drawn as it is after the last step.")] = None,
) -> int:
    """Draw a trace as heat maps over time: one panel per weighting and head, tokens along the time axis."""
    from ..runtime.image_grid import check_writable
    from ..runtime.trace import load_trace
    from ..runtime.trace_image import save_trace_figure

    check_writable(out)
    tr = load_trace(trace)
    fig = save_trace_figure(out, tr, tensor)
    typer.echo(f"wrote {out}: {len(fig.panels)} panels ({', '.join(p.title for p in fig.panels)}) over "
               f"{tr.steps} steps, {fig.image.size[0]}x{fig.image.size[1]} px")
    return 0
