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
recording) and 32 in batches of 8. All processes load first; then each round times every setting
once, in turn (bench/timing_common.lockstep), so a machine whose speed drifts during the run moves
every column alike. Medians of --repeats rounds. The last column is what the acceptance test
reads: 1-thread time / default time (>= 0.95 means the default is no slower than 1 thread).

    python bench/bench_threads.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import timing_common as tc

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


ROWS = ("caption 1 image (ms)", "caption 32 images (images/s)", "transcribe 1 by 1 (ms/recording)",
        "transcribe 32, batch 8 (recordings/s)")


def worker(setting: str, work: Path) -> None:
    """Load both shipped models with the setting, warm up, then time one round per "run" line."""
    threads, spin = SETTINGS[setting]
    os.environ["EDGE_S2S_SPIN"] = spin
    from edge_s2s.runtime import Captioner, Transcriber
    from edge_s2s.runtime.bundle import shipped_bundle
    from edge_s2s.runtime.session import thread_policy

    imgs = _images(work / "images", 32)
    wavs = sorted(str(p) for p in shipped_bundle("transcriber").glob("golden_*.wav"))
    many = (wavs * 16)[:32]
    cap = Captioner.load(threads=threads)
    asr = Transcriber.load(threads=threads)
    cap.caption(imgs[:2])
    asr.transcribe(wavs[:1])

    def one_round() -> dict:
        t = time.perf_counter()
        cap.caption(imgs[:1])
        t1 = time.perf_counter()
        cap.caption(imgs)
        t2 = time.perf_counter()
        for w in many[:8]:
            asr.transcribe([w])
        t3 = time.perf_counter()
        asr.transcribe(many, batch_size=8)
        t4 = time.perf_counter()
        return dict(zip(ROWS, (1000 * (t1 - t), len(imgs) / (t2 - t1), 1000 * (t3 - t2) / 8, len(many) / (t4 - t3))))

    tc.serve_rounds({"policy": thread_policy(threads)}, one_round)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--worker", choices=list(SETTINGS), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.work)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as work:
        commands = {s: ([sys.executable, __file__, "--worker", s, "--work", work], None) for s in SETTINGS}
        results = tc.lockstep(commands, args.repeats)
    med = {s: {row: statistics.median(r[row] for r in res["rounds"]) for row in ROWS} for s, res in results.items()}
    print(f"shipped captioner and transcriber, {tc.cores()} cores, {args.repeats} rounds (medians), settings "
          f"interleaved; default = {results['default']['ready']['policy']}")
    print()
    names = list(SETTINGS)
    print("| workload | " + " | ".join(names) + " | 1 thread / default |")
    print("|---|" + "---|" * (len(names) + 1))
    for row in ROWS:
        one, default = med["1 thread"][row], med["default"][row]
        ratio = default / one if "/s)" in row else one / default
        print(f"| {row} | " + " | ".join(f"{med[n][row]:.1f}" for n in names) + f" | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
