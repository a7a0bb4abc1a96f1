"""Reading a training run's logs: `metrics.jsonl` (one line per epoch) and `steps.jsonl` (one line
per optimizer step). Torch-free, so `edge-s2s plot` runs in a runtime-only install; the training
loop (train/core/epochs.py, step_log.py) writes these files under the names defined here.
"""

from __future__ import annotations

import json
from pathlib import Path

STEPS_FILE = "steps.jsonl"


def read_steps(run_dir: str | Path) -> list[dict]:
    """The run's step lines (a torn last line is skipped)."""
    path = Path(run_dir, STEPS_FILE)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict) and "step" in d:
            out.append(d)
    return out


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir, METRICS_FILE)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

METRICS_FILE = "metrics.jsonl"
