"""What a second start of the same bundle need not redo: file checksums and graph optimisation.

Both are kept under `$EDGE_S2S_CACHE` (default `~/.cache/edge-s2s`); `EDGE_S2S_NO_CACHE=1` turns
them off. The cache is only ever a shortcut: every failure to read or write it falls back to doing
the work, silently.

* **Checksums** (`known_sha256`): hashing an 18 MB bundle costs ~17 ms on every start. A file's
  sha256 is remembered together with its identity (device, inode, size, modification AND change
  time). The change time (ctime) cannot be set by a user: any write to the file updates it, so a
  file changed after it was hashed never matches its old entry, even with its mtime put back.
  `edge-s2s verify` always hashes afresh.
* **Optimised graphs** (`optimized_graph`): ONNX Runtime spends ~30 ms optimising the captioner's
  CNN each time a session is created. The optimised model it can save is reused with optimisation
  off, which gives the same graph, the same outputs and the same speed (measured). Its layout
  optimisations are specific to the processor, so the key holds the graph's sha256, the
  onnxruntime version, the optimisation level and this CPU's model and flags. The folder is kept
  under MAX_GRAPH_BYTES: after each new entry the least recently used ones go (a hit renews its
  entry's time), so re-exported bundles and new onnxruntime versions do not pile up.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

CHECKSUMS_FILE = "checksums.json"
MAX_CHECKSUMS = 2000  # entries kept (oldest dropped)
MAX_GRAPH_BYTES = 512 * 1024 * 1024  # optimised graphs kept (least recently used dropped)


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off."""
    if os.environ.get("EDGE_S2S_NO_CACHE", "") not in ("", "0"):
        return None
    root = os.environ.get("EDGE_S2S_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "edge-s2s"


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read_checksums(path: Path) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # only when writing: ~3 ms of every start otherwise (bench_cold_start.py)

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


def known_sha256(path: Path, compute) -> str:
    """The file's sha256: remembered when the file is unchanged since it was last hashed, else
    `compute(path)` (and remembered)."""
    return known_sha256s([path], compute)[path]


def known_sha256s(paths: list[Path], compute) -> dict[Path, str]:
    """known_sha256 for several files with one read (and at most one write) of the store: a bundle
    checks all its files on every start, and the store can hold thousands of entries."""
    root = cache_dir()
    found: dict[Path, str] = {}
    stats = {}
    for p in paths:
        try:
            stats[p] = p.stat()
        except OSError:
            found[p] = compute(p)
    if root is None:
        return {**found, **{p: compute(p) for p in stats}}
    store = root / CHECKSUMS_FILE
    entries = _read_checksums(store) if stats else {}
    changed = False
    for p, st in stats.items():
        key = str(p.resolve())
        hit = entries.get(key)
        if isinstance(hit, dict) and hit.get("id") == _identity(st) and isinstance(hit.get("sha256"), str):
            found[p] = hit["sha256"]
            continue
        found[p] = compute(p)
        entries.pop(key, None)
        entries[key] = {"id": _identity(st), "sha256": found[p]}
        changed = True
    if changed:
        if len(entries) > MAX_CHECKSUMS:
            entries = dict(list(entries.items())[-MAX_CHECKSUMS:])
        _write_atomic(store, json.dumps(entries).encode("utf-8"))
    return found


@lru_cache(maxsize=1)
def cpu_fingerprint() -> str:
    """This processor's model and feature flags (what layout optimisations depend on)."""
    text = os.uname().machine if hasattr(os, "uname") else ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    text += line
                if line.strip() == "":  # the first processor is enough
                    break
    except OSError:
        import platform

        text += platform.machine() + platform.processor()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def optimized_graph(source_sha256: str, level: str) -> Path | None:
    """Where the optimised copy of a graph (by its sha256) is kept, or None when caching is off."""
    root = cache_dir()
    if root is None:
        return None
    import onnxruntime as ort

    key = hashlib.sha256(f"{source_sha256}|{ort.__version__}|{level}|{cpu_fingerprint()}".encode()).hexdigest()[:40]
    return root / "ort" / f"{key}.onnx"


def used(path: Path) -> None:
    """Mark a cache entry as just used (its modification time), for prune_graphs' LRU order."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune_graphs(folder: Path, keep_bytes: int | None = None) -> list[Path]:
    """Remove the least recently used optimised graphs until `folder` holds at most `keep_bytes`;
    the paths removed (failures are ignored: the cache is only a shortcut)."""
    keep_bytes = MAX_GRAPH_BYTES if keep_bytes is None else keep_bytes
    try:
        entries = []
        for p in folder.glob("*.onnx"):
            st = p.stat()
            entries.append((st.st_mtime_ns, st.st_size, p))
    except OSError:
        return []
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= keep_bytes:
            break
        try:
            p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p)
    return removed
