"""`steps.jsonl`: one JSON line per `log_every` optimizer steps, so a person (or `edge-s2s plot`)
can follow a run between the per-epoch lines of `metrics.jsonl`.

Each line: {"step", "epoch" (1-based, the epoch the step belongs to), "loss" (token NLL of the
steps since the previous line, the step itself when log_every is 1, over all ranks), "tokens"
(target tokens in those steps), "tokens_per_s", "lr", "time" (seconds since the run started,
summed over resumed sessions)}. Lines past the step a resumed checkpoint holds were never saved:
`StepLog.open` drops them (and a line a kill cut short), so the file always matches last.pt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ...runtime.tools.run_logs import STEPS_FILE, read_steps
from .checkpoint import atomic_write_bytes


class StepLog:
    """Appends the step lines of one training session (rank 0 only)."""

    def __init__(self, path: Path, every: int, time_offset: float):
        self.path, self.every, self.offset = path, max(int(every), 1), time_offset
        self.start = self.mark = time.time()
        self.loss_sum, self.tokens = 0.0, 0
        self.file = open(path, "a", encoding="utf-8")

    @classmethod
    def open(cls, run_dir: Path, step: int, every: int) -> StepLog:
        """Keep the lines up to `step` (the checkpoint's), continue the clock from the last one kept."""
        path = run_dir / STEPS_FILE
        offset = 0.0
        if path.is_file():
            kept = [d for d in read_steps(run_dir) if d["step"] <= step]
            text = "".join(json.dumps(d) + "\n" for d in kept)
            if text.encode("utf-8") != path.read_bytes():
                atomic_write_bytes(path, text.encode("utf-8"))
            offset = float(kept[-1].get("time", 0.0)) if kept else 0.0
        return cls(path, every, offset)

    def add(self, step: int, epoch: int, nll: float, tokens: int, lr: float) -> None:
        """Count one optimizer step; write a line every `every` steps."""
        self.loss_sum += nll * tokens
        self.tokens += tokens
        if step % self.every:
            return
        now = time.time()
        line = {"step": step, "epoch": epoch, "loss": self.loss_sum / max(self.tokens, 1), "tokens": self.tokens,
                "tokens_per_s": round(self.tokens / max(now - self.mark, 1e-9), 1), "lr": lr,
                "time": round(self.offset + now - self.start, 3)}
        self.file.write(json.dumps(line) + "\n")
        self.file.flush()
        self.mark, self.loss_sum, self.tokens = now, 0.0, 0

    def close(self) -> None:
        self.file.close()
