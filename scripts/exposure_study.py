#!/usr/bin/env python3
"""Exposure bias, side by side (issue 6 part 4): what the decoder reads while it trains.

For the captioner (Tux Paint stamps, the Karpathy split scripts/train_default_captioner.py
builds) and the translator (Debian trans-de-en, scripts/prepare_de_en.py; a subset), with the
same data, budget and seeds, train every setting through the CLI (`edge-s2s train ...`):

    reference        always from reference   --feed scheduled --ss-schedule constant --ss-p 1
    model            always from model       --feed scheduled --ss-schedule constant --ss-p 0
    ss-inverse_sigmoid / ss-linear / ss-exponential
                     scheduled sampling, each schedule decaying p(reference) from 1 to
                     P_END at the last step of the budget
    distribution     feeding the distribution --feed distribution
    scst             + self-critical fine-tuning (`edge-s2s train scst`) of the reference run

then export each run's best checkpoint to a bundle and decode the held-out TEST split greedily
through the runtime (ONNX Runtime), scoring BLEU-4 / METEOR / CIDEr-D with pycocoevalcap
(train/caption/metrics.py) for both tasks. Writes docs/exposure-results.md and .json,
docs/img/exposure-schedules.png and docs/img/exposure-curves-<task>.png.

    python scripts/exposure_study.py --budget full                  # the lead's run (hours; estimate printed)
    python scripts/exposure_study.py --budget quick --seeds 1 --settings reference,scst

Runs live under --work/<budget>/<task>/<setting>/seed<N>; a finished run (metrics.jsonl holds
its last epoch) is reused, an unfinished one resumed, an evaluated one not decoded again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("caption", "translate")
SETTINGS = {  # key -> (row label in the table, training CLI flags; None = SCST of the reference run)
    "reference": ("always from reference", ["--feed", "scheduled", "--ss-schedule", "constant", "--ss-p", "1"]),
    "model": ("always from model", ["--feed", "scheduled", "--ss-schedule", "constant", "--ss-p", "0"]),
    "ss-inverse_sigmoid": ("scheduled sampling (inverse sigmoid)", ["--feed", "scheduled", "--ss-schedule",
                                                                    "inverse_sigmoid"]),
    "ss-linear": ("scheduled sampling (linear)", ["--feed", "scheduled", "--ss-schedule", "linear"]),
    "ss-exponential": ("scheduled sampling (exponential)", ["--feed", "scheduled", "--ss-schedule", "exponential"]),
    "distribution": ("feeding the distribution", ["--feed", "distribution"]),
    "scst": ("+ self-critical fine-tuning", None),
}
P_END = 0.1  # every decaying schedule reaches p(reference) = 0.1 at the budget's last step
METRICS = ("BLEU-4", "METEOR", "CIDEr-D")


@dataclass
class Budget:
    """Model size and training length of one task under one budget (same for every setting)."""

    epochs: int
    batch_size: int
    model_flags: list[str]
    scst_epochs: int
    scst_lr: float
    scst_samples: int
    n_train: int = 0  # translate: training pairs kept (a subset of train.tsv); caption: all
    n_valid: int = 0
    n_test: int = 0  # test items decoded (0 = the whole test split)
    sec_per_item_epoch: float = 0.0  # for the up-front estimate: measured, one core per run, 2 runs at once
    max_words: int = 0  # translate: keep pairs whose both sides have at most this many words (0 = all)


BUDGETS = {
    "quick": {
        "caption": Budget(2, 32, ["--emb-dim", "64", "--dec-hidden", "128", "--region-dim", "128", "--att-dim", "64",
                                  "--val-max", "40"], 1, 5e-5, 2, sec_per_item_epoch=0.0065),
        "translate": Budget(2, 32, ["--emb-dim", "64", "--enc-hidden", "64", "--dec-hidden", "128", "--max-length",
                                    "30"], 1, 5e-5, 2, n_train=2000, n_valid=200, n_test=300,
                            sec_per_item_epoch=0.0055),
    },
    "medium": {  # what one session on 2 cores affords: the default captioner's size for 8 epochs (its
        # BLEU-4 levels off from epoch 7), and the translator on the short pairs (<= 6 words a side)
        "caption": Budget(8, 32, ["--val-max", "100"], 2, 5e-5, 3, sec_per_item_epoch=0.025),
        "translate": Budget(8, 32, ["--emb-dim", "64", "--enc-hidden", "64", "--dec-hidden", "128", "--max-length",
                                    "30"], 2, 5e-5, 3, n_train=0, n_valid=300, n_test=500,
                            sec_per_item_epoch=0.004, max_words=6),
    },
    "full": {
        "caption": Budget(10, 32, ["--emb-dim", "128", "--dec-hidden", "256", "--region-dim", "256", "--att-dim",
                                   "128"], 2, 5e-5, 3, sec_per_item_epoch=0.013),
        "translate": Budget(6, 64, ["--emb-dim", "128", "--enc-hidden", "128", "--dec-hidden", "256", "--max-length",
                                    "30"], 2, 5e-5, 3, n_train=6000, n_valid=500, n_test=0, sec_per_item_epoch=0.015),
    },
}


def cli(*args: str) -> list[str]:
    """The `edge-s2s` command line of this interpreter (no dependence on PATH)."""
    return [sys.executable, "-c", "from edge_s2s.cli.app import main; main()", *args]


def run_cmd(cmd: list[str], log: Path, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": str(threads)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + shlex.join(cmd[3:]) + "\n")
        f.flush()
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if p.returncode != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:]
        raise RuntimeError(f"{shlex.join(cmd[3:6])} failed (exit {p.returncode}): {' '.join(tail)} -- see {log}")


# --- data ---------------------------------------------------------------------------------------


@dataclass
class TaskData:
    task: str
    train: Path  # caption: the Karpathy JSON; translate: the train subset TSV
    images: Path | None
    valid: Path | None
    n_train: int  # training examples (captions or pairs): steps per epoch = ceil(n_train / batch)
    test_refs: list[list[str]]
    test_inputs: list  # caption: CaptionItems; translate: source strings
    sizes: dict


def caption_data(args) -> TaskData:
    from edge_s2s.train.caption.evaluate import items_of_split

    karpathy = args.tuxpaint / "dataset_tuxpaint.json"
    if not karpathy.is_file():
        from edge_s2s.train.caption.tuxpaint import convert

        if not args.stamps.is_dir():
            sys.exit(f"error: {args.stamps} is missing: sudo apt-get install -y tuxpaint-stamps-default")
        convert(args.stamps, args.tuxpaint, seed=13, train_variants=4, size=256)  # as train_default_captioner.py
    doc = json.loads(karpathy.read_text(encoding="utf-8"))
    n_train = sum(len(i["sentences"]) for i in doc["images"] if i["split"] == "train")
    test = items_of_split(karpathy, args.tuxpaint, "test")
    sizes = {s: sum(1 for i in doc["images"] if i["split"] == s) for s in ("train", "val", "test")}
    return TaskData("caption", karpathy, args.tuxpaint, None, n_train, [i.captions for i in test], test,
                    {"images": sizes, "training captions": n_train})


def translate_data(args, budget: Budget, work: Path) -> TaskData:
    if not (args.de_en / "test.tsv").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts/prepare_de_en.py"), "--out", str(args.de_en)], check=True)
    work.mkdir(parents=True, exist_ok=True)

    def subset(name: str, n: int) -> list[str]:
        lines = [ln for ln in (args.de_en / name).read_text(encoding="utf-8").splitlines() if "\t" in ln]
        if budget.max_words:
            lines = [ln for ln in lines if all(len(side.split()) <= budget.max_words for side in ln.split("\t"))]
        return lines[:n] if n else lines  # the prepared split is already shuffled (seeded)

    train, valid, test = subset("train.tsv", budget.n_train), subset("valid.tsv", budget.n_valid), \
        subset("test.tsv", budget.n_test)
    for name, lines in (("train.tsv", train), ("valid.tsv", valid)):
        path = work / name
        text = "".join(ln + "\n" for ln in lines)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    from edge_s2s.runtime.text import tokenize

    limit = int(budget.model_flags[budget.model_flags.index("--max-length") + 1])
    pairs = [ln.split("\t") for ln in test]
    pairs = [p for p in pairs if len(tokenize(p[0])) <= limit]  # the bundle refuses longer sources
    test = ["\t".join(p) for p in pairs]
    return TaskData("translate", work / "train.tsv", None, work / "valid.tsv", len(train), [[p[1]] for p in pairs],
                    [p[0] for p in pairs], {"train pairs": len(train), "valid pairs": len(valid),
                                            "test pairs": len(test)})


# --- schedules ----------------------------------------------------------------------------------


def schedule_k(schedule: str, total_steps: int) -> float:
    """The schedule constant that brings p(reference) to P_END at the last step."""
    S = max(total_steps, 1)
    if schedule == "linear":
        return S / (1.0 - P_END)
    if schedule == "exponential":
        return P_END ** (1.0 / S)
    lo, hi = 1.0, float(S)  # inverse sigmoid: p(S) = k / (k + exp(S / k)) is increasing in k
    if hi / (hi + math.exp(S / hi)) < P_END:
        return hi
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid / (mid + math.exp(min(S / mid, 700))) < P_END else (lo, mid)
    return hi


def total_steps(data: TaskData, budget: Budget) -> int:
    return budget.epochs * math.ceil(data.n_train / budget.batch_size)


def schedule_points(schedule: str, k: float, steps: int, n: int = 60) -> list[tuple[float, float]]:
    from edge_s2s.train.methods.exposure import FeedConfig, reference_probability

    cfg = FeedConfig(mode="scheduled", schedule=schedule, k=k)
    return [(s, reference_probability(cfg, s)) for s in sorted({round(steps * i / n) for i in range(n + 1)})]


# --- one run ------------------------------------------------------------------------------------


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def finished(run: Path, epochs: int) -> bool:
    hist = read_metrics(run)
    return bool(hist) and hist[-1]["epoch"] >= epochs and (run / "best.pt").is_file()


def train_command(task: str, setting: str, run: Path, data: TaskData, budget: Budget, seed: int,
                  work: Path) -> list[str]:
    if SETTINGS[setting][1] is None:
        return cli("train", "scst", "--from", str(run_dir(work, task, "reference", seed)), "--out", str(run),
                   "--epochs", str(budget.scst_epochs), "--lr", str(budget.scst_lr), "--samples",
                   str(budget.scst_samples), "--no-progress")
    flags = list(SETTINGS[setting][1])
    if setting.startswith("ss-"):
        flags += ["--ss-k", repr(schedule_k(setting[3:], total_steps(data, budget)))]
    common = ["--out", str(run), "--epochs", str(budget.epochs), "--batch-size", str(budget.batch_size), "--seed",
              str(seed), "--no-progress", *budget.model_flags, *flags]
    if task == "caption":
        return cli("train", "caption", "--captions", str(data.train), "--images", str(data.images), *common)
    return cli("train", "translate", "--data", str(data.train), "--val-file", str(data.valid), *common)


def run_dir(work: Path, task: str, setting: str, seed: int) -> Path:
    return work / task / setting / f"seed{seed}"


def train_and_evaluate(task: str, setting: str, seed: int, data: TaskData, budget: Budget, work: Path,
                       threads: int) -> dict:
    """Train (or reuse / resume) one run, export it, decode the test split through the runtime."""
    run = run_dir(work, task, setting, seed)
    epochs = budget.scst_epochs if setting == "scst" else budget.epochs
    log = run.parent / f"seed{seed}.log"
    t0 = time.time()
    cmd = train_command(task, setting, run, data, budget, seed, work)
    stamp_file = run.parent / f"seed{seed}.command"
    if stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") != shlex.join(cmd[3:]):
        raise RuntimeError(f"{run} was trained with other settings (see {stamp_file}): delete it or pass another "
                           "--work")
    if not finished(run, epochs):
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.write_text(shlex.join(cmd[3:]), encoding="utf-8")
        if (run / "last.pt").is_file():
            cmd = cli("train", task if setting != "scst" else "scst", "--out", str(run), "--resume", "--epochs",
                      str(epochs), "--no-progress")
        run_cmd(cmd, log, threads)
    train_s = time.time() - t0
    scores_path = run / "test_scores.json"
    stamp = (run / "best.pt").stat().st_mtime_ns
    if scores_path.is_file():
        done = json.loads(scores_path.read_text(encoding="utf-8"))
        if done.get("best_mtime_ns") == stamp:
            return done
    bundle = run / "bundle"
    run_cmd(cli("export", str(run), "--out", str(bundle)), log, threads)
    t1 = time.time()
    scores = decode_and_score(task, bundle, data, threads)
    result = {"task": task, "setting": setting, "seed": seed, "scores": scores, "train_seconds": round(train_s, 1),
              "eval_seconds": round(time.time() - t1, 1), "best_mtime_ns": stamp, "epochs": epochs}
    scores_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def decode_and_score(task: str, bundle: Path, data: TaskData, threads: int) -> dict:
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.train.caption.metrics import caption_scores

    if task == "caption":
        from edge_s2s.runtime.tasks.captioner import Captioner

        model = Captioner.load(bundle, threads=threads)
        hyps = [r.text for r in model.caption([i.image for i in data.test_inputs], search=Greedy(), batch_size=16)]
    else:
        from edge_s2s.runtime.tasks.seq2seq import Seq2Seq

        model = Seq2Seq.load(bundle, threads=threads)
        hyps = [r.text for r in model.generate(data.test_inputs, search=Greedy(), batch_size=64)]
    s = caption_scores({str(i): r for i, r in enumerate(data.test_refs)}, {str(i): h for i, h in enumerate(hyps)})
    return {k: s[k] for k in METRICS if k in s}


# --- the page -----------------------------------------------------------------------------------


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(results: list[dict]) -> dict:
    """task -> setting -> {metric: [mean, sd, n]} over seeds."""
    out: dict = {}
    for r in results:
        out.setdefault(r["task"], {}).setdefault(r["setting"], []).append(r)
    return {task: {s: {m: [*mean_sd([x["scores"][m] for x in rs]), len(rs)] for m in METRICS
                       if all(m in x["scores"] for x in rs)} for s, rs in by.items()} for task, by in out.items()}


def curves(work: Path, task: str, settings: list[str], seeds: list[int], budget: Budget) -> dict:
    """Validation loss and score per epoch (mean over seeds) per setting; SCST continues after the reference."""
    score_key = "val_CIDEr-D" if task == "caption" else "val_bleu"
    loss, score = {}, {}
    for s in settings:
        offset = budget.epochs if s == "scst" else 0
        by_epoch: dict[int, list[tuple[float, float | None]]] = {}
        for seed in seeds:
            run = run_dir(work, task, s, seed)
            start = []
            if s == "scst" and (run / "config.json").is_file():  # the curve starts at the model it fine-tunes
                first = json.loads((run / "config.json").read_text(encoding="utf-8"))["scst"].get("start")
                start = [{**first, "epoch": 0}] if first else []
            for m in start + read_metrics(run):
                by_epoch.setdefault(m["epoch"] + offset, []).append((m.get("val_loss"), m.get(score_key)))
        label = SETTINGS[s][0]
        loss[label] = [(e, statistics.fmean(v[0] for v in vs)) for e, vs in sorted(by_epoch.items())
                       if all(v[0] is not None for v in vs)]
        score[label] = [(e, statistics.fmean(v[1] for v in vs)) for e, vs in sorted(by_epoch.items())
                        if all(v[1] is not None for v in vs)]
    return {"score_key": score_key, "val_loss": loss, "val_score": score}


def save_plots(docs: Path, schedules: dict, all_curves: dict) -> list[str]:
    """The PNGs, through runtime/pictures/line_plot.py; returns the paths written (none if the module is missing)."""
    try:
        from edge_s2s.runtime.pictures.line_plot import Panel, save_line_plot
    except ImportError:
        # PLOT CALL PENDING: runtime/pictures/line_plot.py (save_line_plot(out, panels), Panel(title, x_label, y_label,
        # series)) is not in this checkout yet; the plotted data is in exposure-results.json ("schedules",
        # "curves"), so re-running this script once it lands draws the PNGs from the finished runs.
        print("note: runtime/pictures/line_plot.py not found: PNGs skipped (their data is in the JSON)", file=sys.stderr)
        return []
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    written = []
    panels = [Panel(f"{task}: p(reference) per training step", "optimizer step", "p(feed the reference)", series)
              for task, series in schedules.items()]
    if panels:
        save_line_plot(img / "exposure-schedules.png", panels)
        written.append(str(img / "exposure-schedules.png"))
    for task, c in all_curves.items():
        label = "validation CIDEr-D" if task == "caption" else "validation BLEU"
        save_line_plot(img / f"exposure-curves-{task}.png",
                       [Panel(f"{task}: validation loss", "epoch", "loss (nats/token)", c["val_loss"]),
                        Panel(f"{task}: {label}", "epoch", label, c["val_score"])])
        written.append(str(img / f"exposure-curves-{task}.png"))
    return written


def markdown(doc: dict) -> str:
    cmd = doc["command"]
    out = ["# Exposure bias, side by side (issue 6)", "",
           "What the decoder reads while it trains, for the captioner and the translator, with the same data, "
           f"budget and seeds ({', '.join(map(str, doc['seeds']))}) per task. Every number is on the held-out TEST "
           "split, decoded greedily through the runtime (exported bundle, ONNX Runtime), scored by pycocoevalcap: "
           "BLEU-4 and METEOR x100, CIDEr-D x100; mean ± sd over seeds.", "",
           f"Budget: **{doc['budget']}**" + (" (a plumbing check, not the study: tiny models, 1-2 epochs)"
                                             if doc["budget"] == "quick" else "") + ".", "",
           "Regenerate: `" + cmd + "`", "",
           "## Hypothesis", "",
           "The published ordering (Bengio et al. 2015, MSCOCO captions, BLEU-4: always from reference 28.8, always "
           "from model 11.2, scheduled sampling 30.6; the notes' table) and Rennie et al. 2017 (self-critical "
           "fine-tuning raises CIDEr-D). The notes' reasoning: a model trained only on reference prefixes never sees "
           "its own mistakes (\"one wrong step, every step wrong\"); always feeding its own outputs makes early "
           "training chase a moving target.", ""]
    for task, t in doc["tasks"].items():
        b = t["budget"]
        out += [f"## {task}", "", f"Data: {json.dumps(t['data'])}. Budget: {b['epochs']} epochs, "
                f"batch {b['batch_size']}, "
                f"{t['total_steps']} optimizer steps; model flags `{' '.join(b['model_flags'])}`; scheduled sampling "
                f"decays p(reference) to {P_END} at the last step (k: "
                + ", ".join(f"{s} {k:.4g}" for s, k in t["k"].items()) + f"); SCST: {b['scst_epochs']} epochs, lr "
                f"{b['scst_lr']}, {b['scst_samples']} samples per item, from the reference run.", "",
                "| setting | BLEU-4 | METEOR | CIDEr-D | seeds |", "|---|---|---|---|---|"]
        for s in t["settings"]:
            row = t["summary"].get(s)
            if not row:
                continue
            cells = [f"{100 * row[m][0]:.1f} ± {100 * row[m][1]:.1f}" if m in row else "–" for m in METRICS]
            n = next(iter(row.values()))[2] if row else 0
            out.append(f"| {SETTINGS[s][0]} | " + " | ".join(cells) + f" | {n} |")
        out += ["", "Seconds per run (train, mean): " + ", ".join(f"{s} {v:.0f}" for s, v in t["train_seconds"].items())
                + ".", ""]
        if t.get("plot"):
            out += [f"![validation curves]({Path(t['plot']).relative_to(doc['docs'])})", ""]
    if doc.get("schedules_plot"):
        out += ["![schedules](img/exposure-schedules.png)", ""]
    out += ["## What our data shows", "", doc.get("finding") or "_(written after the full run: compare the table "
            "with the hypothesis above, and explain any disagreement.)_", ""]
    return "\n".join(out)


def kept_finding(page: Path) -> str | None:
    """The hand-written "What our data shows" text of an existing page (a rerun keeps it; the tables are
    regenerated, so re-read it against them)."""
    if not page.is_file():
        return None
    text = page.read_text(encoding="utf-8")
    head = "## What our data shows\n"
    if head not in text:
        return None
    body = text.split(head, 1)[1].split("\n## ", 1)[0].strip()
    return None if not body or body.startswith("_(written after") else body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="full")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--jobs", type=int, default=1, help="runs trained at the same time (each with --threads)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per run (OMP_NUM_THREADS)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "exposure")
    ap.add_argument("--docs", type=Path, default=None,
                    help="folder of the page and its img/ (default runs/results; docs with --write-docs)")
    add_write_docs(ap)
    ap.add_argument("--tuxpaint", type=Path, default=ROOT / "data" / "tuxpaint")
    ap.add_argument("--stamps", type=Path, default=Path("/usr/share/tuxpaint/stamps"))
    ap.add_argument("--de-en", type=Path, default=ROOT / "data" / "de-en")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the estimate, train nothing")
    args = ap.parse_args(argv)
    args.docs = args.docs or results_dir(args)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    tasks = [t for t in args.tasks.split(",") if t]
    settings = [s for s in args.settings.split(",") if s]
    bad = [t for t in tasks if t not in TASKS] + [s for s in settings if s not in SETTINGS]
    if bad or not seeds:
        print(f"error: unknown task/setting {bad} (tasks: {', '.join(TASKS)}; settings: {', '.join(SETTINGS)})",
              file=sys.stderr)
        return 1
    if "scst" in settings and "reference" not in settings:
        settings.insert(0, "reference")  # SCST fine-tunes the reference runs
    work = args.work / args.budget
    budgets = BUDGETS[args.budget]
    data = {t: caption_data(args) if t == "caption" else translate_data(args, budgets[t], work / "data")
            for t in tasks}

    plan = [(t, s, seed) for t in tasks for s in settings for seed in seeds]
    est = 0.0
    for t, s, seed in plan:
        b = budgets[t]
        epochs = b.scst_epochs * 1.5 * (1 + b.scst_samples) if s == "scst" else b.epochs  # measured: rollouts
        if not finished(run_dir(work, t, s, seed), b.scst_epochs if s == "scst" else b.epochs):
            est += epochs * data[t].n_train * b.sec_per_item_epoch
    print(f"{len(plan)} runs ({', '.join(tasks)} x {len(settings)} settings x {len(seeds)} seeds), budget "
          f"{args.budget}; estimated training still to do: {est / 3600:.1f} h of one core, about "
          f"{est / 3600 / max(1, args.jobs):.1f} h with --jobs {args.jobs}; plus export and test decoding "
          "(~0.5-1 min a run)", flush=True)
    if args.dry_run:
        for t, s, seed in plan:
            print(shlex.join(train_command(t, s, run_dir(work, t, s, seed), data[t], budgets[t], seed, work)[3:]))
        return 0

    results: list[dict] = []

    def one(job):
        t, s, seed = job
        r = train_and_evaluate(t, s, seed, data[t], budgets[t], work, args.threads)
        print(f"[{t} / {s} / seed {seed}] train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s: "
              + "  ".join(f"{k} {100 * v:.1f}" for k, v in r["scores"].items()), flush=True)
        return r

    first = [j for j in plan if j[1] != "scst"]
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # SCST needs the reference runs first
            results += list(pool.map(one, first))
            results += list(pool.map(one, [j for j in plan if j[1] == "scst"]))
    except RuntimeError as e:  # a run failed: its log has the details; finished runs are kept and reused
        print(f"error: {e}", file=sys.stderr)
        return 1

    summary = summarise(results)
    argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    doc = {"command": f"python scripts/exposure_study.py {argv_text}".strip(), "budget": args.budget, "seeds": seeds,
           "docs": str(args.docs), "tasks": {}, "runs": results}
    schedules, all_curves = {}, {}
    for t in tasks:
        steps = total_steps(data[t], budgets[t])
        ks = {s[3:]: schedule_k(s[3:], steps) for s in SETTINGS if s.startswith("ss-")}
        schedules[t] = {name: schedule_points(name, k, steps) for name, k in ks.items()}  # k: in the JSON / page
        all_curves[t] = curves(work, t, settings, seeds, budgets[t])
        train_s = {s: statistics.fmean(r["train_seconds"] for r in results if r["task"] == t and r["setting"] == s)
                   for s in settings}
        doc["tasks"][t] = {"data": data[t].sizes, "budget": vars(budgets[t]), "total_steps": steps, "k": ks,
                           "settings": settings, "summary": summary.get(t, {}), "train_seconds": train_s,
                           "curves": all_curves[t], "schedules": schedules[t]}
    written = save_plots(args.docs, schedules, all_curves)
    for t in tasks:
        p = args.docs / "img" / f"exposure-curves-{t}.png"
        doc["tasks"][t]["plot"] = str(p) if str(p) in written else None
    doc["schedules_plot"] = any(w.endswith("exposure-schedules.png") for w in written)
    doc["finding"] = kept_finding(args.docs / "exposure-results.md")
    args.docs.mkdir(parents=True, exist_ok=True)
    (args.docs / "exposure-results.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (args.docs / "exposure-results.md").write_text(markdown(doc), encoding="utf-8")
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
