#!/usr/bin/env python3
"""Speech recognition speed, side by side in one run: the edge-s2s runtime (fp32, int8 linear, int8 all)
vs the pure-Python loop vs PyTorch eager, all with the same weights.

From a clean checkout, with no arguments, it builds what it needs into a work folder (default
runs/bench-speech/, reused by later runs, so a rerun only measures):

  data      spoken digit strings from the Free Spoken Digit Dataset (train/speech/data.py build_fsdd;
            the test strings are spoken by a speaker never heard in training), or, when FSDD is not
            there, espeak-ng strings (train/speech/synth.py; apt-get installs espeak-ng; the test
            strings use an accent the training strings do not)
  model     the SHIPPED transcriber's architecture and feature recipe (models/transcriber/manifest.json),
            trained for a tiny budget (--train-steps): the speed of this architecture does not depend
            on how well it is trained, but its outputs' lengths do, so the output length is printed
  bundles   fp32 export (parity with PyTorch proved), then the same graphs with int8 weights:
            "linear" (MatMul/Gemm/Gather) and "all" (the listener's LSTMs too; what ships)

Then three tables (medians of --repeats; recordings read from disk, resampled and turned into log-mel
features inside every timing, as an app does):

  1. one recording at a time, greedy and beam 5, real-time factor (processing s / audio s) and ms a
     recording: runtime fp32 / int8 linear / int8 all (Transcriber.transcribe: ONNX Runtime + the
     compiled loop), py loop (the fp32 graphs driven by runtime/reference_loop.py) and torch (the
     PyTorch encoder + the same reference loop driven by the PyTorch step, the bundle's own checkpoint);
     each engine's time over runtime fp32's, whether its transcript equals PyTorch's, and its CER
  2. threads 1 / 2 / library default (0), each setting in its own process, runtime only
  3. batch sizes 1..64: one transcribe(list, batch_size=B) call over --batch-n recordings, recordings/s
     and memory (resident after loading, and the peak), each in a fresh process

    python bench/bench_speech.py                     # build (a few minutes the first time) and measure
    python bench/bench_speech.py --quick             # smoke test: tiny everything
    python bench/bench_speech.py --run runs/speech-fsdd --bundle bundles/speech-fsdd --data data/fsdd-digits/test

With --run (a `edge-s2s train speech` run) the bundles are exported from it (or --bundle is used for its
own precision) and --data defaults to the run's test split. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing_common import (
    ROOT,
    bundle_is_from,
    bundle_mb,
    bundle_precision,
    fail,
    guarded,
    header,
    markdown,
    median_seconds,
    ms,
    peak_rss_mb,
    ratio,
    rss_mb,
    run_worker,
    say,
    torch_threads,
    trained_steps,
    worker_main,
)

VARIANTS = ("fp32", "int8 linear", "int8 all")
INT8_PARTS = {"int8 linear": "linear", "int8 all": "all"}
THREADS = {"1 thread": 1, "2 threads": 2, "default (0)": 0}
SEARCHES = ("greedy", "beam 5")
SHIPPED = "shipped model (int8 all, fully trained)"
MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Plan:
    """How much to build and measure (the default run, or --quick)."""

    name: str
    n_train: int  # training strings built
    n_val: int  # validation strings (export proves parity on them)
    n_test: int  # held-out strings built (the timed recordings come from them)
    steps: int  # optimizer steps of the tiny training budget
    batch: int  # training batch size
    n: int  # recordings in table 1
    n_threads: int  # recordings per thread setting (table 2)
    batch_sizes: tuple[int, ...]  # table 3
    batch_n: int  # recordings per call in table 3
    repeats: int


DEFAULT = Plan("default", n_train=400, n_val=20, n_test=100, steps=60, batch=16, n=64, n_threads=20,
               batch_sizes=(1, 2, 4, 8, 16, 32, 64), batch_n=64, repeats=3)
QUICK = Plan("quick", n_train=48, n_val=6, n_test=12, steps=2, batch=8, n=8, n_threads=4, batch_sizes=(1, 4),
             batch_n=8, repeats=1)


@dataclass
class Setup:
    """What the tables measure: the bundles, the PyTorch side and the recordings."""

    bundles: dict[str, Path]
    run: Path
    checkpoint: Path
    data: Path
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the search configs


def search_of(name: str):
    from edge_s2s.runtime.search import Beam, Greedy

    return Greedy() if name == "greedy" else Beam(5)


# ---------------------------------------------------------------- data


def _complete(root: Path) -> bool:
    return all((root / s / MANIFEST).is_file() for s in ("train", "val", "test"))


def build_data(root: Path, plan: Plan) -> str:
    """Digit-string train/val/test sets under `root` (built once); returns what they are."""
    stamp = root / "SOURCE.txt"
    if _complete(root) and stamp.is_file():
        return stamp.read_text(encoding="utf-8").strip()
    from edge_s2s.train.core.data_roots import shared_data
    from edge_s2s.train.speech.data import SpeechDataError, build_fsdd, fsdd_index

    try:
        fsdd_index(shared_data("fsdd"))
    except SpeechDataError:
        say(f"FSDD not found at {shared_data('fsdd')} (set EDGE_S2S_DATA): synthesising digit strings with espeak-ng")
        what = build_synth(root, plan)
    else:
        say(f"building {plan.n_train}/{plan.n_val}/{plan.n_test} FSDD digit strings -> {root}")
        build_fsdd(shared_data("fsdd"), root, plan.n_train, plan.n_val, plan.n_test, seed=13)
        what = f"FSDD digit strings ({plan.n_train} train, test speaker theo held out)"
    stamp.write_text(what + "\n", encoding="utf-8")
    return what


def build_synth(root: Path, plan: Plan) -> str:
    """espeak-ng digit strings: training accents for train/val, the en-us voices (never trained on) for test."""
    import numpy as np

    from edge_s2s.train.speech.synth import ensure_installed, espeak_voices, synth_digit_set

    ensure_installed(("espeak-ng",))
    voices = espeak_voices()
    train_v = [v for v in voices if not v.name.startswith("en-us")]
    test_v = [v for v in voices if v.name.startswith("en-us")]
    rng = np.random.default_rng(13)
    synth_digit_set(root / "test", plan.n_test, test_v, rng, prefix="test-")
    synth_digit_set(root / "val", plan.n_val, train_v, rng, prefix="val-")
    synth_digit_set(root / "train", plan.n_train, train_v, rng, prefix="train-")
    return f"espeak-ng digit strings ({plan.n_train} train; test voices en-us, never trained on)"


def recordings(data: Path, n: int) -> tuple[list[str], list[str] | None, float]:
    """The first `n` recordings of `data` (manifest.jsonl or audio files), their transcripts (or None), seconds."""
    import soundfile as sf

    if (data / MANIFEST).is_file():
        from edge_s2s.train.speech.data import read_manifest

        rows = read_manifest(data / MANIFEST)[:n]
        paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
    else:
        from edge_s2s.cli.transcribe_cmd import expand_audio_paths

        paths, refs = [str(p) for p in expand_audio_paths([data])][:n], None
    if not paths:
        fail(f"{data} has no recordings: pass a folder with manifest.jsonl or audio files (--data)")
    return paths, refs, float(sum(sf.info(p).duration for p in paths))


# ---------------------------------------------------------------- training and export


def shipped_recipe() -> tuple[Any, Any, int]:
    """(SpeechModelConfig, FeatureConfig, max_length) of the transcriber that ships in the package."""
    from edge_s2s.runtime.bundle import shipped_bundle
    from edge_s2s.runtime.media.features import FeatureConfig
    from edge_s2s.train.speech.config import SpeechModelConfig

    doc = json.loads((shipped_bundle("transcriber") / "manifest.json").read_text(encoding="utf-8"))
    names = {f.name for f in fields(SpeechModelConfig)}
    model = SpeechModelConfig(**{k: v for k, v in doc["model"].items() if k in names})
    pre = {k: v for k, v in doc["preprocessing"].items() if k != "max_seconds"}
    return model, FeatureConfig.from_dict(pre), int(doc["max_length"])


def train(run: Path, data: Path, plan: Plan, steps: int) -> Path:
    """The shipped architecture trained to `steps` optimizer steps (resumed when fewer are done); its last.pt."""
    from edge_s2s.train.speech.loop import SpeechTrainConfig, train_speech

    last = run / "last.pt"
    done = trained_steps(last)
    if done >= steps:
        return last
    model, features, max_length = shipped_recipe()
    epochs = math.ceil(steps / math.ceil(plan.n_train / plan.batch))
    cfg = SpeechTrainConfig(data_dir=str(data), out_dir=str(run), model=model, features=features.to_dict(),
                            n_train=plan.n_train, n_val=plan.n_val, n_test=plan.n_test, epochs=epochs,
                            max_steps=steps, batch_size=plan.batch, lr=2e-3, val_max=0, seed=1,
                            max_length=max_length)
    say(f"training the shipped transcriber's architecture for {steps} steps (from {done}; 1 torch thread) -> {run}")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), torch_threads(1):
        train_speech(cfg, resume=last.is_file(), progress=False)
    say(f"  trained in {time.perf_counter() - t0:.0f} s")
    return last


def same_source(a: Path, b: Path) -> bool:
    """Whether two bundles were exported from the same checkpoint (an int8 copy of an fp32 bundle)."""
    def src(p: Path) -> str | None:
        try:
            return json.loads((p / "manifest.json").read_text(encoding="utf-8")).get("source_checkpoint_sha256")
        except (OSError, ValueError):
            return None
    return src(a) is not None and src(a) == src(b)


def export_variants(run: Path, checkpoint: Path, out: Path, given: Path | None) -> dict[str, Path]:
    """fp32, int8 linear, int8 all bundles under `out` (rebuilt only when stale); `given` replaces its own variant."""
    from edge_s2s.export.bundle_writer import INT8_OPS, quantize_bundle
    from edge_s2s.export.speech import export_speech_bundle

    given_as = bundle_precision(given) if given is not None else None
    bundles = {v: out / v.replace(" ", "-") for v in VARIANTS}
    if given_as is not None:
        bundles[given_as] = given
    fp32 = bundles["fp32"]
    if given_as != "fp32" and not bundle_is_from(fp32, checkpoint):
        say(f"exporting fp32 (parity with PyTorch proved) -> {fp32}")
        with quiet_export():
            export_speech_bundle(run, fp32, checkpoint=checkpoint, golden=0)
    for v, part in INT8_PARTS.items():
        if v != given_as and not same_source(bundles[v], fp32):
            say(f"quantising ({part}) -> {bundles[v]}")
            quantize_bundle(fp32, bundles[v], INT8_OPS[part])
    return bundles


@contextlib.contextmanager
def quiet_export():
    """The exporter's deprecation warnings and prints stay off stdout."""
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        yield


