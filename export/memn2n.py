"""Export an End-To-End Memory Network run (`edge-s2s train babi`) as a one-graph bundle.

memn2n.onnx is `MemN2N.forward` itself (story, question, n_sentences -> answer log-probs,
per-hop attention), exported like the other graphs (TorchScript exporter, opset
graphs.OPSET, `dynamic_axes` for B, M, J and Jq; example sizes >= 2 and pairwise
different so no axis is frozen or tied to another), then checked by onnx.checker. The
contract is runtime/tasks/memory_manifest.py.

Parity is proven before the bundle is renamed into place: the runtime's `MemoryNetwork`
(its tokenisation and padding, ONNX Runtime) against PyTorch on the same held-out
questions, at several batch sizes and memory lengths (none of them the export example's):
answer log-probs and attention within 1e-4, identical answers. Failing raises ParityError
and nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..runtime import manifest as mf
from ..runtime.bundle import sha256_file
from ..runtime.manifest import GraphSpec, TokensSpec
from ..runtime.tasks import memory_manifest as mm
from ..runtime.tasks.memory_manifest import AnswersSpec, MemoryManifest
from ..runtime.tasks.memory_network import MemoryNetwork
from ..runtime.tasks.story import question_words
from ..runtime.tools.run_logs import read_metrics
from ..train.core.errors import RunError
from ..train.memn2n.loop import load_memn2n_run, read_heldout, read_results
from ..train.memn2n.model import MemN2N
from .bundle_writer import ExportError, staged_bundle, write_manifest
from .graphs import _quiet_export, check_model, graph_io, set_output_shapes
from .parity import TOL, ParityError

EXAMPLE_B, EXAMPLE_M, EXAMPLE_J, EXAMPLE_JQ = 2, 5, 6, 4
# (batch size, memory length: sentences kept per story, 0 = the model's whole memory)
PARITY_SETTINGS = [(1, 0), (3, 2), (7, 0), (4, 1)]
GOLDEN_CASES = 4


class MemN2NGraph(nn.Module):
    """forward with the graph's positional inputs (RN off: time indices from n_sentences)."""

    def __init__(self, model: MemN2N):
        super().__init__()
        self.model = model

    def forward(self, story, question, n_sentences):
        return self.model(story, question, n_sentences)


def example_inputs(model: MemN2N) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids at the export example sizes; the second story uses fewer rows and words."""
    g = torch.Generator().manual_seed(0)
    V = len(model.vocab)
    story = torch.randint(4, V, (EXAMPLE_B, EXAMPLE_M, EXAMPLE_J), generator=g)
    story[1, 3:] = 0
    story[1, :, 4:] = 0
    question = torch.randint(4, V, (EXAMPLE_B, EXAMPLE_JQ), generator=g)
    question[1, 2:] = 0
    return story, question, torch.tensor([EXAMPLE_M, 3], dtype=torch.long)


def export_memn2n_graph(model: MemN2N, path: Path) -> Path:
    """memn2n.onnx with dynamic B, M, J, Jq, declared output shapes fixed, onnx.checker run."""
    model.eval()
    axes = {mm.STORY: {0: "B", 1: "M", 2: "J"}, mm.QUESTION: {0: "B", 1: "Jq"}, mm.N_SENTENCES: {0: "B"},
            mm.ANSWER_LOGPROBS: {0: "B"}, mm.ATTENTION: {0: "B", 2: "M"}}
    with torch.no_grad():
        _quiet_export(MemN2NGraph(model).eval(), example_inputs(model), path, mm.INPUTS, mm.OUTPUTS, axes)
    set_output_shapes(path, {mm.ANSWER_LOGPROBS: ["B", len(model.answers)],
                             mm.ATTENTION: ["B", model.cfg.hops, "M"]})
    check_model(path)
    return path


def torch_answer(model: MemN2N, story: np.ndarray, question: np.ndarray, n: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's (answer log-probs, attention) on the runtime's input arrays."""
    with torch.no_grad():
        logp, att = model(torch.from_numpy(story), torch.from_numpy(question), torch.from_numpy(n))
    return logp.numpy(), att.numpy()


