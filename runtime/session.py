"""ONNX Runtime sessions from plain options: provider, threads, graph optimisation level.

onnxruntime-gpu silently falls back to CPU when CUDA cannot be loaded; `create_session`
checks `get_providers()` after creation and raises when "cuda" was asked for but not
obtained, so what a session really runs on is never a guess.

onnxruntime prints its "EP Error ... Falling back" banner with Python's print, to standard
output, where it would mix into results (a caption, a transcript): session creation sends it to
standard error when the session then works (and drops it when our one error line follows), and a
created session has its run-time fallback turned off (a failing provider then raises instead of
printing and retrying). Its C++ log keeps to errors, on standard error.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from pathlib import Path

import onnxruntime as ort

from .cache import optimized_graph, prune_graphs, used
from .errors import BundleError, EdgeS2SError

_REDIRECT_LOCK = threading.Lock()  # sys.stdout is one per process: see _session

# what onnxruntime raises when a graph fails while running (a damaged or mismatched bundle)
_ORT_STATE = ort.capi.onnxruntime_pybind11_state
ORT_FAILURES = tuple(getattr(_ORT_STATE, n) for n in ("Fail", "InvalidArgument", "RuntimeException", "InvalidGraph",
                                                     "NotImplemented", "EPFail", "EngineError", "NoSuchFile")
                     if hasattr(_ORT_STATE, n))


def ort_failed(e: BaseException) -> bool:
    """Whether `e` is onnxruntime failing to run a graph (its own types, or the RuntimeError its
    IO-binding API raises), as opposed to a bug of ours."""
    return isinstance(e, ORT_FAILURES) or (isinstance(e, RuntimeError) and str(e).startswith(
        ("Error in execution", "[ONNXRuntimeError]")))


class graph_errors:
    """Run graphs; onnxruntime's failures become one BundleError line (a well-formed bundle never
    fails there, so the bundle is damaged or made for another runtime). A class, not a generator
    context manager: it wraps every decode, and the generator version cost ~25 us a call on a cold
    cache after the step graph ran."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, e, tb) -> bool:
        if e is None or not isinstance(e, Exception) or not ort_failed(e):
            return False
        msg = " ".join(str(e).split())[:240]
        raise BundleError(f"the bundle's graphs failed while {self.what} ({msg}): the bundle is damaged or does not "
                          "match its manifest, re-export it") from None

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OPTIMIZATION = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


def resolve_providers(provider: str) -> list[str]:
    """ORT provider list for "cpu", "cuda" or "auto" (CUDA when this build has it, else CPU)."""
    available = ort.get_available_providers()
    name = str(provider).lower()
    if name == "auto":
        return [PROVIDERS["cuda"], PROVIDERS["cpu"]] if PROVIDERS["cuda"] in available else [PROVIDERS["cpu"]]
    if name not in PROVIDERS:
        raise EdgeS2SError(f"unknown provider {provider!r}: use cpu, cuda or auto (this onnxruntime has {', '.join(available)})")
    if PROVIDERS[name] not in available:
        raise EdgeS2SError(
            f"provider {name} is not available in this onnxruntime build (it has {', '.join(available)}): "
            "pip uninstall onnxruntime && pip install onnxruntime-gpu (never both), or use --provider cpu"
        )
    return [PROVIDERS[name]] if name == "cpu" else [PROVIDERS[name], PROVIDERS["cpu"]]


def device_of(providers: list[str]) -> str:
    """Where the loop keeps state: "cuda" when the session really runs on CUDA, else "cpu"."""
    return "cuda" if providers and providers[0] == PROVIDERS["cuda"] else "cpu"


