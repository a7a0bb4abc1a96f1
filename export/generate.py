"""Export a generator run (language model or pixel model) as a bundle.

The encoder graph is the condition encoder (condition int64 [B] -> initial states); the
step graph has no memory and no attention; the runtime loop is the one every bundle
uses. Same guarantees as the other exporters (export/bundle_writer.py, whose helpers this
reuses): onnx.checker, step parity with PyTorch at sizes other than the export example,
whole-search parity (greedy, beam, and a forced-prefix decode), atomic write.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..runtime import manifest as mf
from ..runtime.manifest import Manifest
from ..runtime.search import Beam, Greedy, Sample
from ..runtime.text import Vocab
from ..runtime.tools.run_logs import read_metrics
from ..train.core.checkpoint import load_checkpoint
from ..train.core.run_dir import TOKENS_FILE
from ..train.core.step_contract import StepGraph
from ..train.generate.config import GeneratorTrainConfig
from ..train.generate.loop import TASK, load_generator_data, load_generator_run_config
from ..train.generate.model import make_generator
from .bundle_writer import (
    ExportError,
    ExportReport,
    _quantize,
    bundle_manifest,
    resolve_checkpoint,
    staged_bundle,
    write_manifest,
)
from .graphs import _quiet_export, check_model, set_output_shapes, step_axes
from .parity import TOL, compare_searches, graph_parity, load_runtime

CONDITION = "condition"
EXAMPLE_B, EXAMPLE_N, EXAMPLE_K = 2, 3, 3
TEXT_MAX_LENGTH = 400
GOLDEN = [({"type": "greedy"}, Greedy()),
          ({"type": "beam", "size": 3, "length_penalty": 1.0, "n_best": 1, "early_stop": True}, Beam(size=3)),
          ({"type": "sample", "temperature": 1.0, "top_k": 0, "top_p": 1.0, "seed": 7}, Sample(seed=7))]


class EncoderGraph(nn.Module):
    """`encode(condition)` with positional outputs in manifest order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, condition):
        out = self.model.encode(condition)
        return tuple(out[n] for n in self.model.encoder_output_names())


def load_generator_run(run_dir: str | Path, checkpoint: str | Path = "best"):
    """(model in eval mode, vocab, train config, checkpoint path, run config.json)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ExportError(f"run directory {run} does not exist: pass the directory training wrote")
    from ..train.core.errors import RunError

    try:
        cfg = load_generator_run_config(run)
    except RunError as e:
        raise ExportError(f"{run} cannot be exported as a generator: {e}") from None
    ck_path = resolve_checkpoint(run, checkpoint)
    ck = load_checkpoint(ck_path)
    if ck.get("task") != TASK:
        raise ExportError(f"{ck_path} is not a generator checkpoint")
    vocab = Vocab.load(run / TOKENS_FILE)
    if len(vocab) != ck["vocab_size"]:
        raise ExportError(f"{run / TOKENS_FILE} has {len(vocab)} tokens but the checkpoint was trained with "
                          f"{ck['vocab_size']}: the run directory is inconsistent")
    model = make_generator(cfg.model, len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    run_cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    return model, vocab, cfg, ck_path, run_cfg


def _shape(spec: mf.StateSpec, rows: str) -> list:
    return [rows if d == "N" else d for d in spec.shape]


def export_generator_graphs(model: nn.Module, directory: Path, n_conditions: int) -> tuple[Path, Path]:
    """Both graphs into `directory`, declared shapes fixed, onnx.checker run."""
    enc_path, step_path = directory / mf.ENCODER_FILE, directory / mf.STEP_FILE
    enc_names = model.encoder_output_names()
    cond = torch.arange(EXAMPLE_B, dtype=torch.long) % max(n_conditions, 1)
    specs = model.state_specs()
    with torch.no_grad():
        _quiet_export(EncoderGraph(model).eval(), (cond,), enc_path, [CONDITION], enc_names,
                      {CONDITION: {0: "B"}, **{n: {0: "B"} for n in enc_names}})
        states = model.initial_states(model.encode(cond))
        N, K = EXAMPLE_N, EXAMPLE_K
        row = torch.arange(N) % EXAMPLE_B
        args = (torch.arange(N) % (model.vocab_size - 4) + 4, row, row.clone(), torch.tensor([K]),
                *(states[s.name] for s in specs))
        _quiet_export(StepGraph(model).eval(), args, step_path, model.step_input_names(), model.step_output_names(),
                      step_axes(model, variable_length=False))
    V = model.vocab_size
    set_output_shapes(enc_path, {mf.state_input(s.name): _shape(s, "B") for s in specs if s.init == "encoder"})
    set_output_shapes(step_path, {mf.LOGPROBS: ["N", V], mf.TOPK_LOGPROBS: ["N", "K"], mf.TOPK_IDS: ["N", "K"],
                                  **{mf.state_output(s.name): _shape(s, "N") for s in specs}})
    check_model(enc_path)
    check_model(step_path)
    return enc_path, step_path


def preprocessing(cfg: GeneratorTrainConfig, card: dict) -> dict:
    """The manifest's input description: what a prompt / condition / image means."""
    pre = {"type": "generate", "unit": cfg.model.unit, "conditions": card.get("classes"), "lowercase": False}
    if cfg.model.unit == "pixel":
        pre["image"] = {"height": cfg.model.height, "width": cfg.model.width, "levels": cfg.levels,
                        "dataset": cfg.data}
    return pre


