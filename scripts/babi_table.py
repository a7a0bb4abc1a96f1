"""bAbI (1k) test error of End-To-End Memory Networks next to the paper; writes docs/babi-results.{json,md}.

    python scripts/babi_table.py                          # 20 tasks; 3 hops x 5 seeds, 2 and 1 hops x 3; joint x 1
    python scripts/babi_table.py --seeds 3:10 --hops 3    # the paper's 10 runs, 3 hops only
    python scripts/babi_table.py --joint 0 --tasks 1-5    # no joint column, a subset
    python scripts/babi_table.py --quick                  # a minute: 2 tasks, short training, to runs/
    python scripts/babi_table.py --report-only            # rewrite the .md from the .json

Per-task columns: each (task, hops, seed) trains one network on the task's training file
(10% held out) and is scored on its test file (train/memn2n/model.py train_and_score). The
paper's protocol picks, per task, the run with the LOWEST TRAINING error among its seeds
("best"); the mean +- sd over the seeds is the honest one. The joint column trains one
network on all tasks together (train/memn2n/experiments.py). Results are saved after every run,
so an interrupted run keeps what it finished and a re-run skips it (a changed training
config starts afresh). Order: seed 1 of every (hops, task), then joint seed 1, then seed 2,
... so a cut-short run still fills every row. Data: ../shared/data/babi (never committed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from results_out import add_write_docs, results_dir  # noqa: E402

from edge_s2s.train.memn2n.babi import DEFAULT_ROOT, BabiError, load_task
from edge_s2s.train.memn2n.experiments import JOINT_CONFIG, train_and_score, train_joint
from edge_s2s.train.memn2n.model import MemN2NConfig

ROOT = Path(__file__).resolve().parent.parent
FAIL = 0.05  # the paper counts a task failed above 5% test error

# Paper, Table 1 (1k, PE LS RN, 3 hops, per-task training, best of 10 runs by training error), test error %.
# As recalled in the issue, not checked against the PDF here; their mean, 13.9, is the paper's.
PAPER_3_HOPS = {1: 0.0, 2: 8.3, 3: 40.3, 4: 2.8, 5: 13.1, 6: 7.6, 7: 17.3, 8: 10.0, 9: 13.2, 10: 15.1, 11: 0.9,
                12: 0.2, 13: 0.4, 14: 1.7, 15: 0.0, 16: 1.3, 17: 51.0, 18: 11.1, 19: 82.8, 20: 0.0}
# Paper, Table 1, PE LS RN joint (3 hops, one network on all 20 tasks): from a third party's transcription
# (accuracies, "PE LS RN JOINT (3-HOP, FB)") in a public repository; its mean is the paper's 12.4.
PAPER_JOINT = {1: 0.0, 2: 11.4, 3: 21.9, 4: 13.4, 5: 14.4, 6: 2.8, 7: 18.3, 8: 9.3, 9: 1.9, 10: 6.5, 11: 0.3,
               12: 0.1, 13: 0.2, 14: 6.9, 15: 0.0, 16: 2.7, 17: 40.4, 18: 9.4, 19: 88.0, 20: 0.0}


def _ints(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def parse_seeds(text: str, hops: list[int]) -> dict[int, int]:
    """ "5" -> every hops 5 seeds; "3:5,2:3,1:3" -> per hops (a hops not named gets 1)."""
    if ":" not in text:
        return {h: int(text) for h in hops}
    given = {int(h): int(n) for h, n in (p.split(":") for p in text.split(",") if p.strip())}
    return {h: given.get(h, 1) for h in hops}


# --- results file ------------------------------------------------------------------------


def load_results(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The saved results when they were made with these settings, else a fresh record."""
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(old, dict) and old.get("settings") == settings:
            return old
        print(f"{path}: made with other settings (or the old format): starting afresh", flush=True)
    return {"settings": settings, "runs": [], "joint": []}


def save(results: dict[str, Any], json_path: Path, md_path: Path) -> None:
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)
    md_path.write_text(report(results), encoding="utf-8")


# --- the page ----------------------------------------------------------------------------


