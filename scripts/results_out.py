"""Where the result scripts write: runs/results/ by default, so a trial run never overwrites the
committed pages under docs/; `--write-docs` writes those pages (what a maintainer does after a full
run, then commits)."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCRATCH = ROOT / "runs" / "results"


def add_write_docs(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--write-docs", action="store_true",
                    help=f"write the committed page(s) under docs/ (default: {SCRATCH.relative_to(ROOT)}/)")


def results_dir(args: argparse.Namespace) -> Path:
    out = DOCS if getattr(args, "write_docs", False) else SCRATCH
    out.mkdir(parents=True, exist_ok=True)
    return out
