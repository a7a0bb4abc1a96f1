#!/usr/bin/env python3
"""German->English translator speed and int8 cost, side by side in one run: the edge-s2s runtime (fp32 and
int8 bundles) vs PyTorch eager, same weights.

From a clean checkout, with no arguments, it builds what it needs into a work folder (default
runs/bench-translate/, reused by later runs, so a rerun only measures):

  data      sentence pairs from Debian's trans-de-en (scripts/prepare_de_en.py, which apt-get installs
            the package): ~18k train, 500 valid, 1,000 held-out test pairs
  model     the attention translator (bidirectional LSTM encoder, LSTM decoder, general attention;
            emb 128, encoder 2x128, decoder H=256, vocabulary <= 8,000 words) trained for a tiny budget
            (--train-steps): speed depends on the sizes, not on how well it is trained, but the output
            lengths do, so they are printed
  bundles   `export_bundle` fp32 (parity with PyTorch proved) and int8 (int8 linear layers and embeddings,
            activations scaled per row, encoder LSTMs float32: export/int8_rows.py)

Then, on held-out TEST sentences only (medians of --repeats; tokenisation and detokenisation inside
every timing):

  1. ms a sentence, greedy and beam 5, batch 1 and 32: runtime fp32 / int8 (Seq2Seq.generate: ONNX
     Runtime + the compiled loop) and torch (the PyTorch encoder and step driving the runtime's reference
     loop, train/core/torch_step.py, the bundles' own checkpoint); whether the outputs are the same
  2. threads 1 / 2 / library default (0), each setting in its own process, runtime only
  3. BLEU (sacrebleu) of fp32 and int8 on the test split, greedy and beam 5: what int8 costs

    python bench/bench_translate.py            # build (a few minutes the first time) and measure
    python bench/bench_translate.py --quick    # smoke test: tiny model and few sentences

Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing_common import (
    ROOT,
    bundle_is_from,
    bundle_mb,
    fail,
    guarded,
    header,
    markdown,
    median_seconds,
    ms,
    ratio,
    run_worker,
    say,
    torch_threads,
    trained_steps,
    worker_main,
)

VARIANTS = ("fp32", "int8")
SEARCHES = ("greedy", "beam 5")
THREADS = {"1 thread": 1, "2 threads": 2, "default (0)": 0}


@dataclass(frozen=True)
class Plan:
    """How much to build and measure (the default run, or --quick)."""

    name: str
    emb: int
    enc: int  # encoder units per direction (memory width 2x)
    hidden: int  # decoder H
    vocab: int  # most words kept
    steps: int  # optimizer steps of the tiny training budget
    batch: int  # training batch size
    n: int  # test sentences timed (tables 1 and 2)
    batches: tuple[int, ...]  # decode batch sizes timed
    bleu_n: int  # test sentences scored (0 = all)
    repeats: int


DEFAULT = Plan("default", emb=128, enc=128, hidden=256, vocab=8000, steps=300, batch=32, n=96, batches=(1, 32),
               bleu_n=0, repeats=3)
QUICK = Plan("quick", emb=32, enc=32, hidden=64, vocab=2000, steps=2, batch=16, n=16, batches=(1, 8), bleu_n=64,
             repeats=1)


@dataclass
class Setup:
    bundles: dict[str, Path]
    run: Path
    test: list[tuple[str, str]]  # (German, English) held-out pairs
    notes: list[str] = field(default_factory=list)


def search_of(name: str):
    from edge_s2s.runtime.search import Beam, Greedy

    return Greedy() if name == "greedy" else Beam(5)


# ---------------------------------------------------------------- data, training, export


def prepare_data(folder: Path) -> None:
    """scripts/prepare_de_en.py into `folder` unless its test.tsv is there."""
    if (folder / "test.tsv").is_file() and (folder / "train.tsv").is_file():
        return
    say(f"preparing German->English pairs (scripts/prepare_de_en.py; apt-get installs trans-de-en) -> {folder}")
    cmd = [sys.executable, str(ROOT / "scripts" / "prepare_de_en.py"), "--out", str(folder)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        last = ((proc.stderr + proc.stdout).strip().splitlines() or ["no output"])[-1]
        fail(f"scripts/prepare_de_en.py failed: {last} (it needs root or sudo for apt-get install trans-de-en)")
    say("  " + (proc.stdout.strip().splitlines() or [""])[-1])


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            pairs.append((parts[0], parts[1]))
    if not pairs:
        fail(f"{path} holds no sentence pairs: delete its folder and run again to rebuild it")
    return pairs


def train(run: Path, data: Path, plan: Plan, steps: int) -> Path:
    """The translator trained to `steps` optimizer steps (resumed when fewer are done); its last.pt."""
    from edge_s2s.train import ModelConfig, TrainConfig, train_translator

    last = run / "last.pt"
    done = trained_steps(last)
    if done >= steps:
        return last
    n_pairs = sum(1 for _ in (data / "train.tsv").open(encoding="utf-8"))
    cfg = TrainConfig(data=str(data / "train.tsv"), val_file=str(data / "valid.tsv"), out_dir=str(run),
                      model=ModelConfig(emb_dim=plan.emb, enc_hidden=plan.enc, dec_hidden=plan.hidden,
                                        attention="general", dropout=0.1),
                      epochs=math.ceil(steps / max(1, n_pairs // plan.batch)) + 1, max_steps=steps,
                      batch_size=plan.batch, lr=2e-3, vocab_min_count=2, vocab_max_size=plan.vocab,
                      val_bleu_max=0, seed=1)
    say(f"training the translator (H={plan.hidden}) for {steps} steps (from {done}; 1 torch thread) -> {run}")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), torch_threads(1):
        train_translator(cfg, resume=last.is_file(), progress=False)
    say(f"  trained in {time.perf_counter() - t0:.0f} s")
    return last


def export(run: Path, checkpoint: Path, out: Path) -> dict[str, Path]:
    """fp32 and int8 bundles of the run's last.pt under `out` (re-exported only when stale)."""
    import warnings

    from edge_s2s.export import export_bundle

    bundles = {v: out / v for v in VARIANTS}
    for v, b in bundles.items():
        if bundle_is_from(b, checkpoint):
            continue
        say(f"exporting {v}{' (parity with PyTorch proved)' if v == 'fp32' else ''} -> {b}")
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            export_bundle(run, b, checkpoint=checkpoint, int8=v == "int8")
    return bundles