def torch_generate(model: nn.Module, manifest: Manifest, conditions: np.ndarray, search, max_length=None,
                   prefix=None):
    """The PyTorch reference search: the runtime's reference loop driven by the torch graphs."""
    from ..runtime.reference_loop import decode
    from ..train.core.torch_step import torch_step_fn

    with torch.no_grad():
        enc = model.encode(torch.from_numpy(np.ascontiguousarray(conditions, dtype=np.int64)))
    enc_np = {n: enc[n].numpy() for n in model.encoder_output_names()}
    return decode(manifest, enc_np, torch_step_fn(model), search, max_length=max_length, prefix=prefix)


def golden_inputs(cfg: GeneratorTrainConfig, vocab: Vocab, data_card: dict, conditional_classes: int,
                  run_prefix: list[list[int]]) -> list[tuple[int, list[int]]]:
    """(condition, prefix ids) pairs: no prefix, and a short held-out prefix."""
    conds = list(range(min(conditional_classes, 3))) if conditional_classes else [0]
    cases = [(c, []) for c in conds]
    cases += [(conds[-1], p) for p in run_prefix]
    return cases


def export_generator_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best",
                            int8: bool = False, parity: bool = True, max_length: int | None = None,
                            metrics: dict | None = None) -> ExportReport:
    """Export a generator run; `metrics` (e.g. test perplexity) are stored in the manifest."""
    run, out = Path(run_dir), Path(out_dir)
    from ..train.ntm.loop import is_ntm_task_run

    if is_ntm_task_run(run):
        return export_ntm_task_bundle(run, out, checkpoint, int8, parity, max_length, metrics)
    model, vocab, cfg, ck_path, run_cfg = load_generator_run(run, checkpoint)
    card = run_cfg.get("data", {})
    n_cond = cfg.model.n_conditions
    if cfg.model.unit == "pixel":
        max_length = int(max_length or cfg.model.height * cfg.model.width)
        data = load_generator_data(cfg, vocab)
        held = [ids[: cfg.model.width * 2] for ids, _ in data.splits["val"][:2]]  # two rows forced
    else:
        max_length = int(max_length or TEXT_MAX_LENGTH)
        from ..train.generate.text_corpus import encode_text

        held = [encode_text(p[: 12], vocab, cfg.model.unit)[:6] for p in card.get("prompts", [])[:2]]
        held = [h for h in held if h]
    cases_in = golden_inputs(cfg, vocab, card, n_cond, held)
    info = {"architecture": {"lstm": "LSTM generator", "grid": "2-D LSTM (left and upper neighbours)"}[cfg.model.arch],
            **asdict(cfg.model), "vocab_size": len(vocab), "data": card}
    prefixes = ([[], *held] + [[], []])[:3]
    search_len = min(max_length, max(40, max(len(p) for p in prefixes) + 12))
    return write_generator_bundle(model, vocab, run, out, ck_path, preprocessing(cfg, card), info, max_length,
                                  cases_in, prefixes, search_len, n_cond, int8, parity, metrics)