def prepare(args: argparse.Namespace, plan: Plan) -> Setup:
    """Build (or find) the data, the run and the bundles the tables measure."""
    work = args.work / plan.name
    notes = []
    if args.run is None:
        what = build_data(work / "data", plan)
        notes.append(f"data: {what}")
        checkpoint = train(work / "run", work / "data", plan, args.train_steps or plan.steps)
        run, out = work / "run", work / "bundles"
        data = args.data or work / "data" / "test"
    else:
        run, checkpoint = args.run, resolve_run_checkpoint(args.run, args.bundle)
        out = work / ("bundles-" + hashlib.sha1(str(run.resolve()).encode()).hexdigest()[:8])
        data = args.data or run_test_split(run)
    bundles = export_variants(run, checkpoint, out, args.bundle)
    for v, b in bundles.items():
        notes.append(f"{v}: {b} ({bundle_mb(b):.2f} MB)")
    if args.bundle is not None and not bundle_is_from(args.bundle, checkpoint):
        notes.append(f"NOTE: --bundle was not exported from {checkpoint} (checksums differ): its row and the torch "
                     "row have different weights")
    return Setup(bundles, run, checkpoint, data, notes)


def resolve_run_checkpoint(run: Path, bundle: Path | None) -> Path:
    """The checkpoint of a given run: the one the given bundle names, else best.pt (last.pt without one)."""
    if not (run / "config.json").is_file():
        fail(f"--run {run} is not a speech run directory (no config.json): pass the folder `edge-s2s train speech` "
             "wrote, or leave --run out to build one")
    name = "best"
    if bundle is not None:
        doc = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        name = doc.get("metrics", {}).get("training", {}).get("checkpoint", "best")
    from edge_s2s.export.bundle_writer import resolve_checkpoint

    return resolve_checkpoint(run, name)