def prepare(args: argparse.Namespace, plan: Plan) -> Setup:
    data = args.work / "data"
    prepare_data(data)
    work = args.work / plan.name
    checkpoint = train(work / "run", data, plan, args.train_steps or plan.steps)
    bundles = export(work / "run", checkpoint, work / "bundles")
    from edge_s2s.runtime.text import Vocab

    vocab = len(Vocab.load(work / "run" / "tokens.txt"))
    notes = [f"data: {data} (Debian trans-de-en; timing and BLEU on test.tsv only)",
             (f"model: emb {plan.emb}, encoder 2x{plan.enc}, decoder H={plan.hidden}, general attention, "
             f"V={vocab}, {trained_steps(checkpoint)} steps of batch {plan.batch}")]
    notes += [f"{v}: {b} ({bundle_mb(b):.2f} MB)" for v, b in bundles.items()]
    return Setup(bundles, work / "run", read_pairs(data / "test.tsv"), notes)


# ---------------------------------------------------------------- engines


Translate = Callable[[list[str], Any, int], list[str]]  # (sources, search, batch size) -> translations


def runtime_engine(bundle: Path, threads: int) -> Translate:
    from edge_s2s.runtime import Seq2Seq

    rt = Seq2Seq.load(bundle, threads=threads)

    def translate(sources: list[str], search, batch: int) -> list[str]:
        out: list[str] = []
        for s in range(0, len(sources), batch):
            out += [r.text for r in rt.generate(sources[s: s + batch], search=search, batch_size=batch)]
        return out

    return translate


def torch_engine(run: Path, bundle: Path) -> Translate:
    """The checkpoint the bundle came from, eager, driving the runtime's reference loop (same tokeniser)."""
    from edge_s2s.export.translate import load_trained
    from edge_s2s.runtime import Seq2Seq
    from edge_s2s.runtime.reference_loop import decode
    from edge_s2s.train.core.torch_step import pad_ids, torch_encode_fn, torch_step_fn

    rt = Seq2Seq.load(bundle)  # its manifest and tokeniser only
    model, _, _, _, _ = load_trained(run, run / rt.manifest.metrics.get("training", {}).get("checkpoint", "best.pt"))
    encode, step = torch_encode_fn(model), torch_step_fn(model)

    def translate(sources: list[str], search, batch: int) -> list[str]:
        out: list[str] = []
        ids = rt.encode_sources(sources)
        for s in range(0, len(ids), batch):
            src, lengths = pad_ids(ids[s: s + batch], rt.manifest.tokens.pad_id)
            for hyps in decode(rt.manifest, encode(src, lengths), step, search, max_length=rt.manifest.max_length):
                out.append(rt.text.decode(hyps[0].ids) if hyps else "")
        return out

    return translate


