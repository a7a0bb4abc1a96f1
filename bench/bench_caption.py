#!/usr/bin/env python3
"""Captioner speed, every comparison side by side in one run, from a clean checkout.

    python bench/bench_caption.py            # builds what it needs under runs/bench-caption/ (minutes,
                                             # once; a second run reuses it), then measures
    python bench/bench_caption.py --quick    # the same with fewer repeats (a smoke test)
    python bench/bench_caption.py --run runs/captioner/soft-attention-regulariser \\
        --bundle models/captioner            # an existing run and bundle(s) instead of the small build

The build (bench/caption_build.py): Debian's tuxpaint-stamps-default (installed when missing and we
are root), converted by the project's converter; the SHIPPED captioner's architecture
(models/captioner/manifest.json "model": EfficientNet-Lite0 frozen, soft attention, doubly stochastic
regulariser, same sizes, same 300-word vocabulary) trained for one epoch, exported by the project's
exporter as fp32, int8 linear, int8 static (the shipped kind) and int8 everywhere. Speed does not depend on how
well it is trained. The images captioned are the converted test split's JPEGs (256x256).

Tables (milliseconds per image or images/s, end to end: JPEG decode + preprocessing + encoder (the
CNN) + search; medians of --repeats, the settings of a table interleaved in every repeat):

  a) search x batch   greedy / beam 5 at batch 1 (8 single-image calls) and 32: the runtime on each
                      bundle and PyTorch eager (the same checkpoint, the same preprocessing, the
                      runtime's reference loop driven by the PyTorch step), in this process
  b) threads          the shipped kind's bundle at threads 1, 2 and the library default (0), greedy
  c) batch size       1..64 on 64 images, greedy: images/s and peak memory (RSS high-water after
                      captioning minus RSS after loading)
  d) folder           images/s of a folder at batch 32: today's defaults (Captioner.load + caption;
                      min(cores, 4) threads, no spinning, images read ahead by worker threads) on the
                      shipped kind (int8 static) and on int8 linear, against the defaults issue 20 started
                      from (ONNX Runtime's own thread count with spinning on, images read one by one in
                      the calling thread, the int8 linear bundle it shipped)
  e) cold start       `edge-s2s caption IMAGE` as a fresh process with the shipped model, median of
                      --cli-runs, and the slowest imports from `python -X importtime`

b), c) and d) run each setting in its own process (ONNX Runtime's pools of one setting would otherwise
compete with the next), all started before timing and driven in turn, one timing each per repeat.

Two choices keep the numbers about speed and not about this build or this machine's neighbours:

* Every caption is forced to the same length (min_length = max_length = the shipped model's mean greedy
  length on the test images, about 6 tokens; --length): a model trained for a minute says "a." to
  everything and would stop after 2 steps, the shipped one does not.
* PyTorch runs with OMP_WAIT_POLICY=PASSIVE (--torch-spin to leave OpenMP's default): the runtime never
  spins (runtime/session.py), and with any other process busy on this 2-core machine PyTorch's spinning
  OpenMP threads made its CNN 30-70x slower at batch 1 (0.1-2 s instead of 30 ms, measured).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import caption_build as cb
import timing_common as tc
from caption_build import BenchError

ROOT = Path(__file__).resolve().parent.parent
B1_CALLS = 8  # a "batch 1" timing captions this many images, one call each
BATCHES = (1, 2, 4, 8, 16, 32, 64)
SWEEP_IMAGES = 64
SETTLE_S = 0.05  # pause before each worker's turn: the previous one's pool threads stop spinning


@dataclass(frozen=True)
class Job:
    """One timing: `calls` caption() calls, each on the next `n` images, `batch` images per encoder run."""

    n: int
    batch: int
    calls: int = 1
    workers: int = 0  # caption(workers=): 0 = library default (read ahead), 1 = read in the calling thread
    beam: int = 0  # 0 = greedy
    length: int = 0  # every caption exactly this many tokens, end token included (0 = where the model stops)

    @property
    def images(self) -> int:
        return self.n * self.calls


def batch_job(batch: int, length: int, beam: int = 0) -> Job:
    return Job(1, 1, B1_CALLS, beam=beam, length=length) if batch == 1 else Job(batch, batch, beam=beam, length=length)


def lengths(job: Job) -> dict[str, int | None]:
    """caption()/decode() keywords: min_length = max_length forces `job.length` tokens."""
    return {"max_length": job.length, "min_length": job.length} if job.length else {}


CaptionCall = Callable[[list[Path], object, Job], object]


def time_job(call: CaptionCall, images: list[Path], job: Job) -> float:
    """Seconds for `job`, captioning images from the start of `images`."""
    from edge_s2s.runtime.search import Beam, Greedy

    search = Beam(job.beam) if job.beam else Greedy()
    t0 = time.perf_counter()
    for k in range(job.calls):
        call(images[k * job.n:(k + 1) * job.n], search, job)
    return time.perf_counter() - t0


def runtime_call(cap) -> CaptionCall:
    return lambda paths, search, job: cap.caption(paths, search=search, batch_size=job.batch, workers=job.workers,
                                                  **lengths(job))


def memory_kib() -> dict[str, int]:
    """{"rss", "peak"} of this process in KiB. /proc's VmHWM, not ru_maxrss: a child's ru_maxrss starts at the
    RSS of the parent it was forked from (Linux keeps it across exec), which would hide the worker's own peak."""
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return {"rss": int(status["VmRSS"].split()[0]), "peak": int(status["VmHWM"].split()[0])}
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rss": peak, "peak": peak}