def run_test_split(run: Path) -> Path:
    from edge_s2s.train.speech.loop import load_speech_run_config

    return Path(load_speech_run_config(run).data_dir) / "test"


def check_dirs(args: argparse.Namespace) -> None:
    for flag, p in (("--bundle", args.bundle), ("--run", args.run), ("--data", args.data)):
        if p is not None and not p.is_dir():
            fail(f"{flag} {p} is not a directory: pass an existing one, or leave it out to build it (see --help)")
    if args.bundle is not None and not (args.bundle / "manifest.json").is_file():
        fail(f"--bundle {args.bundle} has no manifest.json: pass a folder `edge-s2s export` wrote")
    if args.bundle is not None and args.run is None:
        fail("--bundle needs --run (the run it was exported from: the PyTorch side of the comparison)")


# ---------------------------------------------------------------- table 1: engines, one recording at a time


@dataclass
class Engines:
    """Callables (path, search) -> transcript by engine name, and the reading + features alone."""

    by_name: dict[str, Callable[[str, Any], str]]
    features: Callable[[str], Any]


def engines(setup: Setup, threads: int) -> Engines:
    import numpy as np

    from edge_s2s.export.speech import load_speech_run, torch_speech_decode
    from edge_s2s.runtime.media.audio import load_audio
    from edge_s2s.runtime.media.features import log_mel
    from edge_s2s.runtime.tasks.transcriber import Transcriber
    from edge_s2s.runtime.text import join_units

    rts = {f"runtime {v}": Transcriber.load(setup.bundles[v], threads=threads) for v in VARIANTS}
    rts["py loop (fp32 graphs)"] = Transcriber.load(setup.bundles["fp32"], threads=threads, loop="reference")
    rts[SHIPPED] = Transcriber.load(None, threads=threads)
    model, vocab, _, _ = load_speech_run(setup.run, setup.checkpoint)
    ref = rts["runtime fp32"]

    def features(p: str):
        return log_mel(load_audio(p, ref.features.sample_rate)[0], ref.features)

    def torch_one(p: str, search) -> str:
        samples = load_audio(p, ref.features.sample_rate)[0]
        f = log_mel(samples, ref.features)
        limit = ref.step_limit(len(samples) / ref.features.sample_rate)  # the runtime's limit for this recording
        hyps = torch_speech_decode(model, ref.manifest, f[None], np.array([f.shape[0]]), search, limit)[0]
        return join_units(vocab.decode(hyps[0].ids), ref.unit) if hyps else ""

    by_name: dict[str, Callable[[str, Any], str]] = {
        k: (lambda p, search, rt=rt: rt.transcribe([p], search=search)[0].text) for k, rt in rts.items()}
    by_name["torch eager"] = torch_one
    by_name[SHIPPED] = by_name.pop(SHIPPED)  # last row
    return Engines(by_name, features)