def default_threads() -> int:
    """Intra-op threads when the caller says 0: the cores this process may use, at most 4.

    More threads than cores only fight (two sessions live in every loaded model, and ORT's pools
    do not share); past 4 a single decode of these model sizes gains little (CTranslate2's
    default is 4 as well). bench/bench_threads.py measures the choice on the machine at hand.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def spinning_allowed() -> bool:
    """Whether ORT's idle pool threads may spin (EDGE_S2S_SPIN=1). Off by default: with two
    sessions per model, spinning threads steal the cores from the thread doing the work
    (measured 2.5-3.5x slower transcription, 1.1-3x slower captioning, bench_threads.py)."""
    return os.environ.get("EDGE_S2S_SPIN", "") not in ("", "0")


def thread_policy(threads: int = 0) -> dict[str, object]:
    """What every session of this process is given (printed by `edge-s2s profile`)."""
    return {"intra_op_threads": int(threads) or default_threads(), "inter_op_threads": 1,
            "spinning": spinning_allowed()}


def _options(optimization: str, threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = OPTIMIZATION[optimization]
    policy = thread_policy(threads)
    so.intra_op_num_threads = policy["intra_op_threads"]
    so.inter_op_num_threads = policy["inter_op_threads"]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if policy["spinning"] else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if policy["spinning"] else "0")
    so.log_severity_level = 3
    return so


@contextlib.contextmanager
def _stdout_to(sink: io.StringIO):
    """sys.stdout redirected to `sink`, one thread at a time."""
    with _REDIRECT_LOCK, contextlib.redirect_stdout(sink):
        yield


def _session(path: Path, so: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    banner = io.StringIO()  # ORT's fallback banner is a print(): never on stdout
    # Redirecting sys.stdout is process-wide: two threads loading models at once restored each other's
    # stream and could leave the app's stdout on a StringIO, so session creations take turns (creating
    # two sessions in parallel was no faster here: ~45 ms either way for the captioner's two graphs).
    # ORT prints the banner for any failed first try, a corrupt graph on CPU included.
    try:
        with _stdout_to(banner):
            sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        sess.disable_fallback()
        if banner.getvalue():  # it fell back and then worked: worth saying, on stderr
            sys.stderr.write(banner.getvalue())
    except Exception as e:  # our one error line says what the banner would have
        msg = " ".join(str(e).split())[:300]
        raise BundleError(f"{Path(path).name} cannot be loaded by onnxruntime ({msg}): the file is corrupt or "
                          "from an unsupported exporter, re-export the bundle") from None
    return sess


def create_session(path: str | Path, provider: str = "cpu", threads: int = 0, optimization: str = "all",
                   source_sha256: str | None = None) -> ort.InferenceSession:
    """An InferenceSession for one graph; BundleError when the file is not a loadable model.

    threads: intra-op threads (0 = `default_threads()`); spinning follows `spinning_allowed()`.
    source_sha256: the graph's checksum (a bundle's manifest has it): on CPU the optimised graph is
    then kept in the cache (runtime/cache.py) and the next session loads it without optimising.
    """
    if optimization not in OPTIMIZATION:
        raise EdgeS2SError(f"unknown optimization level {optimization!r}: use one of {', '.join(OPTIMIZATION)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise EdgeS2SError(f"threads must be an integer >= 0 (0 = this machine's default), got {threads!r}")
    providers = resolve_providers(provider)
    path = Path(path)
    cached = None
    if source_sha256 and providers == [PROVIDERS["cpu"]] and optimization != "disable":
        cached = optimized_graph(source_sha256, optimization)
    if cached is not None and cached.is_file():
        try:
            sess = _session(cached, _options("disable", threads), providers)
            used(cached)
            return sess
        except BundleError:  # a damaged cache entry: drop it, optimise again
            cached.unlink(missing_ok=True)
    so = _options(optimization, threads)
    tmp = None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.tmp.onnx")
            so.optimized_model_filepath = str(tmp)
        except OSError:
            tmp = None
    try:
        sess = _session(path, so, providers)
    except BundleError:
        if tmp is None:
            raise
        sess = _session(path, _options(optimization, threads), providers)  # the cache could not be written
        tmp = None
    if tmp is not None:
        try:
            os.replace(tmp, cached)
            prune_graphs(cached.parent)
        except OSError:
            tmp.unlink(missing_ok=True)
    got = sess.get_providers()
    if str(provider).lower() == "cuda" and (not got or got[0] != PROVIDERS["cuda"]):
        raise EdgeS2SError(
            f"asked for cuda but onnxruntime fell back to {', '.join(got)} (CUDA/cuDNN libraries not found or no GPU): "
            "install the CUDA and cuDNN versions this onnxruntime-gpu needs, or use --provider cpu"
        )
    return sess
