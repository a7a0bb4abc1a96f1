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

from ..bundle import FIX
from ..errors import BundleError
from ..manifest import ANSWER_TASK, GOLDEN_FILE
from ..search import Beam, Greedy, Sample, SearchConfig
from ..tasks.memory_network import MemoryNetwork


@dataclass
class CaseResult:
    description: str
    passed: bool
    expected: list[dict] = field(default_factory=list)
    got: list[dict] = field(default_factory=list)
    max_log_prob_diff: float = 0.0


def search_from_json(d: dict) -> SearchConfig:
    kind = d.get("type")
    if kind == "greedy":
        return Greedy()
    if kind == "beam":
        return Beam(size=int(d["size"]), length_penalty=float(d.get("length_penalty", 1.0)),
                    n_best=int(d.get("n_best", 1)), early_stop=bool(d.get("early_stop", True)))
    if kind == "sample":
        return Sample(temperature=float(d.get("temperature", 1.0)), top_k=int(d.get("top_k", 0)),
                      top_p=float(d.get("top_p", 1.0)), seed=d.get("seed"))
    raise BundleError(f"golden.json: unknown search type {kind!r} (greedy, beam or sample): re-export the bundle")


def verify_bundle(path: str | Path, provider: str = "cpu", loop: str = "compiled") -> list[CaseResult]:
    from ..tasks.loading import bundle_task

    if bundle_task(path) == ANSWER_TASK:  # memory networks: answers, not decodes
        from .verify import verify_memory_bundle

        return verify_memory_bundle(path, provider=provider)
    golden = Path(path, GOLDEN_FILE)
    if not golden.is_file():
        raise BundleError(f"bundle {path} has no {GOLDEN_FILE}: re-export it with `edge-s2s export` to get golden cases")
    try:
        cases = json.loads(golden.read_text(encoding="utf-8"))["cases"]
    except (ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{golden} is malformed ({type(e).__name__}: {e}): re-export the bundle") from None
    from ..tasks.loading import load_any

    model = load_any(path, provider=provider, loop=loop)
    tol = 1e-4 if model.providers[0] == "CPUExecutionProvider" else 1e-3
    out = []
    for case in cases:
        search = search_from_json(case["search"])
        if "condition" in case:  # generator: a condition id and a forced prefix
            prefix = [int(i) for i in case.get("prefix", [])]
            case["source"] = f"condition {case['condition']}, prefix of {len(prefix)}"
            raws = model.decode_encoded(model.encode_conditions([int(case["condition"])]), search,
                                        case.get("max_length"), prefix=[prefix])[0]
            result = model._result(raws, 0)
        elif "image" in case:  # captioner: the golden image ships in the bundle
            case["source"] = case["image"]
            result = model.caption([Path(path, case["image"])], search=search, max_length=case.get("max_length"))[0]
        elif "audio" in case:  # transcriber: the golden recording ships in the bundle
            case["source"] = case["audio"]
            result = model.transcribe([Path(path, case["audio"])], search=search, max_length=case.get("max_length"))[0]
        else:
            result = model.generate([case["source"]], search=search, max_length=case.get("max_length"))[0]
        expected = case["hypotheses"]
        got = [{"ids": h.ids, "log_prob": h.log_prob, "score": h.score} for h in result.hypotheses]
        ok = len(got) >= len(expected)
        diff = 0.0
        for e, g in zip(expected, got):
            ok = ok and list(e["ids"]) == list(g["ids"])
            diff = max(diff, abs(float(e["log_prob"]) - g["log_prob"]))
        ok = ok and diff <= tol
        name = case["search"].get("type", "?") + (f"{case['search'].get('size')}" if "size" in case["search"] else "")
        src = case["source"] if len(case["source"]) <= 50 else case["source"][:47] + "..."
        desc = f"{name} {src!r}" + ("" if ok else f" (expected {expected[0]['ids'] if expected else []}, got "
                                                   f"{got[0]['ids'] if got else []}, log-prob diff {diff:.2e})")
        out.append(CaseResult(desc, ok, expected, got, diff))
    return out


def verify_memory_bundle(path: str | Path, provider: str = "cpu") -> list[CaseResult]:
    """Re-run golden.json (PyTorch's answers to held-out questions): same answer, log-probs and
    attention within 1e-4 on CPU (1e-3 elsewhere)."""
    golden = Path(path, GOLDEN_FILE)
    if not golden.is_file():
        raise BundleError(f"bundle {path} has no {GOLDEN_FILE}: {FIX} to get golden cases")
    try:
        cases = json.loads(golden.read_text(encoding="utf-8"))["cases"]
        stories, questions = [c["story"] for c in cases], [c["question"] for c in cases]
    except (ValueError, KeyError, TypeError) as e:
        raise BundleError(f"{golden} is malformed ({type(e).__name__}: {e}): {FIX}") from None
    net = MemoryNetwork.load(path, provider=provider)
    tol = 1e-4 if net.providers[0] == "CPUExecutionProvider" else 1e-3
    out = []
    for case, got in zip(cases, net.answer_many(stories, questions)):
        want_lp = np.asarray(case["log_probs"], dtype=np.float64)
        want_att = np.asarray(case["attention"], dtype=np.float64)
        same_shape = want_lp.shape == got.log_probs.shape and want_att.shape == got.attention.shape
        diff = float(max(np.abs(want_lp - got.log_probs).max(), np.abs(want_att - got.attention).max())
                     if same_shape else np.inf)
        ok = got.text == case["answer"] and diff <= tol
        desc = f"{case['question']!r} -> {got.text}" + ("" if ok else f" (expected {case['answer']}, max diff "
                                                                          f"{diff:.2e})")
        out.append(CaseResult(desc, ok, [{"answer": case["answer"]}], [{"answer": got.text}], diff))
    return out