def timed_passes(fns: dict[str, Callable[[str, Any], str]], search, paths: list[str], repeats: int
                 ) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Median seconds of one pass over `paths` per engine (engines interleaved each repeat), and the texts."""
    for fn in fns.values():  # warm-up
        fn(paths[0], search)
    times: dict[str, list[float]] = {k: [] for k in fns}
    texts: dict[str, list[str]] = {}
    for _ in range(max(1, repeats)):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            texts[k] = [fn(p, search) for p in paths]
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, texts


def cer(hyps: list[str], refs: list[str] | None) -> str:
    if refs is None:
        return "-"
    from edge_s2s.train.speech.loop import char_error_rate

    return f"{100 * char_error_rate(hyps, refs):.1f}%"


def table_engines(setup: Setup, paths: list[str], refs: list[str] | None, seconds: float, threads: int,
                  repeats: int) -> str:
    """Table 1, plus the reading + features time and the output lengths."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    e = engines(setup, threads)
    res: dict[str, tuple[dict[str, float], dict[str, list[str]]]] = {}
    for sname in SEARCHES:
        say(f"table 1: {len(paths)} recordings one at a time, {sname}")
        res[sname] = timed_passes(e.by_name, search_of(sname), paths, repeats)
    feat_s = median_seconds(lambda: [e.features(p) for p in paths], repeats)
    rows = []
    for name in res["greedy"][0]:
        row: list[Any] = [name]
        for sname in SEARCHES:
            t, texts = res[sname]
            same = sum(a == b for a, b in zip(texts[name], texts["torch eager"]))
            row += [f"{t[name] / seconds:.4f}", ms(t[name] / len(paths)), ratio(t[name], t["runtime fp32"]),
                    "-" if name == SHIPPED else f"{same}/{len(paths)}", cer(texts[name], refs)]
        rows.append(row)
    heads = ["engine"] + [f"{s} {h}" for s in SEARCHES for h in ("RTF", "ms/rec", "x fp32", "same as torch", "CER")]
    out = [(f"## 1. One recording at a time, {threads or 'default'} thread(s) (ORT and torch); "
           f"{len(paths)} recordings, {seconds:.1f} s of audio; median of {repeats}"),
           ("RTF = processing s / audio s (lower is faster); x fp32 = time / runtime fp32's time; reading, "
           "resampling and log-mel features are inside every time"), "",
           markdown(heads, rows), "",
           f"reading + features alone: RTF {feat_s / seconds:.4f} ({ms(feat_s / len(paths))} ms a recording)",
           output_lengths(res["greedy"][1], refs),
           ("the last row is the shipped models/transcriber: the same architecture, fully trained, for the output "
           "lengths of a trained model (its checkpoint is not in the repository: no PyTorch counterpart)")]
    return "\n".join(out)


