"""`edge-s2s plot-trace`: a trace file (`generate --trace`, `translate --trace`) drawn as heat maps;
`edge-s2s plot`: the learning curves of run directories (metrics.jsonl, steps.jsonl) as one PNG."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..runtime.errors import InputError
from ..runtime.output_files import check_writable

if TYPE_CHECKING:  # the CLI imports torch (under edge_s2s.train) only when a command needs it
    from ..runtime.pictures.line_plot import Panel


def plot_trace(
    trace: Annotated[Path, typer.Argument(help="Trace file (.npz) written by `edge-s2s generate --trace`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write (PNG).")],
    tensor: Annotated[list[str] | None, typer.Option(
        "--tensor", help="Draw this traced tensor (repeat for several; default: the weightings and attention). "
                         "A [T, A, B] state such as ntm_memory is drawn as it is after the last step.")] = None,
) -> int:
    """Draw a trace as heat maps over time: one panel per weighting and head, tokens along the time axis."""
    from ..runtime.pictures.trace_map import save_trace_figure
    from ..runtime.tools.trace import load_trace

    check_writable(out)
    tr = load_trace(trace)
    fig = save_trace_figure(out, tr, tensor)
    typer.echo(f"wrote {out}: {len(fig.panels)} panels ({', '.join(p.title for p in fig.panels)}) over "
               f"{tr.steps} steps, {fig.image.size[0]}x{fig.image.size[1]} px")
    return 0


# --- `edge-s2s plot`: learning curves of one or more run directories ---------------------------

METRICS = "metrics.jsonl"
VAL_LOSS_KEYS = ("val_loss", "val_nll", "eval_loss")  # translator/captioner/speech, generators, NTM tasks
# The task's validation score: one panel per group a run has (the first key of a group it has).
SCORE_GROUPS = (("val_bleu", "val_BLEU-4"), ("val_CIDEr-D",), ("val_cer",), ("val_wer",),
                ("accuracy", "val_accuracy"), ("val_error",),
                ("val_bits_per_char", "val_bits_per_pixel", "val_perplexity"))
PRETTY = {"val_bleu": "validation BLEU", "val_BLEU-4": "validation BLEU-4", "val_CIDEr-D": "validation CIDEr-D",
          "val_cer": "validation CER (lower is better)", "val_wer": "validation WER (lower is better)",
          "accuracy": "accuracy", "val_accuracy": "validation accuracy",
          "val_error": "validation error (lower is better)", "val_bits_per_char": "validation bits per character",
          "val_bits_per_pixel": "validation bits per pixel", "val_perplexity": "validation perplexity"}


@dataclass
class RunLog:
    """What a run directory logged: metrics.jsonl lines (per epoch, or per evaluation) and steps.jsonl lines."""

    name: str
    path: Path
    metrics: list[dict]
    steps: list[dict]


def _read_jsonl(path: Path) -> list[dict]:
    """JSON objects, one a line; a line a kill cut short (or any other unreadable one) is skipped."""
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}; check its permissions") from None
    out = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append(d)
    return out


def _run_names(paths: list[Path]) -> list[str]:
    """Legend names: each run's directory name, with parent folders added until they differ."""
    parts = [p.resolve().parts for p in paths]
    for k in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]  # the same directory twice: say so in full


def read_run(path: Path, name: str | None = None) -> RunLog:
    """A run directory's logs; one clear line when it is not a run or has logged nothing yet."""
    from ..runtime.tools.run_logs import STEPS_FILE, read_steps

    if not path.exists():
        raise InputError(f"{path} does not exist: pass a run directory written by `edge-s2s train` "
                         f"(the one that holds {METRICS})")
    if not path.is_dir():
        raise InputError(f"{path} is a file, not a run directory: pass the directory that holds {METRICS}")
    has_metrics, has_steps = (path / METRICS).is_file(), (path / STEPS_FILE).is_file()
    if not has_metrics and not has_steps:
        raise InputError(f"{path} has no {METRICS} or {STEPS_FILE}: it is not a training run directory "
                         "(pass the --out of `edge-s2s train`)")
    metrics = _read_jsonl(path / METRICS)
    steps = [d for d in read_steps(path) if _num(d.get("step")) is not None and _num(d.get("loss")) is not None]
    if not metrics and not steps:
        raise InputError(f"{path} has logged nothing yet ({METRICS} is empty): plot it after the first epoch")
    return RunLog(name or path.name, path, metrics, steps)


def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _points(lines: list[dict], x_key: str, y_key: str) -> list[tuple[float, float]]:
    """(x, y) of the lines that have a number for x (a missing or null y breaks the line)."""
    out = []
    for d in lines:
        x = _num(d.get(x_key))
        if x is not None and y_key in d:
            y = _num(d[y_key])
            out.append((x, y if y is not None else math.nan))
    return out


def _mean_every(points: list[tuple[float, float]], k: int) -> list[tuple[float, float]]:
    """Mean of each k consecutive points (x = the last step of the k): per-step loss is noisy."""
    if k <= 1:
        return points
    return [(points[min(i + k, len(points)) - 1][0], sum(y for _, y in points[i:i + k]) / len(points[i:i + k]))
            for i in range(0, len(points), k)]


