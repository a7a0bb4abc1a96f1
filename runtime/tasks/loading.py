"""Which runtime class serves a bundle: read the manifest's task, load the matching class.

Commands that take any bundle (verify, profile) call `load_any`; an app that knows what
it loads calls `Seq2Seq.load`, `Captioner.load` or `Generator.load` directly. A memory
network (task "answer", runtime/tasks/memory_network.py) answers with one graph and no search
loop: `bundle_task` tells it apart, `load_any` refuses it with a line naming `edge-s2s answer`.
"""

from __future__ import annotations

from pathlib import Path

from ..manifest import Manifest, read_manifest_dict
from .seq2seq import Seq2Seq


def bundle_task(path: str | Path) -> str:
    """The task a bundle serves, read before any manifest class: a memory network's ("answer")
    has no decoder step, so it is loaded by `MemoryNetwork.load`, not a `Seq2Seq` class."""
    return str(read_manifest_dict(path).get("task", "translate"))


def runtime_class(task: str) -> type[Seq2Seq]:
    """The class for a manifest task ("translate", "caption", "generate", "transcribe")."""
    if task == "caption":
        from .captioner import Captioner

        return Captioner
    if task == "generate":
        from .generator import Generator

        return Generator
    if task == "transcribe":
        from .transcriber import Transcriber

        return Transcriber
    return Seq2Seq


def load_any(path: str | Path, provider: str = "cpu", threads: int = 0, loop: str = "compiled") -> Seq2Seq:
    """Load a bundle of any task with its runtime class."""
    cls = runtime_class(Manifest.load(path).task)
    return cls.load(path, provider=provider, threads=threads, loop=loop)