def output_lengths(texts: dict[str, list[str]], refs: list[str] | None) -> str:
    def mean(xs: list[str]) -> str:
        return f"{statistics.mean(len(x) for x in xs):.1f}"

    line = (f"mean transcript length, greedy: {mean(texts['runtime fp32'])} characters (runtime fp32, briefly "
            f"trained), {mean(texts[SHIPPED])} (shipped model)")
    if refs:
        line += f", {mean(refs)} (references); decode time grows with output length"
    return line


# ---------------------------------------------------------------- table 2: threads, one process per setting


def threads_job(job: dict[str, Any]) -> dict[str, Any]:
    """ms a recording for each bundle and search, one recording at a time, with `threads` for every session."""
    from edge_s2s.runtime.session import thread_policy
    from edge_s2s.runtime.tasks.transcriber import Transcriber

    paths, threads = job["paths"], job["threads"]
    out = {}
    for v, b in job["bundles"].items():
        rt = Transcriber.load(b, threads=threads)
        for sname in SEARCHES:
            search = search_of(sname)
            rt.transcribe(paths[:1], search=search)
            t = median_seconds(lambda rt=rt, search=search: [rt.transcribe([p], search=search) for p in paths],
                               job["repeats"])
            out[f"{v}|{sname}"] = t / len(paths)
    return {"policy": thread_policy(threads), "seconds": out}


def table_threads(setup: Setup, paths: list[str], repeats: int) -> str:
    results = {}
    for label, threads in THREADS.items():
        say(f"table 2: {label}, {len(paths)} recordings (own process)")
        job = {"kind": "threads", "threads": threads, "paths": paths, "repeats": repeats,
               "bundles": {v: str(b) for v, b in setup.bundles.items()}}
        results[label] = run_worker(__file__, job)
    rows = []
    for v in VARIANTS:
        for sname in SEARCHES:
            key = f"{v}|{sname}"
            vals = [results[label]["seconds"][key] for label in THREADS]
            rows.append([f"runtime {v}, {sname}", *(ms(x) for x in vals), ratio(vals[0], vals[-1])])
    policy = results["default (0)"]["policy"]
    return "\n".join([(f"## 2. Threads: ms a recording, one at a time, {len(paths)} recordings; each setting in its "
                      f"own process; median of {repeats}"),
                      (f"default (0) = {policy['intra_op_threads']} intra-op threads, spinning "
                      f"{'on' if policy['spinning'] else 'off'} (runtime/session.py thread_policy); the last "
                      "column > 1 means the default is faster than 1 thread"), "",
                      markdown(["bundle, search", *THREADS, "1 thread / default"], rows)])


# ---------------------------------------------------------------- table 3: batch sizes, one process each


def batch_job(job: dict[str, Any]) -> dict[str, Any]:
    """recordings/s of one transcribe(paths, batch_size=B) call, resident memory after loading, peak memory."""
    from edge_s2s.runtime.tasks.transcriber import Transcriber

    paths, B, search = job["paths"], job["batch"], search_of(job["search"])
    before = rss_mb()
    rt = Transcriber.load(job["bundle"], threads=job["threads"])
    loaded = rss_mb()
    rt.transcribe(paths[:B], search=search, batch_size=B)  # warm-up at this shape
    t = median_seconds(lambda: rt.transcribe(paths, search=search, batch_size=B), job["repeats"])
    return {"per_s": len(paths) / t, "before_mb": before, "loaded_mb": loaded, "peak_mb": peak_rss_mb()}


