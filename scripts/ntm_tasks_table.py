"""The NTM generalisation table (Graves et al. 2014, Section 4): the Neural Turing Machine against an
LSTM of similar size on copy and associative recall, trained here in minutes, evaluated through
the runtime (the exported bundle, greedy, the task input forced as the prefix).

    OMP_NUM_THREADS=1 python scripts/ntm_tasks_table.py            # train what is missing, export, evaluate
    python scripts/ntm_tasks_table.py --only copy --skip-train      # re-evaluate existing runs
    python scripts/ntm_tasks_table.py --only copy --bits lstm feedforward   # + NTMs fed the bits

Runs go to runs/ntm-<task>[-lstm] (resumed when they hold fewer steps than asked), bundles to
bundles/ntm-<task>[-lstm]; the table to docs/ntm-results.md and .json. Per-sequence bit errors
(train/ntm/tasks.py bit_errors: a missing or extra pattern costs 8 bits) and exact-sequence accuracy
over --sequences random sequences per length: inside the training range, at the longest
trained length, and at 2x and 4x of it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from results_out import add_write_docs, results_dir  # noqa: E402

from edge_s2s.export.generate import export_ntm_task_bundle
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint
from edge_s2s.train.core.run_dir import write_json
from edge_s2s.train.ntm.loop import (
    NTMTaskConfig,
    build_task_model,
    describe_model,
    evaluate_bundle,
    generalisation_sizes,
    parameter_count,
    train_ntm_task,
)
from edge_s2s.train.ntm.tasks import task_vocab

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("in range", "max", "2x", "4x")
PAPER = ("Graves et al. (2014) train copy on lengths 1-20 and associative recall on 2-6 items, and report "
         "that the NTM keeps working well beyond the trained length (copy to 120 with slow degradation, "
         "recall to 12-15 items) while an LSTM fails quickly past the training range.")


@dataclass
class Plan:
    """One of the four trainings (the CLI flags of `edge-s2s train ntm` in brackets)."""

    task: str
    model: str
    steps: int
    controller: str = "lstm"
    lr: float = 1e-3
    curriculum_steps: int = 0
    inputs: str = "embedding"

    @property
    def variant(self) -> str:
        """The table column: "ntm", "ntm-bits", "ntm-bits-ff" or "lstm"."""
        if self.model == "lstm":
            return "lstm"
        return "ntm" + ("-bits" if self.inputs == "bits" else "") + ("-ff" if self.controller == "feedforward" else "")

    @property
    def name(self) -> str:
        suffix = {"ntm": "", "lstm": "-lstm"}.get(self.variant, f"-bits-{self.controller}")
        return f"ntm-{self.task}{suffix}"

    def config(self, runs: Path, seed: int) -> NTMTaskConfig:
        return NTMTaskConfig(task=self.task, model=self.model, controller=self.controller, steps=self.steps,
                             lr=self.lr, curriculum_steps=self.curriculum_steps, seed=seed, inputs=self.inputs,
                             out_dir=str(runs / self.name))


VARIANTS = {"ntm": "NTM", "ntm-bits": "NTM, bit inputs", "ntm-bits-ff": "NTM, bit inputs, feed-forward controller",
            "lstm": "LSTM"}


def plans(args) -> list[Plan]:
    out = []
    for task in args.only or ("copy", "recall"):
        out.append(Plan(task, "ntm", args.ntm_steps[task], args.controller, args.lr, args.curriculum_steps))
        for controller in args.bits or ():
            out.append(Plan(task, "ntm", args.bits_steps, controller, args.lr, args.curriculum_steps, "bits"))
        out.append(Plan(task, "lstm", args.lstm_steps[task], lr=args.lr, curriculum_steps=args.curriculum_steps))
    return out


def train_or_resume(plan: Plan, cfg: NTMTaskConfig) -> dict:
    """Train until the run holds `plan.steps` steps (resuming a shorter run); its summary."""
    run = Path(cfg.out_dir)
    done = load_checkpoint(run / LAST)["step"] if (run / LAST).is_file() else 0
    if done < plan.steps:
        train_ntm_task(cfg, resume=done > 0)
    ck = load_checkpoint(run / LAST)
    saved = json.loads((run / "config.json").read_text(encoding="utf-8"))["train"]
    return {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run), "steps": ck["step"],
            "train_seconds": round(ck.get("position", {}).get("seconds", ck.get("seconds", 0.0)), 1), "config": saved,
            "final_metrics": ck["metrics"]}


def evaluate(plan: Plan, cfg: NTMTaskConfig, bundles: Path, n: int) -> dict:
    bundle = bundles / plan.name
    export_ntm_task_bundle(cfg.out_dir, bundle)
    sizes = generalisation_sizes(cfg)
    t0 = time.time()
    by_size = evaluate_bundle(bundle, cfg.task, sorted(set(sizes.values())), n=n)
    rows = {label: {"size": size, **by_size[size]} for label, size in sizes.items()}
    return {"bundle": str(bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle), "rows": rows,
            "eval_seconds": round(time.time() - t0, 1)}


def _cell(r: dict) -> str:
    return f"{r['bit_errors']:.2f} / {100 * r['accuracy']:.0f}%"


def chance_bits(task: str, size: int) -> float:
    """Bit errors of random patterns of the right length: 4 of 8 bits wrong on average per pattern."""
    return 4.0 * (size if task == "copy" else 3)


def summary_sentences(task: str, ntm: dict, lstm: dict, label: str = "NTM") -> str:
    """What the numbers say, read off them: "ahead" only for a gap of 10% or more below chance level."""
    n, m = ntm["rows"], lstm["rows"]
    parts = [f"inside the training range the {label} makes {n['in range']['bit_errors']:.2f} bit errors per sequence "
             f"(LSTM {m['in range']['bit_errors']:.2f}), at the longest trained size {n['max']['bit_errors']:.2f} "
             f"({m['max']['bit_errors']:.2f}), at 2x {n['2x']['bit_errors']:.2f} ({m['2x']['bit_errors']:.2f}) and "
             f"at 4x {n['4x']['bit_errors']:.2f} ({m['4x']['bit_errors']:.2f})"]
    chance = {r: chance_bits(task, n[r]["size"]) for r in ("2x", "4x")}
    better = [r for r in ("2x", "4x") if n[r]["bit_errors"] < 0.9 * min(m[r]["bit_errors"], chance[r])]
    if all(min(n[r]["bit_errors"], m[r]["bit_errors"]) >= 0.9 * chance[r] for r in chance):
        parts.append("beyond the training range both are at or above chance level (random patterns of the right "
                     f"length: {chance['2x']:.0f} and {chance['4x']:.0f} bits), so neither generalises")
    elif len(better) == 2:
        parts.append("beyond the training range the NTM is ahead at both 2x and 4x")
    elif better:
        parts.append(f"beyond the training range the NTM is ahead only at {better[0]}")
    else:
        parts.append("beyond the training range the NTM is not ahead of the LSTM")
    return f"**{task}, {label}**: " + "; ".join(parts) + "."


def write_docs(results: dict, out: Path) -> None:
    write_json(out.with_suffix(".json"), results)
    lines = ["# Neural Turing Machine vs LSTM: copy and associative recall", "",
             "Generated by `scripts/ntm_tasks_table.py` (numbers below are from that run; see the JSON next to this "
             "file for every value). Models trained with `edge-s2s train ntm`, exported with `edge-s2s export`, "
             "evaluated through the runtime: the task input is the forced prefix (ending `<delim>`), then greedy "
             "decoding writes the output. 8-bit patterns are 256 symbols (tokens `00`..`ff`).", "",
             "Each cell: **mean bit errors per sequence / exact-sequence accuracy** over "
             f"{results['sequences']} random test sequences per row (a missing or extra pattern costs 8 bits). "
             "*chance*: the bit errors of random patterns of the right length (4 per pattern).", ""]
    for task in results["tasks"]:
        r = results["tasks"][task]
        cols = [v for v in VARIANTS if v in r]
        lstm = r["lstm"]
        unit = "length" if task == "copy" else "items"
        lines += [f"## {task}", "", f"| {unit} | " + " | ".join(VARIANTS[v] for v in cols) + " | chance |",
                  "|---|" + "---|" * (len(cols) + 1)]
        for row in ROWS:
            size = lstm["rows"][row]["size"]
            lines.append(f"| {row} ({size}) | " + " | ".join(_cell(r[v]["rows"][row]) for v in cols)
                         + f" | {chance_bits(task, size):.0f} |")
        lines += [""]
        for label, m in ((VARIANTS[v], r[v]) for v in cols):
            c = m["config"]
            lo, hi = m["sizes"]
            lines.append(f"- {label}: {m['model']}, {m['parameters']:,} parameters; {m['steps']} steps of "
                         f"{c['batch_size']} sequences ({c['optimizer']} lr {c['lr']}, clip {c['clip']}), trained on "
                         f"{unit} {lo}..{hi} with the longest allowed size growing by one every "
                         f"{c['curriculum_steps']} steps; {m['train_seconds'] / 60:.1f} min on one CPU thread; "
                         f"seed {c['seed']}; bundle `{m['bundle']}`")
        lines += [""] + [summary_sentences(task, r[v], lstm, VARIANTS[v]) + "\n" for v in cols if v != "lstm"]
    lines += ["## What this shows", "", PAPER, "", results.get("notes", "").strip(), ""]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=("copy", "recall"))
    ap.add_argument("--copy-ntm-steps", type=int, default=16000)
    ap.add_argument("--copy-lstm-steps", type=int, default=16000)
    ap.add_argument("--recall-ntm-steps", type=int, default=5000)
    ap.add_argument("--recall-lstm-steps", type=int, default=5000)
    ap.add_argument("--controller", default="lstm", choices=("lstm", "feedforward"))
    ap.add_argument("--bits", nargs="*", choices=("lstm", "feedforward"),
                    help="also NTMs fed the patterns' bits (--inputs bits), with these controllers")
    ap.add_argument("--bits-steps", type=int, default=8000, help="steps of the bit-input NTMs")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--curriculum-steps", type=int, default=100, help="steps per curriculum stage")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sequences", type=int, default=200, help="test sequences per length")
    ap.add_argument("--skip-train", action="store_true", help="only export and evaluate the existing runs")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--bundles", type=Path, default=ROOT / "bundles")
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/ntm-results (docs/ with --write-docs)")
    add_write_docs(ap)
    ap.add_argument("--notes", type=Path, help="a text file whose content is the closing paragraph")
    ap.add_argument("--docs-only", action="store_true", help="rewrite the .md from the .json (and --notes)")
    args = ap.parse_args(argv)
    args.ntm_steps = {"copy": args.copy_ntm_steps, "recall": args.recall_ntm_steps}
    args.lstm_steps = {"copy": args.copy_lstm_steps, "recall": args.recall_lstm_steps}
    torch.set_num_threads(1)

    args.out = args.out or results_dir(args) / "ntm-results"
    old = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").is_file() else {}
    results = {"sequences": args.sequences, "tasks": dict(old.get("tasks", {})),
               "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
               "notes": args.notes.read_text(encoding="utf-8") if args.notes else old.get("notes", "")}
    if args.docs_only:
        write_docs(results, args.out)
        print(f"wrote {args.out.with_suffix('.md')} and .json")
        return 0
    vocab = task_vocab()
    for plan in plans(args):
        cfg = plan.config(args.runs, args.seed)
        if args.skip_train:
            if not (Path(cfg.out_dir) / LAST).is_file():
                print(f"{cfg.out_dir}: no run to evaluate (drop --skip-train)", file=sys.stderr)
                return 1
            plan.steps = 0
        entry = train_or_resume(plan, cfg)
        cfg = NTMTaskConfig.from_dict({**entry["config"], "out_dir": cfg.out_dir})
        params = parameter_count(build_task_model(cfg, len(vocab)))
        entry.update(model=describe_model(cfg), sizes=list(cfg.sizes), parameters=params,
                     **evaluate(plan, cfg, args.bundles, args.sequences))
        results["tasks"].setdefault(plan.task, {})[plan.variant] = entry
        print(f"{plan.name}: " + ", ".join(f"{k} ({v['size']}) {_cell(v)}" for k, v in entry["rows"].items()),
              flush=True)
    results["tasks"] = {t: results["tasks"][t] for t in ("copy", "recall") if t in results["tasks"]
                        and {"ntm", "lstm"} <= set(results["tasks"][t])}
    write_docs(results, args.out)
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