# --- worker processes (tables b, c, d) -------------------------------------------------------------

def worker(spec: dict) -> None:
    """Load a bundle as the spec says, warm up, then time the jobs once per "run" line on stdin."""
    if spec["ort_threads"]:  # the old default: intra-op threads 0 = ONNX Runtime chooses
        from edge_s2s.runtime import session

        session.default_threads = lambda: 0
    from edge_s2s.runtime.session import thread_policy
    from edge_s2s.runtime.tasks.captioner import Captioner

    images = [Path(p) for p in spec["images"]]
    jobs = [Job(**j) for j in spec["jobs"]]
    cap = Captioner.load(spec["bundle"], threads=spec["threads"])
    baseline = memory_kib()
    call = runtime_call(cap)
    for job in jobs:
        time_job(call, images, job)
    tc.serve_rounds({"loaded_kib": baseline, "policy": thread_policy(spec["threads"])},
                    lambda: {"seconds": [time_job(call, images, job) for job in jobs], "memory_kib": memory_kib()})


def lockstep(settings: dict[str, tuple[dict, bool]], repeats: int) -> dict[str, dict]:
    """One worker per setting, driven in turn (timing_common.lockstep).

    Returns {setting: {"ready": ..., "seconds": [[job seconds] per round], "memory_kib": ... at the end}}.
    """
    commands = {name: ([sys.executable, __file__, "--worker", json.dumps(spec)],
                       {**os.environ, "EDGE_S2S_SPIN": "1" if spin else "0"}) for name, (spec, spin) in settings.items()}
    res = tc.lockstep(commands, repeats, SETTLE_S)
    return {name: {"ready": r["ready"], "seconds": [x["seconds"] for x in r["rounds"]],
                   "memory_kib": r["rounds"][-1]["memory_kib"] if r["rounds"] else {}} for name, r in res.items()}


def spec(bundle: Path, images: list[Path], jobs: list[Job], threads: int = 0, ort_threads: bool = False) -> dict:
    return {"bundle": str(bundle), "images": [str(p) for p in images], "jobs": [asdict(j) for j in jobs],
            "threads": threads, "ort_threads": ort_threads}


def median_per_job(result: dict, k: int) -> float:
    return statistics.median(s[k] for s in result["seconds"])


# --- the tables --------------------------------------------------------------------------------------

def torch_call(run: Path, rt, threads: int) -> CaptionCall:
    """PyTorch eager on the run's checkpoint that exported `rt`: same preprocessing, reference loop."""
    import numpy as np
    import torch

    from edge_s2s.export.caption import load_caption_run
    from edge_s2s.runtime.media.image import preprocess
    from edge_s2s.runtime.reference_loop import decode
    from edge_s2s.train.core.torch_step import torch_step_fn

    if threads:
        torch.set_num_threads(threads)
    model, _, _, _ = load_caption_run(run, rt.manifest.metrics.get("training", {}).get("checkpoint", "best"))
    step, names = torch_step_fn(model), model.encoder_output_names()

    def call(paths: list[Path], search, job: Job):
        pix = torch.from_numpy(np.stack([preprocess(p, rt.spec) for p in paths]))
        with torch.no_grad():
            enc = model.encode(pix)
        return decode(rt.manifest, {n: enc[n].numpy() for n in names}, step, search, **lengths(job))

    return call