def table_batches(setup: Setup, paths: list[str], sizes: tuple[int, ...], threads: int, repeats: int) -> str:
    rows = []
    for v in ("fp32", "int8 all"):
        for sname in SEARCHES:
            for B in sizes:
                say(f"table 3: {v}, {sname}, batch {B} (own process)")
                job = {"kind": "batch", "bundle": str(setup.bundles[v]), "search": sname, "batch": B,
                       "paths": paths, "threads": threads, "repeats": repeats}
                r = run_worker(__file__, job)
                rows.append([f"runtime {v}, {sname}", B, f"{r['per_s']:.1f}", f"{r['loaded_mb']:.0f}",
                             f"{r['peak_mb']:.0f}", f"{r['peak_mb'] - r['loaded_mb']:.0f}"])
    return "\n".join([(f"## 3. Batch size: one transcribe(list of {len(paths)}, batch_size=B) call, "
                      f"{threads or 'default'} thread(s), each in a fresh process; median of {repeats}"),
                      ("memory = resident MB of the whole process (Python, numpy, ORT, soundfile; no torch): after "
                      "loading the bundle, and the peak over the run"), "",
                      markdown(["bundle, search", "batch", "recordings/s", "MB loaded", "MB peak",
                                "peak - loaded"], rows)])


# ---------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-speech",
                    help="work folder: data, run and bundles are built here once and reused (default %(default)s)")
    ap.add_argument("--run", type=Path, help="an existing speech run (PyTorch side); default: build one")
    ap.add_argument("--bundle", type=Path, help="an existing bundle exported from --run; used for its own precision")
    ap.add_argument("--data", type=Path, help="folder of recordings (manifest.jsonl, or audio files); "
                                              "default: the test split")
    ap.add_argument("--n", type=int, help="recordings timed in table 1 (default 64, at most 100 are built; --quick 8)")
    ap.add_argument("--batch-n", type=int, help="recordings per call in table 3 (default 64)")
    ap.add_argument("--repeats", type=int, help="passes per measurement, median kept (default 3; --quick 1)")
    ap.add_argument("--threads", type=int, default=1, help="ORT and torch threads in tables 1 and 3 (0 = default)")
    ap.add_argument("--train-steps", type=int, help="training budget in optimizer steps (default 60; --quick 2)")
    ap.add_argument("--tables", default="1,2,3", help="which tables to print (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny data, 2 training steps, few recordings")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    handled = worker_main(argv or [], {"threads": threads_job, "batch": batch_job})
    if handled is not None:
        return handled
    t_start = time.perf_counter()
    args = parse(argv)
    plan = QUICK if args.quick else DEFAULT
    for name in ("n", "batch_n", "repeats", "train_steps"):
        v = getattr(args, name)
        if v is not None and v < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    check_dirs(args)
    setup = prepare(args, plan)
    t_built = time.perf_counter()
    repeats = args.repeats or plan.repeats
    paths, refs, seconds = recordings(setup.data, args.n or plan.n)
    tables = {t.strip() for t in args.tables.split(",")}
    print(header("edge-s2s speech benchmark (bench/bench_speech.py)",
                 f"run {setup.run} ({setup.checkpoint.name}); recordings from {setup.data}; plan {plan.name}"))
    print("\n".join("- " + n for n in setup.notes))
    if "1" in tables:
        print("\n" + table_engines(setup, paths, refs, seconds, args.threads, repeats), flush=True)
    if "2" in tables:
        print("\n" + table_threads(setup, paths[: plan.n_threads], repeats), flush=True)
    if "3" in tables:
        batch_paths, _, _ = recordings(setup.data, args.batch_n or plan.batch_n)
        print("\n" + table_batches(setup, batch_paths, plan.batch_sizes, args.threads, repeats), flush=True)
    end = time.perf_counter()
    print(f"\nwall time {end - t_start:.0f} s (building {t_built - t_start:.0f} s, measuring {end - t_built:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
