"""`edge-s2s verify`: re-run a bundle's golden cases (PyTorch decodes) on this device.

golden.json::

    {"cases": [{"source": str,          (captioners: "image", transcribers: "audio": a file in the bundle, instead;
                                         generators: "condition": int and "prefix": [ids])
                "search": {"type": "greedy"} | {"type": "beam", "size": int, "length_penalty": float,
                                                "n_best": int, "early_stop": bool}
                          | {"type": "sample", "temperature": float, "top_k": int, "top_p": float, "seed": int},
                "max_length": int,
                "hypotheses": [{"ids": [...], "log_prob": float, "score": float}, ...]}]}

A case passes when every expected hypothesis has identical ids and a log-prob within
1e-4 (1e-3 on a non-CPU provider). Memory networks (task "answer") have cases of their own
(story, question, answer, log_probs, attention): runtime/tasks/memory_network.py verify_memory_bundle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import schema as sc
from ..bundle import FIX, Bundle
from ..errors import BundleError
from ..manifest import ANSWER_TASK, GOLDEN_FILE, MAX_LENGTH_CEILING
from ..search import Beam, Greedy, Sample, SearchConfig
from ..tasks.memory_network import MemoryNetwork


@dataclass
class CaseResult:
    description: str
    passed: bool
    expected: list[dict] = field(default_factory=list)
    got: list[dict] = field(default_factory=list)
    max_log_prob_diff: float = 0.0


G = "golden.json"


def search_from_json(d: dict) -> SearchConfig:
    """A golden case's search, each field checked (golden.json is part of an untrusted bundle)."""
    d = sc.dict_field(d, "search", G)
    kind = d.get("type")
    if kind == "greedy":
        return Greedy()
    if kind == "beam":
        return Beam(size=sc.int_field(d.get("size"), "search.size", 1, 64, G),
                    length_penalty=sc.number_field(d.get("length_penalty", 1.0), "search.length_penalty", G),
                    n_best=sc.int_field(d.get("n_best", 1), "search.n_best", 1, 64, G),
                    early_stop=sc.bool_field(d.get("early_stop", True), "search.early_stop", G))
    if kind == "sample":
        seed = d.get("seed")
        return Sample(temperature=sc.number_field(d.get("temperature", 1.0), "search.temperature", G),
                      top_k=sc.int_field(d.get("top_k", 0), "search.top_k", 0, None, G),
                      top_p=sc.number_field(d.get("top_p", 1.0), "search.top_p", G),
                      seed=None if seed is None else sc.int_field(seed, "search.seed", 0, None, G))
    raise BundleError(f"golden.json: unknown search type {kind!r} (greedy, beam or sample): re-export the bundle")


