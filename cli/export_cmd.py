"""`edge-s2s export`: run directory -> checked bundle (needs the [train] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..runtime.errors import InputError


def export(
    run: Annotated[Path, typer.Argument(help="Run directory written by `edge-s2s train`.")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")] = Path("bundles/model"),
    checkpoint: Annotated[str, typer.Option(help="Which checkpoint: best (best validation score), last, average "
                                                 "(the mean of the epoch ends kept with --keep-epochs) or a file.")] = "best",
    int8: Annotated[bool, typer.Option("--int8", help="Also quantise weights to int8 (dynamic quantisation).")] = False,
    int8_parts: Annotated[str, typer.Option(help="With --int8 on a captioner or a speech model: 'linear' (linear "
                                                  "layers and embeddings; a CNN's convolutions stay float32), "
                                                  "'static' (captioners: linear, and the CNN int8 with ranges "
                                                  "calibrated on the run's training images; fastest) or "
                                                  "'all'.")] = "linear",
    parity: Annotated[bool, typer.Option("--parity/--no-parity", help="Prove ONNX == PyTorch before writing.")] = True,
    pointer_prior: Annotated[float | None, typer.Option(help="Captioners with label slots: beta >= 0 leans the copy "
                                                             "toward the names the classifier is surer of (pointer "
                                                             "scores + beta log p; decoding only). Default: as "
                                                             "trained.")] = None,
) -> None:
    """Export a trained model as a bundle: ONNX graphs, tokens, manifest; checked and parity-proven."""
    if _run_task(run) == "answer":
        from ..export.memn2n import export_memn2n_bundle, summary_lines

        if int8:
            raise InputError("--int8 is not offered for memory networks: their graph is a few embedding tables, "
                             "export without --int8")
        for line in summary_lines(export_memn2n_bundle(run, out, checkpoint=checkpoint, parity=parity)):
            typer.echo(line)
        typer.echo(f"next: edge-s2s info {out}   edge-s2s answer --bundle {out} --story story.txt \"Where is Mary?\"")
        return
    if int8_parts not in ("linear", "static", "all"):
        raise InputError(f"--int8-parts must be 'linear', 'static' or 'all', got {int8_parts!r}")
    if int8_parts == "static" and _run_task(run) != "caption":
        raise InputError("--int8-parts static is for captioners (it calibrates a CNN on training images): "
                         "use 'linear' or 'all'")
    if pointer_prior is not None and _run_task(run) != "caption":
        raise InputError("--pointer-prior is for captioners with label slots: export without it")
    if _run_task(run) == "caption":
        from ..export.caption import export_caption_bundle

        report = export_caption_bundle(run, out, checkpoint=checkpoint, int8=int8_parts if int8 else "none",
                                       parity=parity, pointer_prior=pointer_prior)
        nxt = f"edge-s2s caption --bundle {out} photo.jpg"
    elif _run_task(run) == "transcribe":
        from ..export.speech import export_speech_bundle

        report = export_speech_bundle(run, out, checkpoint=checkpoint, parity=parity,
                                      int8=int8_parts if int8 else "none")
        nxt = f"edge-s2s transcribe --bundle {out} call.wav"
    elif _run_task(run) == "generate":
        from ..export.generate import export_generator_bundle

        report = export_generator_bundle(run, out, checkpoint=checkpoint, int8=int8, parity=parity)
        nxt = f"edge-s2s generate --bundle {out}"
    else:
        from ..export.translate import export_bundle

        report = export_bundle(run, out, checkpoint=checkpoint, int8=int8, parity=parity)
        nxt = f"edge-s2s translate --bundle {out} \"...\""
    for line in summary(report):
        typer.echo(line)
    typer.echo(f"next: edge-s2s info {out}   {nxt}")


def _run_task(run: Path) -> str:
    """The task a run directory was trained for (config.json), "translate" when unsaid."""
    import json

    cfg = run / "config.json"
    if not cfg.is_file():
        return "translate"  # the exporter reports the missing run / checkpoint clearly
    try:
        return str(json.loads(cfg.read_text(encoding="utf-8")).get("task", "translate"))
    except (ValueError, AttributeError):
        raise InputError(f"{cfg} is not valid JSON: the run directory is damaged") from None


def summary(report) -> list[str]:
    """A few readable lines about what was written and proved."""
    lines = [f"exported {report.checkpoint} -> {report.bundle}" + ("  (int8)" if report.int8 else "")]
    for name in sorted(report.files):
        size = (Path(report.bundle) / name).stat().st_size
        lines.append(f"  {name:<20}{size / 1e6:8.2f} MB")
    p = report.parity
    if p:
        step = p.get("step", {})
        lines.append(f"parity ({'enforced' if p.get('enforced') else 'reported'}, tolerance {p.get('tolerance')}): "
                     f"step outputs max |onnx - torch| = {step.get('max_abs_diff', float('nan')):.2e} "
                     f"at batch {step.get('batch')}, {step.get('rows')} rows, k={step.get('k')}")
        for name, r in p.get("search", {}).get("searches", {}).items():
            lines.append(f"  {name}: {r['identical']}/{r['of']} decodes token-identical to PyTorch, "
                         f"max log-prob diff {r['max_log_prob_diff']:.2e}")
    else:
        lines.append("parity: not checked (--no-parity)")
    lines.append(f"golden.json: {report.golden_cases} cases (edge-s2s verify re-runs them)")
    return lines