def table_search(bundles: dict[str, Path], run: Path | None, images: list[Path], repeats: int, threads: int,
                 length: int) -> None:
    from edge_s2s.runtime.tasks.captioner import Captioner

    caps = {name: Captioner.load(path, threads=threads) for name, path in bundles.items()}
    calls = {name: runtime_call(cap) for name, cap in caps.items()}
    if run is not None:
        calls["torch"] = torch_call(run, caps.get("fp32") or next(iter(caps.values())), threads)
    ratios = [(a, b) for a, b in (("torch", "fp32"), ("torch", "int8-static"), ("int8-all", "int8-static"),
                                  ("fp32", "int8-static"), ("int8-linear", "int8-static")) if a in calls and b in calls]
    print(f"\na) search x batch: ms per image (batch 1 = {B1_CALLS} one-image calls), threads "
          f"{threads or 'default'}, medians of {repeats}")
    heads = [f"{a}/{b}" for a, b in ratios]
    print(f"{'search':<8}{'batch':>6}" + "".join(f"{n:>13}" for n in calls) + "".join(f"{h:>{len(h) + 3}}"
                                                                                      for h in heads))
    for sname, beam in (("greedy", 0), ("beam 5", 5)):
        for batch in (1, 32):
            job = batch_job(batch, length, beam)
            for call in calls.values():
                time_job(call, images, job)  # warm-up
            times: dict[str, list[float]] = {n: [] for n in calls}
            for _ in range(repeats):
                for n, call in calls.items():
                    times[n].append(time_job(call, images, job))
            ms = {n: statistics.median(t) / job.images * 1e3 for n, t in times.items()}
            print(f"{sname:<8}{batch:>6}" + "".join(f"{ms[n]:>13.1f}" for n in calls)
                  + "".join(f"{ms[a] / ms[b]:>{len(h) + 2}.2f}x" for (a, b), h in zip(ratios, heads)), flush=True)


def table_threads(bundle: Path, images: list[Path], repeats: int, length: int) -> None:
    jobs = [batch_job(1, length), batch_job(32, length)]
    settings = {"1 thread": (spec(bundle, images, jobs, threads=1), False),
                "2 threads": (spec(bundle, images, jobs, threads=2), False),
                "default (0)": (spec(bundle, images, jobs, threads=0), False)}
    res = lockstep(settings, repeats)
    default = res["default (0)"]["ready"]["policy"]
    print(f"\nb) threads: {bundle.name}, greedy, ms per image, one process each, spinning off, medians of {repeats}; "
          f"default = {default['intra_op_threads']} intra-op threads")
    print(f"{'batch':>6}" + "".join(f"{n:>14}" for n in settings) + f"{'1 thread/default':>18}")
    for k, job in enumerate(jobs):
        ms = {n: median_per_job(r, k) / job.images * 1e3 for n, r in res.items()}
        print(f"{job.batch:>6}" + "".join(f"{ms[n]:>14.1f}" for n in settings)
              + f"{ms['1 thread'] / ms['default (0)']:>17.2f}x", flush=True)


def table_batches(bundle: Path, images: list[Path], repeats: int, length: int) -> None:
    imgs = images[:SWEEP_IMAGES]
    settings = {b: (spec(bundle, imgs, [Job(len(imgs), b, length=length)]), False) for b in BATCHES}
    res = lockstep(settings, repeats)
    print(f"\nc) batch size: {bundle.name}, greedy, {len(imgs)} images per timing, library defaults, one process "
          f"each, medians of {repeats}")
    print(f"{'batch':>6}{'images/s':>10}{'ms/image':>10}{'RSS loaded MiB':>16}{'peak MiB':>10}{'peak - loaded':>15}")
    for b, r in res.items():
        s = median_per_job(r, 0)
        loaded, peak = r["ready"]["loaded_kib"]["peak"] / 1024, r["memory_kib"]["peak"] / 1024
        print(f"{b:>6}{len(imgs) / s:>10.1f}{s / len(imgs) * 1e3:>10.1f}{loaded:>16.0f}{peak:>10.0f}"
              f"{peak - loaded:>15.0f}", flush=True)


