"""`python -m edge_s2s.train <task> ...` is `edge-s2s train <task> ...`: the module form torchrun launches.

    torchrun --nproc-per-node 2 -m edge_s2s.train translate --data pairs.tsv --out runs/x

Each process pins its GPU (cuda:LOCAL_RANK) before any model is built and only rank 0 prints to
standard output; the epoch loop (`epochs.run_epochs`) then joins the process group (`distributed.py`).
"""

from __future__ import annotations

import os
import sys

from ..cli.app import run
from .core.distributed import pin_device, world_from_env

# tasks with their own training loop (not epochs.run_epochs): N copies would race on one run directory
SINGLE_PROCESS_TASKS = ("ntm", "babi")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    world = world_from_env()
    if world is not None and argv and argv[0] in SINGLE_PROCESS_TASKS:
        if world.main:
            print(f"error: `train {argv[0]}` has its own training loop and does not run under torchrun: "
                  "start it as one process (edge-s2s train ...)", file=sys.stderr)
        return 1
    pin_device()
    if world is not None and not world.main:  # one set of log lines (errors still reach stderr)
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    return run(["train", *argv])


if __name__ == "__main__":
    sys.exit(main())