def best_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's pick: lowest training error; ties (many runs reach 0) by validation error, then seed."""
    return min(runs, key=lambda r: (r["train_error"], r["val_error"], r["seed"]))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _mean_sd(xs: list[float]) -> str:
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{100 * xs[0]:.1f}"
    return f"{100 * statistics.mean(xs):.1f} ± {100 * statistics.stdev(xs):.1f}"


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per hops: per-task best (by training error) and per-seed errors; per-seed 20-task means; joint."""
    tasks = sorted({r["task"] for r in results["runs"]} | {int(t) for j in results["joint"] for t in j["errors"]})
    hops = sorted({r["hops"] for r in results["runs"]}, reverse=True)
    out: dict[str, Any] = {"tasks": tasks, "hops": {}}
    for h in hops:
        runs = [r for r in results["runs"] if r["hops"] == h]
        per_task = {t: [r for r in runs if r["task"] == t] for t in tasks}
        seeds = sorted({r["seed"] for r in runs})
        complete = [s for s in seeds if all(any(r["seed"] == s for r in per_task[t]) for t in tasks)]
        seed_means = [statistics.mean(r["test_error"] for t in tasks for r in per_task[t] if r["seed"] == s)
                      for s in complete]
        out["hops"][h] = {
            "best": {t: best_run(rs)["test_error"] for t, rs in per_task.items() if rs},
            "errors": {t: [r["test_error"] for r in rs] for t, rs in per_task.items()},
            "seeds": len(seeds), "complete_seeds": complete, "seed_means": seed_means,
            "seconds": sum(r["seconds"] for r in runs), "runs": len(runs)}
    joint = results["joint"]
    if joint:
        pick = min(joint, key=lambda j: (j["train_error"], j["val_error"], j["seed"]))
        out["joint"] = {"best": {int(t): e for t, e in pick["errors"].items()}, "n": len(joint),
                        "errors": {t: [j["errors"][str(t)] for j in joint if str(t) in j["errors"]] for t in tasks},
                        "seed_means": [statistics.mean(j["errors"].values()) for j in joint],
                        "seconds": sum(j["seconds"] for j in joint), "hops": pick["hops"]}
    return out


def _mean_of(d: dict[int, float], tasks: list[int]) -> float | None:
    vals = [d[t] for t in tasks if t in d]
    return statistics.mean(vals) if len(vals) == len(tasks) and vals else None


def summary_lines(s: dict[str, Any], tasks: list[int]) -> str:
    """The comparison in words: 3 hops and joint against the paper, and the seed-sensitive tasks."""
    parts = []
    if 3 in s["hops"] and len(tasks) == 20:
        h3 = s["hops"][3]
        best, paper = _mean_of(h3["best"], tasks), statistics.mean(PAPER_3_HOPS.values())
        parts.append(f"3 hops, per task: {_pct(best)}% mean error by the paper's protocol (best of "
                     f"{h3['seeds']} by training error) against the paper's {paper:.1f}% (best of 10); "
                     f"{_mean_sd(h3['seed_means'])}% for a single run (mean ± sd over seeds).")
        spread = sorted(tasks, key=lambda t: -statistics.pstdev(h3["errors"][t]) if len(h3["errors"][t]) > 1 else 0)
        noisy = [f"{t} ({_mean_sd(h3['errors'][t])})" for t in spread[:4] if len(h3["errors"][t]) > 1]
        if noisy:
            parts.append("The seeds disagree most on tasks " + ", ".join(noisy) + ": some runs get stuck, which "
                         "best-of-N selection hides.")
    if "joint" in s and len(tasks) == 20:
        jm = _mean_of(s["joint"]["best"], tasks)
        parts.append(f"Joint: {_pct(jm)}% against the paper's {statistics.mean(PAPER_JOINT.values()):.1f}% "
                     f"({s['joint']['n']} run{'s' if s['joint']['n'] > 1 else ''}).")
    return "**Summary.** " + " ".join(parts) if parts else ""


def report(results: dict[str, Any]) -> str:
    s = summarise(results)
    tasks, hops = s["tasks"], list(s["hops"])
    cfg, jcfg = results["settings"]["task_config"], results["settings"]["joint_config"]
    head = ["task"]
    for h in hops:
        n = s["hops"][h]["seeds"]
        head += [f"{h} hop{'s' if h > 1 else ''}: best of {n}", f"{h} hop{'s' if h > 1 else ''}: mean ± sd"]
    head += ["paper 3 hops"]
    if "joint" in s:
        head += [f"joint ({s['joint']['hops']} hops, {s['joint']['n']} run{'s' if s['joint']['n'] > 1 else ''})"]
    head += ["paper joint"]
    lines = ["# End-To-End Memory Networks on bAbI (1k)", "",
             "Regenerate: `python scripts/babi_table.py` (options: `--seeds`, `--hops`, `--joint`, `--tasks`, "
             "`--quick`; `--report-only` rewrites this page from babi-results.json). Test error in %, per task "
             "and the mean over the 20 tasks, next to the paper (Sukhbaatar et al. 2015, Table 1).", "",
             "| " + " | ".join(head) + " |", "|---|" + "---|" * (len(head) - 1)]
    for t in tasks:
        row = [str(t)]
        for h in hops:
            hs = s["hops"][h]
            row += [_pct(hs["best"].get(t)), _mean_sd(hs["errors"].get(t, []))]
        row += [f"{PAPER_3_HOPS[t]:.1f}"]
        if "joint" in s:
            js = s["joint"]
            row += [_pct(js["best"].get(t)) if js["n"] == 1 else
                    f"{_pct(js['best'].get(t))} (mean {_mean_sd(js['errors'].get(t, []))})"]
        row += [f"{PAPER_JOINT[t]:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    mean = ["**mean**"]
    fails = ["failed (> 5%)"]
    for h in hops:
        hs = s["hops"][h]
        mean += [_pct(_mean_of(hs["best"], tasks)), _mean_sd(hs["seed_means"])]
        per_seed_fails = [sum(1 for t in tasks for r in results["runs"]
                              if r["hops"] == h and r["task"] == t and r["seed"] == seed and r["test_error"] > FAIL)
                          for seed in hs["complete_seeds"]]
        fails += [str(sum(e > FAIL for e in hs["best"].values())),
                  f"{statistics.mean(per_seed_fails):.1f}" if per_seed_fails else "–"]
    paper = [PAPER_3_HOPS[t] for t in tasks]
    mean += [f"{statistics.mean(paper):.1f}"]
    fails += [str(sum(e > 100 * FAIL for e in paper))]
    if "joint" in s:
        js = s["joint"]
        m = _mean_of(js["best"], tasks)
        mean += [_pct(m) if js["n"] == 1 else f"{_pct(m)} (mean {_mean_sd(js['seed_means'])})"]
        fails += [str(sum(e > FAIL for e in js["best"].values()))]
    pj = [PAPER_JOINT[t] for t in tasks]
    mean += [f"{statistics.mean(pj):.1f}"]
    fails += [str(sum(e > 100 * FAIL for e in pj))]
    lines += ["| " + " | ".join(mean) + " |", "| " + " | ".join(fails) + " |", ""]
    lines += [summary_lines(s, tasks), ""]
    total_s = sum(h["seconds"] for h in s["hops"].values()) + (s["joint"]["seconds"] if "joint" in s else 0)
    run_desc = ", ".join(f"{s['hops'][h]['runs']} runs of {h} hop{'s' if h > 1 else ''}" for h in hops)
    if "joint" in s:
        run_desc += f", {s['joint']['n']} joint run(s) of {s['joint']['seconds'] / s['joint']['n'] / 60:.0f} min"
    seeds_txt = ", ".join(f"{s['hops'][h]['seeds']} for {h} hop{'s' if h > 1 else ''}" for h in hops)
    lines += [
        "**How to read it.** *best of N*: the paper's protocol, per task the run with the LOWEST TRAINING "
        "error among the seeds (ties, common at 0%, broken by validation error, then seed); the paper took "
        f"the best of 10. *mean ± sd*: over the seeds (seeds 1..N; {seeds_txt}); in the mean row, the mean "
        "and sd of the per-seed 20-task means. *failed*: tasks above 5% test error (the paper's count), for "
        "the mean ± sd columns the mean count per seed.",
        "",
        f"**Settings, per task** ({'1k' if results['settings']['size'] == '1k' else results['settings']['size']}): "
        f"PE (authors' formula, `pe_style={cfg['pe_style']}`), linear start ({cfg['ls_max_epochs']} epochs at "
        f"lr {cfg['ls_lr']}), random noise {cfg['random_noise']}, {cfg['tying']} tying, d = {cfg['dim']}, "
        f"memory {cfg['memory_size']} sentences with empty memories in the softmax "
        f"(`empty_memories={cfg['empty_memories']}`), SGD batch {cfg['batch_size']} (summed loss), then "
        f"{cfg['epochs']} epochs with lr halved every {cfg['lr_decay_every']}, gradient norm clip {cfg['clip']}; "
        f"{100 * cfg['val_fraction']:.0f}% of each training file held out (random). "
        f"**Joint**: one network on all 20 training files, d = {jcfg['dim']}, linear start "
        f"{jcfg['ls_max_epochs']} epochs, then {jcfg['epochs']} epochs halving every {jcfg['lr_decay_every']} "
        "(the authors' config_babi_joint.m).",
        "",
        f"**Run time**: {total_s / 60:.0f} min of training, wall clock, one thread each on a 2-core machine "
        f"shared with other jobs ({run_desc}).",
        "",
        "**The paper's columns.** *paper 3 hops*: Table 1, PE LS RN, 3 hops, per-task training on 1k, best of 10 "
        "runs by training error: recalled (the issue's figures), not checked against the PDF here; their mean is "
        "the paper's 13.9. A rerun of the authors' Matlab code published in vinhkhuc/MemN2N-babi-python "
        "(bechmarks/README.md) is close (mean 13.8; single tasks differ by up to 5 points, task 10). The paper has no "
        "per-task-trained 1- or 2-hop PE LS RN column (its 1- and 2-hop columns are joint PE LS), so the 1- and "
        "2-hop columns here have no paper counterpart. *paper joint*: Table 1, PE LS RN joint (3 hops), from "
        "a third party's transcription in a public repository; its mean is the paper's 12.4.",
        "",
        "**What changed since the first table** (31.4 / 24.1 / 26.1% mean for 1 / 2 / 3 hops, one seed): an "
        "audit of train/memn2n/model.py against the authors' code (its module docstring has the details): (1) the "
        "printed PE formula is half the authors' (mean weight 1/2, not 1): task 15 34% -> 0%, task 16 55% -> "
        "~1%; (2) the authors' empty memories take part in the softmax (score 0): task 6 20% -> 8%, task 9 "
        "19% -> 8%; (3) linear start is a fixed 20 epochs as in the authors' code, not ended by the "
        "validation loss (better on tasks 2, 4, 6, 16).",
        ""]
    return "\n".join(lines)


# --- running -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_write_docs(ap)
    ap.add_argument("--tasks", default="1-20")
    ap.add_argument("--hops", default="3,2,1", help="Hop counts of the per-task columns.")
    ap.add_argument("--seeds", default="3:5,2:3,1:3", help="Seeds per hops: N for all, or HOPS:N,... (seeds 1..N).")
    ap.add_argument("--joint", type=int, default=1, help="Joint-training seeds (0: no joint column).")
    ap.add_argument("--joint-hops", type=int, default=3)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--out", type=Path, default=None,
                    help="Output path without suffix (default runs/results/babi-results, with --write-docs "
                         "docs/babi-results; --quick: runs/babi-table-quick).")
    ap.add_argument("--quick", action="store_true",
                    help="A smoke run in about a minute: tasks 1,15, 1 hop, 2 seeds, few epochs, a 2-task joint run.")
    ap.add_argument("--report-only", action="store_true", help="Rewrite the .md from the saved .json, train nothing.")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task_cfg, joint_cfg = MemN2NConfig(), replace(JOINT_CONFIG, hops=args.joint_hops)
    tasks, hops = _ints(args.tasks), _ints(args.hops)
    seeds = parse_seeds(args.seeds, hops)
    if args.quick:
        task_cfg = replace(task_cfg, epochs=6, ls_max_epochs=3)
        joint_cfg = replace(joint_cfg, dim=20, epochs=3, ls_max_epochs=2)
        tasks, hops, seeds, args.joint = [1, 15], [1], {1: 2}, 1
    out = args.out or (ROOT / "runs" / "babi-table-quick" if args.quick else results_dir(args) / "babi-results")
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out.with_suffix(".json"), out.with_suffix(".md")
    settings = {"size": "1k", "task_config": task_cfg.to_dict(), "joint_config": joint_cfg.to_dict()}
    results = load_results(json_path, settings)
    if args.report_only:
        md_path.write_text(report(results), encoding="utf-8")
        print(f"wrote {md_path}")
        return 0
    try:
        data = {t: (load_task(args.root, t, "train"), load_task(args.root, t, "test")) for t in tasks}
    except BabiError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    done = {(r["task"], r["hops"], r["seed"]) for r in results["runs"]}
    joint_done = {j["seed"] for j in results["joint"]}
    for seed in range(1, max([*seeds.values(), args.joint]) + 1):
        for h in hops:
            if seed > seeds[h]:
                continue
            for t in tasks:
                if (t, h, seed) in done:
                    continue
                _, score = train_and_score(*data[t], replace(task_cfg, hops=h), seed)
                results["runs"].append({"task": t, "hops": h, "seed": seed, **asdict(score)})
                print(f"task {t:2d} hops {h} seed {seed}: test error {100 * score.test_error:5.1f}%  train "
                      f"{100 * score.train_error:5.1f}%  ({score.seconds:.0f} s)", flush=True)
                save(results, json_path, md_path)
        if seed <= args.joint and seed not in joint_done:
            jtasks = tasks if not args.quick else [1, 15]
            _, js = train_joint(args.root, jtasks, joint_cfg, seed, progress=lambda m: print(m, flush=True))
            results["joint"].append({"seed": seed, "hops": joint_cfg.hops, **asdict(js.run),
                                     "errors": {str(t): e for t, e in js.errors.items()}})
            save(results, json_path, md_path)
    save(results, json_path, md_path)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