def _x_key(lines: list[dict], prefer: str) -> str:
    """Epoch for per-epoch logs; step for logs without epochs (the NTM tasks evaluate every N steps)."""
    other = "step" if prefer == "epoch" else "epoch"
    return prefer if any(_num(d.get(prefer)) is not None for d in lines) else other


def learning_curve_panels(runs: list[RunLog], metrics: list[str] | None = None, smooth: int = 0) -> list[Panel]:
    """Panels: training loss per step (per epoch without steps.jsonl), validation loss, the task's scores.

    `metrics` replaces the automatic score panels with these keys (metrics.jsonl, or steps.jsonl:
    lr, tokens_per_s, drawn per step); `smooth`
    averages the per-step loss over that many steps (0: about 100 points for the longest run; 1: raw).
    """
    from ..runtime.pictures.line_plot import Panel

    train = Panel("training loss", "optimizer step", "loss (token NLL)")
    x_names, notes = set(), []
    # One window for every run (from the longest), so that overlaid curves are equally smooth.
    k = smooth if smooth > 0 else max([1] + [len(r.steps) // 100 for r in runs])
    for r in runs:
        if r.steps:
            train.series[r.name] = _mean_every(_points(r.steps, "step", "loss"), k)
            x_names.add("optimizer step")
        else:
            x = _x_key(r.metrics, "step")
            train.series[r.name] = _points(r.metrics, x, "train_loss")
            x_names.add("optimizer step" if x == "step" else "epoch")
    train.x_label = " / ".join(sorted(x_names))
    if k > 1 and any(r.steps for r in runs):
        notes.append(f"mean of {k} steps")
    coarse = [r for r in runs if not r.steps]
    if coarse:
        unit = "epoch" if all(_x_key(r.metrics, "epoch") == "epoch" for r in coarse) else "evaluation"
        notes.append(f"per {unit}" if len(coarse) == len(runs) else f"per {unit} without steps.jsonl")
    if notes:
        train.title += f" ({'; '.join(notes)})"
    panels = [train]

    def per_eval(title: str, y_label: str, keys) -> Panel | None:
        """A run's first key of `keys` per epoch (metrics.jsonl), or per step (a steps.jsonl key: lr, ...)."""
        panel, x_names = Panel(title, "", y_label), set()
        for r in runs:
            for lines, prefer in ((r.metrics, "epoch"), (r.steps, "step")):
                key = next((k for k in keys if any(k in d for d in lines)), None)
                if key is not None:
                    x = _x_key(lines, prefer)
                    panel.series[r.name] = _points(lines, x, key)
                    x_names.add("optimizer step" if x == "step" else x)
                    break
        panel.x_label = " / ".join(sorted(x_names))
        return panel if panel.series else None

    val = per_eval("validation loss", "loss (token NLL)", VAL_LOSS_KEYS)
    if val:
        panels.append(val)
    if metrics:
        known = sorted({k for r in runs for d in r.metrics + r.steps for k in d} - {"epoch", "step"})
        for key in metrics:
            if key not in known:
                raise InputError(f"no run logged {key!r}: choose --metric from {', '.join(known)}")
        groups = [(key,) for key in dict.fromkeys(metrics)]
    else:
        groups = [g for g in SCORE_GROUPS if any(k in d for r in runs for d in r.metrics for k in g)]
    for g in groups:
        present = [k for k in g if any(k in d for r in runs for d in r.metrics + r.steps)]
        y_label = present[0].removeprefix("val_") if len(present) == 1 else "score"
        panel = per_eval(" / ".join(PRETTY.get(k, k) for k in present), y_label, g)
        if panel:
            panels.append(panel)
    return panels


def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `edge-s2s train` (their --out); "
                                                    "several are overlaid, one colour each.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Picture to write (PNG).")] = Path("curves.png"),
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Plot this metrics.jsonl key (or steps.jsonl key: lr, tokens_per_s) instead of the "
                         "task's scores (repeat for several).")] = None,
    smooth: Annotated[int, typer.Option(help="Average the per-step training loss over N steps "
                                             "(0 = about 100 points for the longest run, 1 = every step).")] = 0,
    title: Annotated[str | None, typer.Option(help="Title above the panels (default: the run names).")] = None,
) -> int:
    """Draw learning curves: training loss per step, validation loss and the task's score per epoch."""
    from ..runtime.pictures.line_plot import Layout, save_line_plot

    check_writable(out)
    if smooth < 0:
        raise InputError(f"--smooth must be >= 0 (0 = automatic, 1 = every step), got {smooth}")
    names = _run_names(runs)
    logs = [read_run(p, n) for p, n in zip(runs, names)]
    panels = learning_curve_panels(logs, metric, smooth)
    heading = title if title is not None else "learning curves: " + ", ".join(names)
    save_line_plot(out, panels, heading, Layout(columns=2 if len(panels) == 4 else 3))  # 2 x 2, else rows of 3
    epochs = ", ".join(f"{r.name} {len(r.metrics)} evaluations" + (f" + {len(r.steps)} step lines" if r.steps else "")
                       for r in logs)
    typer.echo(f"wrote {out}: {len(panels)} panels ({', '.join(p.title for p in panels)}) from {epochs}")
    return 0
