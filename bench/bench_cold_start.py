#!/usr/bin/env python3
"""Cold start of `edge-s2s caption photo.jpg`, side by side in one run, with the shipped model.

Each row is the median wall time of --runs fresh processes, interleaved:

  import floor      python -c "import numpy, onnxruntime, PIL.Image": what any caption must load
  caption           edge-s2s caption photo.jpg (interpreter, imports, bundle check, two sessions,
                    reading the image, the CNN, the search, exit)
  caption, no cache the same with EDGE_S2S_NO_CACHE=1 (every file hashed, the CNN optimised again:
                    the first run after an install)

  caption, NAME     (--bundle NAME=DIR, repeatable) the same with another bundle, e.g. the previous default

then the ratio to the floor and the slowest imports of one run (`python -X importtime`).

The runs keep Python's bytecode cache, as on a user's machine: PYTHONDONTWRITEBYTECODE is removed
from their environment (some shells and containers set it; then every run compiles edge_s2s's ~22
modules from source again, about 30 ms, while numpy's and onnxruntime's were compiled by pip).

    python bench/bench_cold_start.py --runs 15
    python bench/bench_cold_start.py --runs 15 --bundle "int8 linear=runs/captioner/bundles/label-slots-int8-linear"
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _photo(path: Path) -> Path:
    import numpy as np
    from PIL import Image

    small = np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)
    Image.fromarray(small).resize((640, 480), Image.BILINEAR).save(path, quality=90)
    return path


def _wall(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--bundle", action="append", default=[], metavar="NAME=DIR",
                    help="also time `edge-s2s caption --bundle DIR` (repeatable)")
    args = ap.parse_args(argv)
    others = {}
    for b in args.bundle:
        name, sep, path = b.partition("=")
        if not sep or not (Path(path) / "manifest.json").is_file():
            print(f"error: --bundle {b!r}: give NAME=DIR with a bundle directory (its manifest.json)", file=sys.stderr)
            return 1
        others[f"caption, {name}"] = path
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
        photo = _photo(Path(work) / "photo.jpg")
        exe = Path(sys.executable).with_name("edge-s2s")
        caption = [str(exe) if exe.is_file() else sys.executable, *([] if exe.is_file() else ["-m", "edge_s2s"]),
                   "caption", str(photo)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        nocache = dict(env, EDGE_S2S_NO_CACHE="1")
        floor = [sys.executable, "-c", "import numpy, onnxruntime, PIL.Image"]
        cmds = {"import floor": (floor, env), "caption": (caption, env), "caption, no cache": (caption, nocache),
                **{k: ([*caption, "--bundle", v], env) for k, v in others.items()}}
        for k, (cmd, e) in cmds.items():
            if k != "import floor":
                subprocess.run(cmd, check=True, capture_output=True, env=e)  # fills the cache, as any first run does
        rows: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for k, (cmd, e) in cmds.items():
                rows[k].append(_wall(cmd, e))
        imp = subprocess.run([sys.executable, "-X", "importtime", "-m", "edge_s2s", "caption", str(photo)],
                             capture_output=True, text=True, env=env, check=False)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"fresh processes, median of {args.runs} (min-max), {os.cpu_count()} CPUs")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("(PYTHONDONTWRITEBYTECODE is set in this shell; the runs use the bytecode cache, as a user's do)")
    print()
    print("| what | seconds | x import floor |")
    print("|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {med[k]:.3f} ({min(v):.3f}-{max(v):.3f}) | {med[k] / med['import floor']:.2f} |")
    tops = []
    for line in imp.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            tops.append((int(parts[1]), parts[2].rstrip()))
    print()
    print("slowest imports (cumulative):")
    for us, name in sorted(tops, reverse=True)[:8]:
        print(f"  {us / 1000:7.1f} ms {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