def write_generator_bundle(model: nn.Module, vocab: Vocab, run: Path, out: Path, ck_path: Path, pre: dict,
                           info: dict, max_length: int, cases_in: list[tuple[int, list[int]]],
                           parity_prefixes: list[list[int]], search_len: int, n_cond: int, int8: bool, parity: bool,
                           metrics: dict | None) -> ExportReport:
    """The bundle of any decoder-only model (condition -> initial states, step without memory): graphs,
    tokens, manifest, golden decodes of `cases_in` ((condition, prefix) pairs), step and search parity
    on three rows forced with `parity_prefixes`, all staged and written atomically."""
    with staged_bundle(out) as tmp:
        fp32 = tmp / "fp32"
        fp32.mkdir()
        enc32, step32 = export_generator_graphs(model, fp32, n_cond)
        enc_path, step_path = tmp / mf.ENCODER_FILE, tmp / mf.STEP_FILE
        if int8:
            _quantize(enc32, enc_path, None)
            _quantize(step32, step_path, None)
        else:
            shutil.copyfile(enc32, enc_path)
            shutil.copyfile(step32, step_path)
        shutil.rmtree(fp32)
        vocab.save(tmp / mf.TOKENS_FILE)
        manifest = bundle_manifest(tmp, TASK, model, vocab, pre, max_length, {**info, "int8": int8}, ck_path)
        manifest.memory_length_from = ""  # no memory: the loop takes B from the first encoder-initialised state

        if not int8:
            def golden_decode(cond, search, prefix):
                return torch_generate(model, manifest, np.array([cond]), search, max_length, [prefix])[0]
        else:
            from ..runtime.tasks.generator import Generator

            write_manifest(tmp, manifest, {})
            ort_ref = Generator.load(tmp, loop="reference")

            def golden_decode(cond, search, prefix):
                enc = ort_ref.encode_conditions([cond])
                return ort_ref.decode_encoded(enc, search, max_length, prefix=[prefix])[0]
        cases = []
        for cond, prefix in cases_in:
            for sjson, search in GOLDEN:
                hyps = golden_decode(cond, search, prefix)
                cases.append({"condition": cond, "prefix": list(map(int, prefix)), "search": sjson,
                              "max_length": max_length,
                              "hypotheses": [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob),
                                              "score": float(h.score)} for h in hyps]})
        golden_from = "pytorch" if not int8 else "onnxruntime-cpu (int8 graphs)"
        (tmp / mf.GOLDEN_FILE).write_text(json.dumps({"from": golden_from, "cases": cases}, indent=1) + "\n",
                                          encoding="utf-8")
        all_metrics = {"training": {"checkpoint": ck_path.name, "history": read_metrics(run)}, **(metrics or {})}
        files = write_manifest(tmp, manifest, all_metrics)
        parity_report: dict = {}
        if parity:
            from ..runtime.tasks.generator import Generator

            tol = None if int8 else TOL
            conds = np.arange(3, dtype=np.int64) % max(n_cond, 1)
            with torch.no_grad():
                t_enc = {n: v.numpy() for n, v in model.encode(torch.from_numpy(conds)).items()}
            parity_report["step"] = graph_parity(model, enc_path, step_path, {CONDITION: conds}, t_enc, steps=6,
                                                 beams=3, k=5, tol=tol)
            rt, loop = load_runtime(Generator, tmp)
            enc_rt = rt.encode_conditions(conds.tolist())
            parity_report["search"] = compare_searches(
                lambda s: rt.decode_encoded(enc_rt, s, search_len, prefix=parity_prefixes),
                lambda s: torch_generate(model, rt.manifest, conds, s, search_len, parity_prefixes),
                len(conds), loop, searches=[Greedy(), Beam(size=3), Sample(seed=3)], tol=tol)
            parity_report["enforced"] = tol is not None
            parity_report["tolerance"] = TOL
            all_metrics["parity"] = parity_report
            files = write_manifest(tmp, manifest, all_metrics)
    return ExportReport(bundle=out, checkpoint=ck_path, manifest=manifest, int8=int8, parity=parity_report,
                        golden_cases=len(cases), files=files)


def export_ntm_task_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best",
                           int8: bool = False, parity: bool = True, max_length: int | None = None,
                           metrics: dict | None = None) -> ExportReport:
    """An NTM-task run (train/ntm/loop.py: the NTM or its LSTM baseline on copy / recall) as a bundle.

    The prompt is the task input as written in tokens.txt, separated by spaces (unit "symbol":
    `3a 07 ff <delim>`), so `edge-s2s generate --greedy` runs the task; max_length fits the
    longest size the generalisation table asks for (4x the longest trained) with room to spare.
    """
    from ..train.core.errors import RunError
    from ..train.ntm.loop import describe_model, generalisation_sizes, load_ntm_task_run, parameter_count
    from ..train.ntm.tasks import make_example

    run, out = Path(run_dir), Path(out_dir)
    if not run.is_dir():
        raise ExportError(f"run directory {run} does not exist: pass the directory training wrote")
    try:
        model, vocab, cfg, ck_path = load_ntm_task_run(run, checkpoint)
    except RunError as e:
        raise ExportError(f"{run} cannot be exported: {e}") from None
    longest = make_example(cfg.task, np.random.default_rng(0), generalisation_sizes(cfg)["4x"], vocab)
    max_length = int(max_length or len(longest.prefix) + 2 * len(longest.target))
    lo, hi = cfg.sizes
    rng = np.random.default_rng(cfg.seed)
    held = [make_example(cfg.task, rng, size, vocab) for size in (lo, hi, (lo + hi) // 2)]
    prefixes = [e.prefix for e in held]
    search_len = min(max_length, max(len(e.prefix) + 2 * len(e.target) for e in held))
    pre = {"type": "generate", "unit": "symbol", "conditions": None, "lowercase": False,
           "task": {"name": cfg.task, "train_sizes": [lo, hi],
                    "prompt": "the input patterns (two hex digits each) and markers, space-separated, ending <delim>"}}
    spec = cfg.ntm_config().to_dict() if cfg.model == "ntm" else {"hidden": cfg.lstm_hidden}
    info = {"architecture": describe_model(cfg), "parameters": parameter_count(model), "task": cfg.task,
            "train_sizes": [lo, hi], "emb_dim": cfg.emb_dim, **spec, "vocab_size": len(vocab)}
    return write_generator_bundle(model, vocab, run, out, ck_path, pre, info, max_length,
                                  [(0, p) for p in prefixes[:2]], prefixes, search_len, 0, int8, parity, metrics)