def table_folder(bundles: dict[str, Path], shipped: str, images: list[Path], repeats: int, length: int) -> None:
    new, old = Job(len(images), 32, workers=0, length=length), Job(len(images), 32, workers=1, length=length)
    before = bundles.get("int8-linear", bundles[shipped])
    settings = {f"today's defaults, {shipped}": (spec(bundles[shipped], images, [new]), False)}
    if shipped != "int8-linear" and "int8-linear" in bundles:
        settings["today's defaults, int8-linear"] = (spec(before, images, [new]), False)
    settings[f"old defaults, {before.name}"] = (spec(before, images, [old], ort_threads=True), True)
    res = lockstep(settings, repeats)
    ips = {n: len(images) / median_per_job(r, 0) for n, r in res.items()}
    pol = {n: r["ready"]["policy"] for n, r in res.items()}
    print(f"\nd) folder of {len(images)} images at batch 32, greedy, one process each, medians of {repeats}")
    base = list(ips.values())[-1]
    for n in settings:
        p = pol[n]
        threads = p["intra_op_threads"] or "ORT's own"
        read = "read serially" if n.startswith("old") else "read ahead"
        print(f"  {n:<31} {ips[n]:7.1f} images/s  {ips[n] / base:5.2f}x  (intra-op threads {threads}, spinning "
              f"{'on' if p['spinning'] else 'off'}, {read})", flush=True)


def cli_wall(image: Path, runs: int, bundle: Path | None) -> tuple[float, list[str]]:
    """Median wall seconds of a fresh `edge-s2s caption IMAGE`, and its 6 slowest imports."""
    cmd = [sys.executable, "-m", "edge_s2s.cli.app", "caption", str(image)]
    if bundle is not None:
        cmd += ["--bundle", str(bundle)]
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise BenchError(f"`edge-s2s caption` failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    imp = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], check=False, capture_output=True,
                         text=True)
    rows = []
    for line in imp.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [f"{us / 1000:7.1f} ms {name}" for us, name in sorted(rows, reverse=True)[:6]]
    return statistics.median(walls), top


def table_cli(image: Path, runs: int, bundle: Path | None) -> None:
    from PIL import Image

    wall, top = cli_wall(image, runs, bundle)
    size = "x".join(map(str, Image.open(image).size))
    which = f"--bundle {bundle}" if bundle else "the shipped model"
    print(f"\ne) fresh process `edge-s2s caption {image.name}` ({size} JPEG, {which}): median {wall:.3f} s "
          f"over {runs} runs")
    print("   slowest imports (cumulative):")
    for line in top:
        print("     " + line)


# --- setup ---------------------------------------------------------------------------------------------

def header(bundles: dict[str, Path], run: Path | None, images: list[Path], repeats: int) -> None:
    import onnxruntime

    try:
        import torch
        omp = os.environ.get("OMP_WAIT_POLICY", "unset")
        tv = f"{torch.__version__} ({torch.get_num_threads()} threads, OMP_WAIT_POLICY {omp})"
    except ImportError:
        tv = "not installed"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"captioner speed, {now}: {cores} CPUs (os.cpu_count {os.cpu_count()}), onnxruntime "
          f"{onnxruntime.__version__}, torch {tv}, Python {sys.version.split()[0]}, load average {load}, "
          f"repeats {repeats}")
    from caption_build import bundle_source

    from edge_s2s.runtime.bundle import sha256_file

    best = sha256_file(run / "best.pt") if run is not None and (run / "best.pt").is_file() else None
    for name, path in bundles.items():
        mb = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) / 1e6
        other = best is not None and bundle_source(path)[1] != best
        note = ": NOT exported from the torch run's best.pt (other weights)" if other else ""
        print(f"  bundle {name:<12} {path} ({mb:.1f} MB){note}")
    print(f"  torch run          {run if run else '(none: --skip-torch)'}")
    print(f"  images             {len(images)} test-split JPEGs from {images[0].parent}")


def decode_length(asked: int, images: list[Path]) -> int:
    """The forced caption length: `asked`, or (-1) the shipped model's mean greedy length on `images`."""
    if asked >= 0:
        print(f"  decode length      {asked or 'natural (not forced)'}" + ("" if asked else ": captions end where "
                                                                            "the model stops"))
        return asked
    from edge_s2s.runtime.tasks.captioner import Captioner

    res = Captioner.load().caption(images, batch_size=32)
    mean = statistics.mean(len(r.hypotheses[0].ids) + 1 for r in res)
    longest = max(len(r.hypotheses[0].ids) + 1 for r in res)
    print(f"  decode length      every caption forced to {round(mean)} tokens (min_length = max_length): the shipped "
          f"model's mean greedy length on these images, {mean:.2f} (longest {longest}), end token included")
    return round(mean)


def given_bundles(paths: list[Path]) -> dict[str, Path]:
    """{fp32 | int8-linear | int8-static | int8-all: path} of --bundle arguments, by their manifests."""
    from caption_build import KINDS, bundle_source

    names = {v: k for k, v in KINDS.items()}
    out: dict[str, Path] = {}
    for p in paths:
        if not (p / "manifest.json").is_file():
            raise BenchError(f"--bundle {p}: no manifest.json there (pass a bundle directory from `edge-s2s export`)")
        out[names.get(bundle_source(p)[0], bundle_source(p)[0])] = p
    return out


