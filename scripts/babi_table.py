"""Per-task bAbI test error of End-To-End Memory Networks; writes docs/babi-results.{json,md}.

    python scripts/babi_table.py                        # 20 tasks x hops 3, 1, 2 (1k, PE LS RN)
    python scripts/babi_table.py --tasks 1,2 --hops 3   # a subset

Each (task, hops) trains one network on the task's 1k training file (10% held out for
validation and linear start) and is scored on its test file (train/memn2n.py run_table).
Results are saved after every run, so an interrupted run keeps what it finished and a
re-run skips those. Data: ../shared/data/babi (never committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from edge_s2s.train.babi import DEFAULT_ROOT
from edge_s2s.train.memn2n import MemN2NConfig, run_table

ROOT = Path(__file__).resolve().parent.parent
# The recollection of the paper's Table 1 (PE LS RN, 1k; not checked here).
PAPER_MEAN_3_HOPS = 13.9


def _ints(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def write_report(results: dict, path: Path) -> None:
    hops = sorted({int(h) for t in results.values() for h in t})
    tasks = sorted(int(t) for t in results)
    lines = ["# End-To-End Memory Networks on bAbI (1k)", "",
             "`python scripts/babi_table.py`: PE, linear start, random noise, adjacent tying, d = 20, memory 50 "
             "sentences, SGD as in the paper; one run per cell (seed 1; the paper reports the best of 10). "
             "Test error in %.", "",
             "| task | " + " | ".join(f"{h} hop{'s' if h > 1 else ''}" for h in hops) + " |",
             "|---|" + "---|" * len(hops)]
    for t in tasks:
        row = results[str(t)]
        lines.append(f"| {t} | " + " | ".join(f"{100 * row[str(h)]:.1f}" if str(h) in row else "–" for h in hops)
                     + " |")
    means = []
    for h in hops:
        vals = [results[str(t)][str(h)] for t in tasks if str(h) in results[str(t)]]
        means.append(f"{100 * sum(vals) / len(vals):.1f} ({len(vals)} tasks)" if vals else "–")
    lines.append("| **mean** | " + " | ".join(means) + " |")
    lines += ["", f"The issue recalls the paper's mean for PE LS RN, 3 hops, 1k as about {PAPER_MEAN_3_HOPS}% "
              "(best of 10 runs per task); not checked here.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="1-20")
    ap.add_argument("--hops", default="3,1,2", help="Hop counts, run in this order (all tasks for each).")
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "babi-results")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for hops in _ints(args.hops):
        for task in _ints(args.tasks):
            if str(hops) in results.get(str(task), {}):
                continue
            t0 = time.time()
            table = run_table(args.root, [task], [hops], MemN2NConfig(), seed=args.seed)
            results.setdefault(str(task), {})[str(hops)] = table[task][hops]
            print(f"task {task:2d} hops {hops}: test error {100 * table[task][hops]:5.1f}%  "
                  f"({time.time() - t0:.0f} s)", flush=True)
            json_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
            write_report(results, md_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
