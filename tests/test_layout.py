"""The tree reads like the design (docs/architecture.md): layers whose imports only run downwards
(cli -> export -> train -> runtime), sub-packages with no circles among them, no import circle
between any two modules (lazy imports inside functions count), and no code folder so full that
its file names have to do a folder's job."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from paths import REPO

PKG = "edge_s2s"
LAYERS = ("runtime", "train", "export", "cli")
BELOW = {"runtime": set(), "train": {"runtime"}, "export": {"runtime", "train"}, "cli": {"runtime", "train", "export"}}
NEVER_IN_RUNTIME = {"torch", "onnx", "onnxscript"}  # an app that embeds the runtime installs neither
MAX_MODULES = 15


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module of the four layers."""
    out = {}
    for layer in LAYERS:
        for path in [*(REPO / layer).rglob("*.py"), *(REPO / layer).rglob("*.pyx")]:
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join([PKG, *(parts[:-1] if is_pkg else parts)])] = (path, is_pkg)
    return out


MODULES = _modules()


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(modules of the package that `name` imports, top-level names of other packages it imports),
    every import statement counted, those inside functions too."""
    path, is_pkg = MODULES[name]
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".pyx":  # Cython: its Python-level `from .x import` lines are what it imports
        text = "\n".join(f"from {m} import _" for m in re.findall(r"^from (\.[\w.]*) import", text, re.M))
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            module = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            if module.split(".")[0] != PKG:
                theirs.add(module.split(".")[0])
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                ours.add(full if full in MODULES else module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.split(".")[0] == PKG else theirs).add(
                    alias.name if alias.name.split(".")[0] == PKG else alias.name.split(".")[0])
    return {m for m in ours if m in MODULES}, theirs


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _layer(name: str) -> str:
    return name.split(".")[1]


def test_the_analysis_sees_the_whole_package():
    assert len(MODULES) > 100 and "edge_s2s.runtime._loop" in MODULES
    assert "edge_s2s.runtime.manifest" in GRAPH["edge_s2s.runtime.bundle"][0]  # relative imports resolved
    assert "torch" in GRAPH["edge_s2s.train.core.epochs"][1]


def test_no_import_circle_between_modules():
    assert _cycles({m: deps for m, (deps, _) in GRAPH.items()}) == []


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_only_run_downwards(layer):
    wrong = sorted(f"{m} imports {d}" for m, (deps, _) in GRAPH.items() if _layer(m) == layer
                   for d in deps if _layer(d) != layer and _layer(d) not in BELOW[layer])
    assert wrong == []


def test_runtime_imports_neither_torch_nor_onnx():
    wrong = sorted(f"{m} imports {t}" for m, (_, theirs) in GRAPH.items() if _layer(m) == "runtime"
                   for t in theirs & NEVER_IN_RUNTIME)
    assert wrong == []


def _package(name: str) -> str:
    """The sub-package a module belongs to; a layer's own top-level modules form one node (its
    __init__ re-exports the public API from below, so it is left out of this graph)."""
    path, is_pkg = MODULES[name]
    return name if is_pkg else name.rsplit(".", 1)[0]


@pytest.mark.parametrize("layer", LAYERS)
def test_no_circle_between_the_sub_packages_of_a_layer(layer):
    graph: dict[str, set[str]] = {}
    for m, (deps, _) in GRAPH.items():
        if _layer(m) != layer or m == f"{PKG}.{layer}":
            continue
        for d in deps:
            if _layer(d) == layer and d != f"{PKG}.{layer}" and _package(d) != _package(m):
                graph.setdefault(_package(m), set()).add(_package(d))
    assert _cycles(graph) == []


def test_no_code_folder_holds_more_than_fifteen_modules():
    full = {str(d.relative_to(REPO)): n for layer in LAYERS for d in [REPO / layer, *(REPO / layer).rglob("*")]
            if d.is_dir() and d.name != "__pycache__"
            and (n := len([p for p in d.iterdir() if p.suffix in (".py", ".pyx") and p.name != "__init__.py"]))
            > MAX_MODULES}
    assert full == {}