def interleaved(fns: dict[str, Translate], sources: list[str], search, batch: int, repeats: int
                ) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Median seconds of one pass per engine (engines interleaved each repeat, after a warm-up), and outputs."""
    for fn in fns.values():
        fn(sources[:batch], search, batch)
    times: dict[str, list[float]] = {k: [] for k in fns}
    texts: dict[str, list[str]] = {}
    for _ in range(max(1, repeats)):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            texts[k] = fn(sources, search, batch)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, texts


# ---------------------------------------------------------------- table 1: engines


def table_engines(setup: Setup, sources: list[str], batches: tuple[int, ...], threads: int, repeats: int) -> str:
    import torch

    if threads:
        torch.set_num_threads(threads)
    fns = {f"runtime {v}": runtime_engine(b, threads) for v, b in setup.bundles.items()}
    fns["torch eager"] = torch_engine(setup.run, setup.bundles["fp32"])
    rows, lengths = [], []
    for sname in SEARCHES:
        for B in batches:
            say(f"table 1: {sname}, batch {B}, {len(sources)} sentences")
            t, texts = interleaved(fns, sources, search_of(sname), B, repeats)
            fp32, int8, pt = t["runtime fp32"], t["runtime int8"], t["torch eager"]
            rows.append([sname, B, *(ms(x / len(sources)) for x in (fp32, int8, pt)), ratio(int8, fp32),
                         ratio(pt, fp32), same(texts["runtime fp32"], texts["torch eager"]),
                         same(texts["runtime int8"], texts["runtime fp32"])])
            lengths.append((sname, B, statistics.mean(len(x.split()) for x in texts["runtime fp32"])))
    heads = ["search", "batch", "runtime fp32 ms", "runtime int8 ms", "torch eager ms", "int8 / fp32",
             "torch / fp32", "fp32 same as torch", "int8 same as fp32"]
    mean_ref = statistics.mean(len(e.split()) for _, e in setup.test[: len(sources)])
    return "\n".join([(f"## 1. ms a sentence, {len(sources)} held-out test sentences, {threads or 'default'} "
                      f"thread(s) (ORT and torch); median of {repeats}"), "",
                      markdown(heads, rows), "",
                      "mean output length (runtime fp32): " + ", ".join(f"{s} b{B} {m:.1f}" for s, B, m in lengths)
                      + f" words; the references have {mean_ref:.1f} (a briefly trained model: decode time grows "
                      "with output length)"])


def same(a: list[str], b: list[str]) -> str:
    return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"


# ---------------------------------------------------------------- table 2: threads


def threads_job(job: dict[str, Any]) -> dict[str, Any]:
    """Seconds a sentence per bundle, search and batch size, every session with `threads`."""
    from edge_s2s.runtime.session import thread_policy

    sources, out = job["sources"], {}
    for v, b in job["bundles"].items():
        fn = runtime_engine(Path(b), job["threads"])
        for sname in SEARCHES:
            for B in job["batches"]:
                search = search_of(sname)
                fn(sources[:B], search, B)
                t = median_seconds(lambda fn=fn, search=search, B=B: fn(sources, search, B), job["repeats"])
                out[f"{v}|{sname}|{B}"] = t / len(sources)
    return {"policy": thread_policy(job["threads"]), "seconds": out}


def table_threads(setup: Setup, sources: list[str], batches: tuple[int, ...], repeats: int) -> str:
    results = {}
    for label, threads in THREADS.items():
        say(f"table 2: {label}, {len(sources)} sentences (own process)")
        job = {"kind": "threads", "threads": threads, "sources": sources, "batches": list(batches),
               "repeats": repeats, "bundles": {v: str(b) for v, b in setup.bundles.items()}}
        results[label] = run_worker(__file__, job)
    rows = []
    for v in VARIANTS:
        for sname in SEARCHES:
            for B in batches:
                vals = [results[label]["seconds"][f"{v}|{sname}|{B}"] for label in THREADS]
                rows.append([f"runtime {v}, {sname}, batch {B}", *(ms(x) for x in vals), ratio(vals[0], vals[-1])])
    policy = results["default (0)"]["policy"]
    return "\n".join([(f"## 2. Threads: ms a sentence, {len(sources)} test sentences; each setting in its own "
                      f"process; median of {repeats}"),
                      (f"default (0) = {policy['intra_op_threads']} intra-op threads, spinning "
                      f"{'on' if policy['spinning'] else 'off'} (runtime/session.py thread_policy); the last "
                      "column > 1 means the default is faster than 1 thread"), "",
                      markdown(["bundle, search, batch", *THREADS, "1 thread / default"], rows)])


# ---------------------------------------------------------------- table 3: BLEU of fp32 vs int8


def chrf(hyps: list[str], refs: list[str], text) -> float:
    """sacrebleu chrF with the references normalised as `decode.bleu` does (the bundle's tokenizer)."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(hyps, [[text.reference(r) for r in refs]]).score)


def table_bleu(setup: Setup, n: int, threads: int) -> str:
    from edge_s2s.runtime import Seq2Seq
    from edge_s2s.train.translate.decode import bleu

    text = Seq2Seq.load(setup.bundles["fp32"]).text

    pairs = setup.test[:n] if n else setup.test
    sources, refs = [d for d, _ in pairs], [e for _, e in pairs]
    fns = {v: runtime_engine(b, threads) for v, b in setup.bundles.items()}
    rows, samples = [], {}
    for sname in SEARCHES:
        say(f"table 3: BLEU, {sname}, {len(sources)} sentences")
        out = {}
        for v, fn in fns.items():
            t0 = time.perf_counter()
            out[v] = fn(sources, search_of(sname), 32)
            secs = time.perf_counter() - t0
            rows.append([sname, v, f"{bleu(out[v], refs, text):.2f}", f"{chrf(out[v], refs, text):.2f}", same(out[v], out["fp32"]),
                         f"{statistics.mean(len(x.split()) for x in out[v]):.1f}", f"{secs:.2f}"])
        samples[sname] = out
    lines = [(f"## 3. BLEU and chrF (sacrebleu, lowercased as trained), {len(sources)} held-out test pairs, batch 32; "
             "chrF moves where BLEU of a weak model is too small to show a difference"), "",
             markdown(["search", "bundle", "BLEU", "chrF", "same as fp32", "mean words", "decode s"], rows), "",
             "examples (greedy):"]
    for i in range(min(2, len(sources))):
        lines.append(f"- {sources[i]} -> fp32: {clip(samples['greedy']['fp32'][i])!r} | int8: "
                     f"{clip(samples['greedy']['int8'][i])!r} | reference: {refs[i]!r}")
    return "\n".join(lines)


def clip(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


# ---------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-translate",
                    help="work folder: data, run and bundles are built here once and reused (default %(default)s)")
    ap.add_argument("--n", type=int, help="test sentences timed (default 96; --quick 16)")
    ap.add_argument("--bleu-n", type=int, help="test sentences scored for BLEU (default all 1,000; --quick 64)")
    ap.add_argument("--repeats", type=int, help="passes per measurement, median kept (default 3; --quick 1)")
    ap.add_argument("--threads", type=int, default=1, help="ORT and torch threads in tables 1 and 3 (0 = default)")
    ap.add_argument("--train-steps", type=int, help="training budget in optimizer steps (default 300; --quick 2)")
    ap.add_argument("--tables", default="1,2,3", help="which tables to print (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny model, 2 training steps, few sentences")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    handled = worker_main(argv or [], {"threads": threads_job})
    if handled is not None:
        return handled
    t_start = time.perf_counter()
    args = parse(argv)
    plan = QUICK if args.quick else DEFAULT
    for name in ("n", "repeats", "train_steps"):
        v = getattr(args, name)
        if v is not None and v < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    if args.bleu_n is not None and args.bleu_n < 0:
        fail(f"--bleu-n must be 0 (all) or more, got {args.bleu_n}")
    setup = prepare(args, plan)
    t_built = time.perf_counter()
    repeats = args.repeats or plan.repeats
    sources = [d for d, _ in setup.test[: args.n or plan.n]]
    tables = {t.strip() for t in args.tables.split(",")}
    print(header("edge-s2s translator benchmark (bench/bench_translate.py)", f"run {setup.run}; plan {plan.name}"))
    print("\n".join("- " + n for n in setup.notes))
    if "1" in tables:
        print("\n" + table_engines(setup, sources, plan.batches, args.threads, repeats), flush=True)
    if "2" in tables:
        print("\n" + table_threads(setup, sources, plan.batches, repeats), flush=True)
    if "3" in tables:
        n = plan.bleu_n if args.bleu_n is None else args.bleu_n
        print("\n" + table_bleu(setup, n, args.threads), flush=True)
    end = time.perf_counter()
    print(f"\nwall time {end - t_start:.0f} s (building {t_built - t_start:.0f} s, measuring {end - t_built:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