def _window(story: list[str], keep: int) -> list[str]:
    return story[-keep:] if keep else story


def memn2n_parity(net: MemoryNetwork, model: MemN2N, examples: list[dict[str, Any]],
                  tol: float = TOL) -> dict[str, Any]:
    """The runtime `net` (a MemoryNetwork on the staged bundle) vs PyTorch on held-out examples.

    For each (batch, memory length) of PARITY_SETTINGS: the same arrays (the runtime's
    encoding) through ONNX Runtime and the torch model; ParityError when an answer differs or
    a log-prob / attention weight differs by more than `tol`.
    """
    rows, worst, wrong, asked = [], 0.0, 0, 0
    longest = sorted(examples, key=lambda ex: -len(ex["story"]))  # the first setting reads the longest story
    for i, (batch, keep) in enumerate(PARITY_SETTINGS):
        pool = longest if i == 0 else examples
        chosen = [pool[(i * 5 + j) % len(pool)] for j in range(batch)]
        mems = [net.memory(_window(ex["story"], keep)) for ex in chosen]
        qwords = [question_words(ex["question"]) for ex in chosen]
        arrays = net.encode(mems, qwords)
        o_lp, o_att = net.run(*arrays)
        t_lp, t_att = torch_answer(model, *arrays)
        d_lp, d_att = float(np.abs(o_lp - t_lp).max()), float(np.abs(o_att - t_att).max())
        same = bool(np.array_equal(o_lp.argmax(-1), t_lp.argmax(-1)))
        M, J = arrays[0].shape[1:]
        rows.append({"batch": batch, "memory": int(M), "words": int(J), "question_words": int(arrays[1].shape[1]),
                     "max_abs_diff_logprobs": d_lp, "max_abs_diff_attention": d_att, "same_answers": same})
        if not same or max(d_lp, d_att) > tol:
            raise ParityError(f"memn2n.onnx differs from PyTorch at batch {batch}, memory {M}, {J} words: answers "
                              f"{'identical' if same else 'DIFFER'}, log-prob |diff| {d_lp:.3g}, attention |diff| "
                              f"{d_att:.3g} (tolerance {tol:g})")
        worst = max(worst, d_lp, d_att)
        if keep == 0:
            answers = [net.answers[k] for k in o_lp.argmax(-1)]
            wrong += sum(a != ex["answer"] for a, ex in zip(answers, chosen))
            asked += batch
    return {"enforced": True, "tolerance": tol, "max_abs_diff": worst, "settings": rows,
            "heldout_error": wrong / max(asked, 1), "heldout_questions": asked}


