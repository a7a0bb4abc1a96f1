#!/usr/bin/env python3
"""Speech recognition speed, side by side in one run: the edge-s2s runtime vs PyTorch eager, same weights.

Real-time factor (processing seconds / audio seconds; lower is faster) over the same
recordings, one recording at a time, reading + resampling + log-mel features included,
greedy and beam 5:

  runtime   Transcriber.transcribe (ONNX Runtime encoder and step, the compiled Cython loop)
  py loop   the same ONNX graphs driven by the runtime's pure-Python reference loop
  torch     the same reading and features, the PyTorch encoder + the reference loop driven by the
            PyTorch step (eager, the bundle's own checkpoint weights)

Each engine transcribes all `--n` recordings once per repeat, the engines interleaved, and
the median pass is kept. A last line checks that runtime and torch wrote the same transcripts.
One thread by default (ORT and torch), as on a phone or a shared server core.

    OMP_NUM_THREADS=1 python bench/bench_speech.py --bundle bundles/speech-fsdd --run runs/speech-fsdd \\
        --data data/fsdd-digits/test --n 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def recordings(data: Path, n: int) -> tuple[list[str], float]:
    """The first `n` recordings of `data` (a folder with manifest.jsonl, or of audio files) and their seconds."""
    import soundfile as sf

    manifest = data / "manifest.jsonl"
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()][:n]
        paths = [str(data / r["audio"]) for r in rows]
    else:
        from edge_s2s.cli.transcribe_cmd import expand_audio_paths

        paths = [str(p) for p in expand_audio_paths([data])][:n]
    if not paths:
        sys.exit(f"error: {data} has no recordings: pass a folder with manifest.jsonl or audio files (--data)")
    return paths, float(sum(sf.info(p).duration for p in paths))


def time_pass(fn, paths: list[str]) -> tuple[float, list[str]]:
    """Seconds to run fn(path) over every path, one at a time, and the transcripts."""
    out = []
    t0 = time.perf_counter()
    for p in paths:
        out.append(fn(p))
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=Path("bundles/speech-fsdd"), help="exported bundle (runtime side)")
    ap.add_argument("--run", type=Path, default=Path("runs/speech-fsdd"), help="its training run (PyTorch side)")
    ap.add_argument("--data", type=Path, default=Path("data/fsdd-digits/test"),
                    help="folder of recordings (manifest.jsonl, or audio files)")
    ap.add_argument("--n", type=int, default=100, help="recordings timed")
    ap.add_argument("--repeats", type=int, default=3, help="passes per engine (median kept)")
    ap.add_argument("--threads", type=int, default=1, help="ORT and torch threads (0 = library default)")
    a = ap.parse_args(argv)

    import torch

    from edge_s2s.export.speech import load_speech_run, torch_speech_decode
    from edge_s2s.runtime.media.audio import load_audio
    from edge_s2s.runtime.media.features import log_mel
    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.runtime.tasks.transcriber import Transcriber
    from edge_s2s.runtime.text import join_units

    if a.threads:
        torch.set_num_threads(a.threads)
    for what, p in (("--bundle", a.bundle), ("--run", a.run), ("--data", a.data)):
        if not p.is_dir():
            sys.exit(f"error: {what} {p} is not a directory: pass it (see --help)")
    paths, seconds = recordings(a.data, a.n)
    rt = Transcriber.load(a.bundle, threads=a.threads)
    py = Transcriber.load(a.bundle, threads=a.threads, loop="reference")
    checkpoint = rt.manifest.metrics.get("training", {}).get("checkpoint", "best")
    model, vocab, _, _ = load_speech_run(a.run, checkpoint)
    fc, rate = rt.features, rt.features.sample_rate

    def features(p: str) -> np.ndarray:
        return log_mel(load_audio(p, rate)[0], fc)

    def torch_one(p: str, search) -> str:
        f = features(p)
        hyps = torch_speech_decode(model, rt.manifest, f[None], np.array([f.shape[0]]), search)[0]
        return join_units(vocab.decode(hyps[0].ids), rt.unit) if hyps else ""

    print(f"bundle {a.bundle}, run {a.run} ({checkpoint}); {len(paths)} recordings, {seconds:.1f} s of audio; "
          f"{os.cpu_count()} CPUs, threads={a.threads or 'default'}, repeats={a.repeats}")
    print("real-time factor = processing s / audio s (lower is faster), one recording at a time, reading and "
          "features included; median pass")
    feat_t = statistics.median(time_pass(features, paths)[0] for _ in range(max(1, a.repeats)))
    print(f"reading + features alone: RTF {feat_t / seconds:.5f} ({1e3 * feat_t / len(paths):.2f} ms a recording)")
    print()
    print(f"{'search':<8}{'runtime':>10}{'py loop':>10}{'torch':>10}{'torch/runtime':>15}{'py/runtime':>12}"
          f"{'runtime ms':>12}{'same text':>11}")
    for name, search in (("greedy", Greedy()), ("beam 5", Beam(5))):
        engines = {"runtime": lambda p: rt.transcribe([p], search=search)[0].text,
                   "py loop": lambda p: py.transcribe([p], search=search)[0].text,
                   "torch": lambda p: torch_one(p, search)}
        for fn in engines.values():  # warm-up
            fn(paths[0])
        times: dict[str, list[float]] = {k: [] for k in engines}
        texts: dict[str, list[str]] = {}
        for _ in range(max(1, a.repeats)):  # interleaved
            for k, fn in engines.items():
                t, texts[k] = time_pass(fn, paths)
                times[k].append(t)
        med = {k: statistics.median(v) for k, v in times.items()}
        same = sum(x == y for x, y in zip(texts["runtime"], texts["torch"]))
        print(f"{name:<8}{med['runtime'] / seconds:>10.5f}{med['py loop'] / seconds:>10.5f}"
              f"{med['torch'] / seconds:>10.5f}{med['torch'] / med['runtime']:>14.2f}x"
              f"{med['py loop'] / med['runtime']:>11.2f}x{1e3 * med['runtime'] / len(paths):>12.2f}"
              f"{same:>6}/{len(paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
