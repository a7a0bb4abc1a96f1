#!/usr/bin/env python3
"""Captioner speed, side by side in one run: the runtime vs PyTorch eager, same weights.

End-to-end latency per image: JPEG decode + preprocessing + encoder (the CNN) + search,
at batch 1 and 32, greedy and beam 5.

  runtime   Captioner.caption (runtime.image preprocessing, ONNX Runtime encoder, compiled loop)
  torch     the same preprocessing, the PyTorch CNN + the runtime's reference loop driven by
            the PyTorch step (eager, the bundle's own checkpoint weights)

Each setting is timed `--repeats` times, interleaving the two, and the median is kept.
Then the wall time of `edge-s2s caption photo.jpg` as a fresh process (the user's
experience: interpreter start, imports, bundle load, one caption), median of `--cli-runs`,
and the slowest imports from `python -X importtime`.

    python bench/bench_caption.py --run runs/captioner/soft-attention-regulariser \\
        --bundle models/captioner --images data/tuxpaint/images
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def time_it(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def cli_wall(image: Path, runs: int, bundle: Path | None) -> tuple[float, list[str]]:
    """Median wall seconds of a fresh `edge-s2s caption IMAGE`, and its 6 slowest imports."""
    cmd = [sys.executable, "-m", "edge_s2s.cli.app", "caption", str(image)]
    if bundle is not None:
        cmd += ["--bundle", str(bundle)]
    env = dict(os.environ)
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - t0)
    imp = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True, env=env)
    rows = []
    for line in imp.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [f"{us / 1000:7.1f} ms {name}" for us, name in sorted(rows, reverse=True)[:6]]
    return statistics.median(walls), top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="caption run directory (PyTorch side)")
    ap.add_argument("--bundle", type=Path, required=True, help="its exported bundle (runtime side)")
    ap.add_argument("--images", type=Path, required=True, help="folder of JPEGs to caption")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="ORT and torch threads (0 = library default)")
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--cli-default", action="store_true", help="time the CLI with the shipped model (no --bundle)")
    args = ap.parse_args()

    import torch

    from edge_s2s.export.caption import load_caption_run
    from edge_s2s.runtime.media.image import preprocess
    from edge_s2s.runtime.reference_loop import decode
    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.runtime.tasks.captioner import Captioner
    from edge_s2s.train.core.torch_step import torch_step_fn

    if args.threads:
        torch.set_num_threads(args.threads)
    images = sorted(args.images.glob("*.jpg"))[:32]
    if len(images) < 32:
        sys.exit(f"error: {args.images} has fewer than 32 .jpg files")
    rt = Captioner.load(args.bundle, threads=args.threads)
    model, _, cfg, _ = load_caption_run(args.run, rt.manifest.metrics.get("training", {}).get("checkpoint", "best"))
    step = torch_step_fn(model)
    names = model.encoder_output_names()

    def torch_caption(paths, search):
        pix = torch.from_numpy(np.stack([preprocess(p, rt.spec) for p in paths]))
        with torch.no_grad():
            enc = model.encode(pix)
        return decode(rt.manifest, {n: enc[n].numpy() for n in names}, step, search)

    print(f"bundle {args.bundle} ({rt.manifest.model.get('int8')} int8), {os.cpu_count()} CPUs, "
          f"threads={args.threads or 'default'}, repeats={args.repeats}; ms per image, medians")
    print(f"{'search':<8}{'batch':>6}{'runtime':>10}{'torch':>10}{'torch/runtime':>15}")
    for sname, search in (("greedy", Greedy()), ("beam 5", Beam(5))):
        for B in (1, 32):
            batch = images[:B]
            rt.caption(batch, search=search)  # warm-up
            torch_caption(batch, search)
            r_t, t_t = [], []
            for _ in range(args.repeats):  # interleaved
                r_t += time_it(lambda: rt.caption(batch, search=search, batch_size=B), 1)
                t_t += time_it(lambda: torch_caption(batch, search), 1)
            r, t = statistics.median(r_t) / B * 1e3, statistics.median(t_t) / B * 1e3
            print(f"{sname:<8}{B:>6}{r:>10.1f}{t:>10.1f}{t / r:>14.2f}x")
    wall, top = cli_wall(images[0], args.cli_runs, None if args.cli_default else args.bundle)
    print(f"\nfresh process `edge-s2s caption {images[0].name}`"
          f"{'' if args.cli_default else ' --bundle ...'}: median {wall:.3f} s over {args.cli_runs} runs")
    print("slowest imports (cumulative):")
    for line in top:
        print("  " + line)


if __name__ == "__main__":
    main()