def golden_cases(net: MemoryNetwork, model: MemN2N, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PyTorch's answers to a few held-out questions (tasks taken in turn), for `edge-s2s verify`."""
    by_task: dict[Any, list[dict[str, Any]]] = {}
    for ex in examples:
        by_task.setdefault(ex.get("task"), []).append(ex)
    turns: list[dict[str, Any]] = []
    for i in range(max(len(exs) for exs in by_task.values())):
        turns += [exs[i] for exs in by_task.values() if i < len(exs)]
    cases = []
    for ex in turns[:GOLDEN_CASES]:
        arrays = net.encode([net.memory(ex["story"])], [question_words(ex["question"])])
        lp, att = torch_answer(model, *arrays)
        cases.append({"story": ex["story"], "question": ex["question"], "answer": model.answers[int(lp[0].argmax())],
                      "expected_answer": ex["answer"], "log_probs": [float(x) for x in lp[0]],
                      "attention": [[float(x) for x in hop] for hop in att[0]]})
    return cases


@dataclass
class MemN2NExportReport:
    """What `export_memn2n_bundle` wrote and proved."""

    bundle: Path
    checkpoint: Path
    manifest: MemoryManifest
    parity: dict = field(default_factory=dict)
    golden_cases: int = 0
    files: dict[str, str] = field(default_factory=dict)


def export_memn2n_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best",
                         parity: bool = True) -> MemN2NExportReport:
    """Export an answer run as a bundle (graph, tokens, answers, golden cases, manifest), atomically."""
    run, out = Path(run_dir), Path(out_dir)
    try:
        model, run_cfg, ck_path = load_memn2n_run(run, checkpoint)
        examples = read_heldout(run)
    except RunError as e:
        raise ExportError(f"{run} cannot be exported as a memory network: {e}") from None
    cfg = model.cfg
    results = read_results(run)
    with staged_bundle(out, check=MemoryManifest.load) as tmp:
        graph = export_memn2n_graph(model, tmp / mm.GRAPH_FILE)
        model.vocab.save(tmp / mf.TOKENS_FILE)
        mm.write_answers(tmp / mm.ANSWERS_FILE, model.answers)
        g_in, g_out = graph_io(graph)
        manifest = MemoryManifest(
            task=mf.ANSWER_TASK,
            tokens=TokensSpec(file=mf.TOKENS_FILE, size=len(model.vocab)),
            answers=AnswersSpec(file=mm.ANSWERS_FILE, size=len(model.answers)),
            graph=GraphSpec(mm.GRAPH_FILE, g_in, g_out),
            memory_size=cfg.memory_size, hops=cfg.hops, dim=cfg.dim, encoding=cfg.encoding,
            preprocessing={"type": "story", "lowercase": True, "words": "word tokens, punctuation dropped",
                           "keep": "most recent memory_size sentences"},
            model={"architecture": "End-To-End Memory Network (Sukhbaatar et al. 2015)", **cfg.to_dict(),
                   "vocab_size": len(model.vocab), "answers": len(model.answers), "tasks": run_cfg.get("tasks")},
            source_checkpoint_sha256=sha256_file(ck_path),
            created_by="edge-s2s export",
        )
        history = read_metrics(run)
        training = {"checkpoint": ck_path.name, "history": history, "tasks": run_cfg.get("tasks"),
                    "size": run_cfg.get("train", {}).get("size"), **results}
        metrics: dict[str, Any] = {"training": training}
        write_manifest(tmp, manifest, metrics)
        net = MemoryNetwork.load(tmp, provider="cpu")
        cases = golden_cases(net, model, examples)
        (tmp / mf.GOLDEN_FILE).write_text(json.dumps({"from": "pytorch", "cases": cases}, indent=1) + "\n",
                                          encoding="utf-8")
        files = write_manifest(tmp, manifest, metrics)
        report: dict = {}
        if parity:
            report = memn2n_parity(MemoryNetwork.load(tmp, provider="cpu"), model, examples)
            metrics["parity"] = report
            files = write_manifest(tmp, manifest, metrics)
    return MemN2NExportReport(bundle=out, checkpoint=ck_path, manifest=manifest, parity=report,
                              golden_cases=len(cases), files=files)


def summary_lines(report: MemN2NExportReport) -> list[str]:
    """A few readable lines about what was written and proved (`edge-s2s export`)."""
    lines = [f"exported {report.checkpoint} -> {report.bundle}"]
    for name in sorted(report.files):
        size = (Path(report.bundle) / name).stat().st_size
        lines.append(f"  {name:<20}{size / 1e6:8.2f} MB")
    p = report.parity
    if p:
        lines.append(f"parity (enforced, tolerance {p['tolerance']}): max |onnx - torch| = {p['max_abs_diff']:.2e} "
                     "over log-probs and attention; answers identical at "
                     + ", ".join(f"batch {s['batch']}/memory {s['memory']}" for s in p["settings"]))
    else:
        lines.append("parity: not checked (--no-parity)")
    lines.append(f"golden.json: {report.golden_cases} cases (edge-s2s verify re-runs them)")
    return lines