def _read_cases(path: Path) -> list[dict]:
    golden = Path(path, GOLDEN_FILE)
    if not golden.is_file():
        raise BundleError(f"bundle {path} has no {GOLDEN_FILE}: {FIX} to get golden cases")
    try:
        doc = json.loads(golden.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{golden} is not valid JSON ({type(e).__name__}): {FIX}") from None
    cases = sc.list_field(sc.require(sc.dict_field(doc, "the file", G), "cases", "", G), "cases", G)
    return [sc.dict_field(c, f"cases[{i}]", G) for i, c in enumerate(cases)]


def _check_case(case: dict, i: int, path: Path) -> tuple[SearchConfig, int | None, list[dict]]:
    """(search, max_length, expected hypotheses) of golden case i; its input fields checked too."""
    at = f"cases[{i}]"
    search = search_from_json(sc.require(case, "search", at, G))
    max_length = case.get("max_length")
    if max_length is not None:
        max_length = sc.int_field(max_length, f"{at}.max_length", 1, MAX_LENGTH_CEILING, G)
    expected = sc.list_field(sc.require(case, "hypotheses", at, G), f"{at}.hypotheses", G)
    for k, h in enumerate(expected):
        h = sc.dict_field(h, f"{at}.hypotheses[{k}]", G)
        for t in sc.list_field(sc.require(h, "ids", f"{at}.hypotheses[{k}]", G), f"{at}.hypotheses[{k}].ids", G):
            sc.int_field(t, f"{at}.hypotheses[{k}].ids", 0, None, G)
        sc.number_field(sc.require(h, "log_prob", f"{at}.hypotheses[{k}]", G), f"{at}.hypotheses[{k}].log_prob", G)
    if "condition" in case:
        sc.int_field(case["condition"], f"{at}.condition", 0, None, G)
        for t in sc.list_field(case.get("prefix", []), f"{at}.prefix", G):
            sc.int_field(t, f"{at}.prefix", 0, None, G)
    elif "image" in case:
        sc.bundle_path(path, case["image"], f"{at}.image", G)
    elif "audio" in case:
        sc.bundle_path(path, case["audio"], f"{at}.audio", G)
    else:
        sc.str_field(sc.require(case, "source", at, G), f"{at}.source", source=G)
    return search, max_length, expected


def verify_bundle(path: str | Path, provider: str = "cpu", loop: str = "compiled") -> list[CaseResult]:
    from ..tasks.loading import bundle_task

    if bundle_task(path) == ANSWER_TASK:  # memory networks: answers, not decodes
        return verify_memory_bundle(path, provider=provider)
    path = Path(path)
    Bundle.check(path, full=True)  # verify hashes every file afresh (loading may use cached checksums)
    cases = _read_cases(path)
    checked = [_check_case(c, i, path) for i, c in enumerate(cases)]  # every case, before any decoding
    from ..tasks.loading import load_any

    model = load_any(path, provider=provider, loop=loop)
    tol = 1e-4 if model.providers[0] == "CPUExecutionProvider" else 1e-3
    out = []
    for case, (search, max_length, expected) in zip(cases, checked):
        if "condition" in case:  # generator: a condition id and a forced prefix
            prefix = [int(i) for i in case.get("prefix", [])]
            source = f"condition {case['condition']}, prefix of {len(prefix)}"
            raws = model.decode_encoded(model.encode_conditions([int(case["condition"])]), search, max_length,
                                        prefix=[prefix])[0]
            result = model._result(raws, 0)
        elif "image" in case:  # captioner: the golden image ships in the bundle
            source = case["image"]
            result = model.caption([path / case["image"]], search=search, max_length=max_length)[0]
        elif "audio" in case:  # transcriber: the golden recording ships in the bundle
            source = case["audio"]
            result = model.transcribe([path / case["audio"]], search=search, max_length=max_length)[0]
        else:
            source = case["source"]
            result = model.generate([source], search=search, max_length=max_length)[0]
        got = [{"ids": h.ids, "log_prob": h.log_prob, "score": h.score} for h in result.hypotheses]
        ok = len(got) >= len(expected)
        diff = 0.0
        for e, g in zip(expected, got):
            ok = ok and list(e["ids"]) == list(g["ids"])
            diff = max(diff, abs(float(e["log_prob"]) - g["log_prob"]))
        ok = ok and diff <= tol
        sj = case["search"]
        name = sj.get("type", "?") + (f"{sj.get('size')}" if "size" in sj else "")
        src = source if len(source) <= 50 else source[:47] + "..."
        desc = f"{name} {src!r}" + ("" if ok else f" (expected {expected[0]['ids'] if expected else []}, got "
                                                   f"{got[0]['ids'] if got else []}, log-prob diff {diff:.2e})")
        out.append(CaseResult(desc, ok, expected, got, diff))
    return out


def verify_memory_bundle(path: str | Path, provider: str = "cpu") -> list[CaseResult]:
    """Re-run golden.json (PyTorch's answers to held-out questions): same answer, log-probs and
    attention within 1e-4 on CPU (1e-3 elsewhere)."""
    MemoryNetwork.check(path, full=True)  # every file hashed afresh
    cases = _read_cases(Path(path))
    for i, c in enumerate(cases):
        at = f"cases[{i}]"
        story = sc.require(c, "story", at, G)
        if not isinstance(story, (str, list)) or (isinstance(story, list) and not all(isinstance(x, str) for x in story)):
            raise sc.fail(f"{at}.story", "a text or a list of sentences", story, G)
        for key in ("question", "answer"):
            sc.str_field(sc.require(c, key, at, G), f"{at}.{key}", source=G)
        for key in ("log_probs", "attention"):
            sc.list_field(sc.require(c, key, at, G), f"{at}.{key}", G)
    stories, questions = [c["story"] for c in cases], [c["question"] for c in cases]
    net = MemoryNetwork.load(path, provider=provider)
    tol = 1e-4 if net.providers[0] == "CPUExecutionProvider" else 1e-3
    out = []
    for i, (case, got) in enumerate(zip(cases, net.answer_many(stories, questions))):
        try:
            want_lp = np.asarray(case["log_probs"], dtype=np.float64)
            want_att = np.asarray(case["attention"], dtype=np.float64)
        except (ValueError, TypeError):
            raise sc.fail(f"cases[{i}].log_probs / attention", "lists of numbers", "something else", G) from None
        same_shape = want_lp.shape == got.log_probs.shape and want_att.shape == got.attention.shape
        diff = float(max(np.abs(want_lp - got.log_probs).max(), np.abs(want_att - got.attention).max())
                     if same_shape else np.inf)
        ok = got.text == case["answer"] and diff <= tol
        desc = f"{case['question']!r} -> {got.text}" + ("" if ok else f" (expected {case['answer']}, max diff "
                                                                          f"{diff:.2e})")
        out.append(CaseResult(desc, ok, [{"answer": case["answer"]}], [{"answer": got.text}], diff))
    return out
