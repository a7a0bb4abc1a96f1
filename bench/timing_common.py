"""Shared pieces of bench/bench_speech.py and bench/bench_translate.py (not a benchmark itself).

- `guarded(main)`: run a benchmark's main; any failure becomes one `error: ...` line, no traceback
  (`--traceback` on the command line shows it).
- `header(...)`: the first line of every result: date, CPUs, library versions, machine load.
- `median_seconds`, `rss_mb`, `peak_rss_mb`: what the tables are made of.
- `run_worker(script, job)`: one measurement in a fresh Python process (threads, memory), its
  result read back as JSON; `worker_main` is the other end.
- `lockstep(commands, repeats)`: several long-lived measuring processes (one per setting), all
  loaded before any timing, then driven in turn, one timing each per round: a machine that
  slows down or speeds up during the run moves every setting alike.
- `markdown(...)`: a table the README can take as it is.
- `bundle_is_from(bundle, checkpoint)`: whether a bundle was exported from that checkpoint (reuse
  of a work directory re-exports only when training moved on).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
WORKER_FLAG = "--worker-job"


class BenchError(Exception):
    """A benchmark cannot go on; the message is one line naming the problem and the fix."""


def fail(message: str) -> NoReturn:
    raise BenchError(message)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    known = isinstance(e, BenchError) or type(e).__module__.startswith("edge_s2s")
    return text if known else f"{type(e).__name__}: {text}"


def guarded(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """main(argv) with every failure as one line on stderr (exit 1); Ctrl-C exits 130 quietly."""
    args = sys.argv[1:] if argv is None else argv
    if "--traceback" in args:
        return main([a for a in args if a != "--traceback"])
    try:
        return main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001  (the point: one line, not a traceback)
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str, extra: str = "") -> str:
    """`title`, then date, CPUs, onnxruntime / torch / numpy versions and the load average."""
    import numpy
    import onnxruntime

    try:
        import torch

        tv = torch.__version__
    except ImportError:
        tv = "absent"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {title}",
             (f"{when}; {cores()} CPUs ({cpu_name()}); onnxruntime {onnxruntime.__version__}, torch {tv}, "
             f"numpy {numpy.__version__}, Python {platform.python_version()}; load average {load} at start")]
    if extra:
        lines.append(extra)
    return "\n".join(lines)


@contextlib.contextmanager
def torch_threads(n: int):
    """torch with `n` intra-op threads inside the block. Training uses 1: on two busy cores, two torch
    threads were measured stalling 12-50 s on single steps that take 0.5 s on a quiet machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall seconds of fn() over `repeats` calls."""
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _status_mb(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """The most resident memory this process has had, MB: VmHWM, which starts afresh at exec (getrusage's
    ru_maxrss does not: a child keeps its parent's peak, so a worker started by a 500 MB parent reads 500)."""
    peak = _status_mb("VmHWM")
    return peak if not math.isnan(peak) else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str | Path, job: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run `script --worker-job JSON` in a fresh interpreter; its last stdout line (JSON) is the answer."""
    cmd = [sys.executable, str(script), WORKER_FLAG, json.dumps(job)]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"a measurement process ({job.get('kind')}) ran over {timeout:.0f} s: run with --quick, fewer --repeats "
             "or on a quieter machine")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"a measurement process ({job.get('kind')}) failed: {last}")
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        fail(f"a measurement process ({job.get('kind')}) printed no result: {proc.stdout[-200:]!r}")


class LockstepWorker:
    """A measuring process: it prints one JSON line when loaded, then one per "run" line on stdin."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        import tempfile

        self.name = name
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115  (lives as long as the worker; close() ends it)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                     env=env)
        self.ready = self.read()

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.err.seek(0)
            last = (self.err.read().strip().splitlines() or ["no output"])[-1]
            fail(f"worker {self.name!r} ended (exit {self.proc.returncode}): {last}")
        return json.loads(line)

    def run(self) -> dict[str, Any]:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.err.close()


def lockstep(commands: dict[str, tuple[list[str], dict[str, str] | None]], repeats: int,
             settle_s: float = 0.05) -> dict[str, dict[str, Any]]:
    """Start one LockstepWorker per setting (one after another), then `repeats` rounds of one "run"
    each, rotating who goes first; `settle_s` before each turn lets the previous worker's pool
    threads stop spinning. Returns {setting: {"ready": first line, "rounds": [reply per round]}}."""
    out: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        workers: dict[str, LockstepWorker] = {}
        for name, (argv, env) in commands.items():
            workers[name] = LockstepWorker(name, argv, env)
            stack.callback(workers[name].close)
            out[name] = {"ready": workers[name].ready, "rounds": []}
        names = list(workers)
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                time.sleep(settle_s)
                out[name]["rounds"].append(workers[name].run())
    return out


def serve_rounds(ready: dict[str, Any], one_round: Callable[[], dict[str, Any]]) -> None:
    """The worker's side of `lockstep`: print `ready`, then one_round()'s JSON per "run" line."""
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(json.dumps(one_round()), flush=True)


def worker_main(argv: Sequence[str], handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> int | None:
    """When argv is `--worker-job JSON`: run handlers[job["kind"]](job), print its JSON, return 0. Else None."""
    if len(argv) != 2 or argv[0] != WORKER_FLAG:
        return None
    job = json.loads(argv[1])
    try:
        out = handlers[job["kind"]](job)
    except Exception as e:  # noqa: BLE001  (the parent reports it as one line)
        print(_one_line(e), file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned."""
    out = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundle_is_from(bundle: Path, checkpoint: Path) -> bool:
    """Whether `bundle` holds a manifest exported from exactly this checkpoint file."""
    try:
        doc = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(checkpoint.is_file()) and doc.get("source_checkpoint_sha256") == sha256(checkpoint)


def bundle_precision(bundle: Path) -> str:
    """"fp32", "int8 linear" or "int8 all" from a bundle's manifest ("int8" in its model section)."""
    doc = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    q = doc.get("model", {}).get("int8")
    if q in (None, False, "none", ""):
        return "fp32"
    return "int8 linear" if q == "linear" else "int8 all"


def bundle_mb(bundle: Path) -> float:
    return sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()) / 1e6


def say(message: str) -> None:
    """Progress for the reader, on stderr (stdout keeps the results)."""
    print(message, file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.2f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def trained_steps(checkpoint: Path) -> int:
    """Optimizer steps a checkpoint has done (0 when there is none): a rebuild resumes short runs."""
    if not checkpoint.is_file():
        return 0
    from edge_s2s.train.core.checkpoint import load_checkpoint

    return int(load_checkpoint(checkpoint).get("step", 0))
