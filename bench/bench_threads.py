#!/usr/bin/env python3
"""Thread settings, side by side in one run, on the bundles shipped in the package (nothing to build).

Each setting runs in its own process (ONNX Runtime's spinning threads of one setting would otherwise
steal time from the next) with the shipped captioner and transcriber loaded as an app loads them:

  1 thread        threads=1 for every session
  2 threads       threads=2, spinning off
  default         what edge-s2s does when the caller says nothing (runtime/session.py thread_policy:
                  min(cores, 4) intra-op threads, spinning off)
  ORT default     the same thread count with ONNX Runtime's spinning left on (edge-s2s 0.1's default)

Workloads: one 640x480 JPEG captioned (latency), a folder of 32 captioned (images/s; the pipelined
path reads the next batch while the CNN runs), recordings transcribed one at a time (latency per
recording) and 32 in batches of 8. Medians of --repeats. The last column is what the acceptance
test reads: 1-thread time / default time (>= 0.95 means the default is no slower than 1 thread).

    python bench/bench_threads.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {"1 thread": (1, "0"), "2 threads": (2, "0"), "default": (0, "0"), "ORT default (spinning)": (0, "1")}


def _images(folder: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        base = rng.integers(0, 255, (60, 80, 3), np.uint8)  # smooth-ish content: a photo compresses like this
        img = Image.fromarray(base).resize((640, 480), Image.BILINEAR)
        p = folder / f"photo{i:02d}.jpg"
        img.save(p, quality=90)
        out.append(p)
    return out


def worker(setting: str, repeats: int, work: Path) -> dict:
    threads, spin = SETTINGS[setting]
    os.environ["EDGE_S2S_SPIN"] = spin
    from edge_s2s.runtime import Captioner, Transcriber
    from edge_s2s.runtime.bundle import shipped_bundle
    from edge_s2s.runtime.session import thread_policy

    imgs = _images(work / "images", 32)
    wavs = sorted(str(p) for p in shipped_bundle("transcriber").glob("golden_*.wav"))
    cap = Captioner.load(threads=threads)
    asr = Transcriber.load(threads=threads)
    cap.caption(imgs[:2])
    asr.transcribe(wavs[:1])
    rows = {"caption 1 image (ms)": [], "caption 32 images (images/s)": [], "transcribe 1 by 1 (ms/recording)": [],
            "transcribe 32, batch 8 (recordings/s)": []}
    for _ in range(repeats):
        t = time.perf_counter()
        cap.caption(imgs[:1])
        rows["caption 1 image (ms)"].append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        cap.caption(imgs)
        rows["caption 32 images (images/s)"].append(len(imgs) / (time.perf_counter() - t))
        many = (wavs * 16)[:32]
        t = time.perf_counter()
        for w in many[:8]:
            asr.transcribe([w])
        rows["transcribe 1 by 1 (ms/recording)"].append(1000 * (time.perf_counter() - t) / 8)
        t = time.perf_counter()
        asr.transcribe(many, batch_size=8)
        rows["transcribe 32, batch 8 (recordings/s)"].append(len(many) / (time.perf_counter() - t))
    policy = thread_policy(threads)
    return {"policy": policy, "medians": {k: statistics.median(v) for k, v in rows.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", choices=list(SETTINGS), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.work)))
        return 0
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as work:
        for setting in SETTINGS:
            proc = subprocess.run([sys.executable, __file__, "--worker", setting, "--repeats", str(args.repeats),
                                   "--work", work], capture_output=True, text=True, check=True)
            results[setting] = json.loads(proc.stdout.strip().splitlines()[-1])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"shipped captioner and transcriber, {cores} cores, medians of {args.repeats}; default = "
          f"{results['default']['policy']}")
    print()
    names = list(SETTINGS)
    print("| workload | " + " | ".join(names) + " | 1 thread / default |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in results["1 thread"]["medians"]:
        vals = [results[n]["medians"][row] for n in names]
        higher_better = "/s)" in row
        one, default = results["1 thread"]["medians"][row], results["default"]["medians"][row]
        ratio = default / one if higher_better else one / default
        print(f"| {row} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