def prepare(args: argparse.Namespace) -> tuple[dict[str, Path], Path | None, list[Path]]:
    """(bundles by kind, run for the PyTorch side or None, test images), built under --work when missing."""
    import caption_build as cb

    cb.ensure_data(args.data, args.stamps)
    images = cb.split_images(args.data)
    if len(images) < SWEEP_IMAGES:
        raise cb.BenchError(f"{args.data}: the test split has {len(images)} images, the benchmark needs "
                            f"{SWEEP_IMAGES}: delete it to convert again")
    bundles = given_bundles(args.bundle)
    wanted = [k for k in cb.KINDS if k not in bundles and not (k == "int8-all" and args.skip_int8_all)]
    need_run = not args.skip_torch or wanted
    run = args.run or (cb.ensure_run(args.work / "run", args.data, args.epochs, args.work / "features",
                                                   args.stamps)
                       if need_run else None)
    if run is not None and not (run / "best.pt").is_file() and not (run / "config.json").is_file():
        raise cb.BenchError(f"--run {run}: not a caption run directory (no config.json / best.pt)")
    for kind in wanted:
        bundles[kind] = cb.ensure_bundle(run, args.work / "bundles" / kind, cb.KINDS[kind])
    order = [k for k in cb.KINDS if k in bundles] + [k for k in bundles if k not in cb.KINDS]
    return {k: bundles[k] for k in order}, (None if args.skip_torch else run), images


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-caption", help="build folder (reused)")
    ap.add_argument("--data", type=Path, help="converted Tux Paint data (default WORK/data)")
    ap.add_argument("--stamps", type=Path, default=Path("/usr/share/tuxpaint/stamps"),
                    help="Tux Paint's stamps (Debian tuxpaint-stamps-default, installed there when missing)")
    ap.add_argument("--run", type=Path, help="an existing caption run (PyTorch side; bundles exported from it)")
    ap.add_argument("--bundle", type=Path, action="append", default=[],
                    help="an existing caption bundle (repeatable; its manifest says fp32 / int8 linear / static / all)")
    ap.add_argument("--epochs", type=int, default=1, help="training budget of the small build")
    ap.add_argument("--length", type=int, default=-1,
                    help="tokens every caption is forced to, end token included (default: the shipped model's mean "
                         "greedy length on the test images; 0 = no forcing: a barely trained model stops early)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="table a: ORT and torch threads (0 = library default)")
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--cli-bundle", type=Path, help="table e: time the CLI with this bundle (default: shipped model)")
    ap.add_argument("--quick", action="store_true", help="2 repeats, 2 CLI runs: a smoke test")
    ap.add_argument("--torch-spin", action="store_true",
                    help="leave OpenMP's spin-waiting on for PyTorch (default: OMP_WAIT_POLICY=PASSIVE)")
    for t in ("search", "torch", "int8-all", "threads", "batch", "folder", "cli"):
        ap.add_argument(f"--skip-{t}", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.data = args.data or args.work / "data"
    if args.quick:
        args.repeats, args.cli_runs = min(args.repeats, 2), min(args.cli_runs, 2)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if not args.torch_spin:  # before torch loads libgomp; see the docstring
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edge_s2s.runtime.errors import EdgeS2SError

    t0 = time.perf_counter()
    try:
        bundles, run, images = prepare(args)
        header(bundles, run, images, args.repeats)
        shipped = cb.shipped_kind() if cb.shipped_kind() in bundles else next(iter(bundles))
        int8 = bundles[shipped]
        length = decode_length(args.length, images)
        if not args.skip_search:
            table_search(bundles, run, images, args.repeats, args.threads, length)
        if not args.skip_threads:
            table_threads(int8, images, args.repeats, length)
        if not args.skip_batch:
            table_batches(int8, images, args.repeats, length)
        if not args.skip_folder:
            table_folder(bundles, shipped, images, args.repeats, length)
        if not args.skip_cli:
            table_cli(images[0], args.cli_runs, args.cli_bundle)
    except (BenchError, tc.BenchError, EdgeS2SError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"error: {getattr(e, 'name', None) or e} is not installed: the build needs the training extras "
              "(PIP_CONSTRAINT=constraints.txt pip install -e \".[train]\")", file=sys.stderr)
        return 1
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
