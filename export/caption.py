"""Export a captioner run as a bundle: the whole CNN in encoder.onnx (pixels in), the
attention decoder step in decoder_step.onnx, golden images with PyTorch's captions.

Same guarantees as the translator's exporter (export/bundle_writer.py, whose helpers
this reuses): onnx.checker, parity with PyTorch on held-out images at sizes different
from the export example, atomic write. int8 "linear" quantises the linear layers and
embeddings of both graphs (MatMul, Gemm, Gather) and keeps the CNN's convolutions in
float32; "static" does the same and also quantises the CNN statically, with ranges calibrated
on the run's training images (export/static_int8.py: ~2.2x faster CNN on this CPU); "all"
quantises the convolutions dynamically (slow: ConvInteger). Parity is then reported, not enforced.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..runtime import manifest as mf
from ..runtime.errors import EdgeS2SError
from ..runtime.manifest import Manifest
from ..runtime.media.image import ImageSpec, preprocess
from ..runtime.text import Vocab
from ..runtime.tools.run_logs import read_metrics
from ..train.caption.caption_text import MODIFIER_WORDS, NO_END_WORDS
from ..train.caption.config import CaptionTrainConfig
from ..train.caption.image_encoder import GRID
from ..train.caption.loop import image_spec, load_splits, read_val_items
from ..train.caption.model import CaptionModel, PixelEncoderGraph
from ..train.core.checkpoint import load_checkpoint
from ..train.core.run_dir import TOKENS_FILE
from ..train.core.step_contract import StepGraph
from .bundle_writer import (
    GOLDEN_SEARCHES,
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
from .static_int8 import quantize_static_prefix

INT8_PARTS = ("none", "linear", "static", "all")
CALIBRATION_IMAGES = 256  # training images whose activation ranges fix the static int8 CNN's scales
CALIBRATION_BATCH = 16
CNN_PREFIX = "/cnn/"  # the exported CNN's node names (PixelEncoderGraph's `cnn` module)
LINEAR_OPS = ["MatMul", "Gemm", "Gather"]
# The class -> name sum feeding the label slots' top-K stays float32 under int8: quantising its input
# (the softmax) made every name below ~0.4% probability a tie, and the top-K then filled the slots
# with the first names of the vocabulary ("abacus", "accordion") instead of the next likely ones.
LABEL_PATH_FLOAT = ("class_to_name",)
EXAMPLE_B, EXAMPLE_N, EXAMPLE_K = 2, 3, 3


def load_caption_run(run_dir: str | Path, checkpoint: str | Path = "best", no_end_words: bool | None = None,
                     pointer_prior: float | None = None):
    """(model in eval mode, vocab, train config, checkpoint path) of a caption run.

    no_end_words: None = as trained; True / False switches the step's rule that a caption never ends
    on a function word ("a", "of", ...). It only masks the end token while decoding (training never
    reads it), so the same weights may be exported either way. pointer_prior: None = as trained, else
    CaptionModelConfig.pointer_prior for the exported step (a decoding prior; no weight changes)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ExportError(f"run directory {run} does not exist: pass the directory training wrote")
    ck_path = resolve_checkpoint(run, checkpoint)
    ck = load_checkpoint(ck_path)
    if ck.get("task") != "caption":
        raise ExportError(f"{ck_path} is not a captioner checkpoint")
    cfg = CaptionTrainConfig.from_dict(ck["train_config"])
    if no_end_words is not None:
        cfg.model = replace(cfg.model, no_end_words=bool(no_end_words))
    if pointer_prior is not None:
        try:
            cfg.model = replace(cfg.model, pointer_prior=float(pointer_prior))
        except ValueError as e:
            raise ExportError(f"{e}: export without --pointer-prior, or with a value from 0 to 20 for a model "
                              "with label slots") from None
    vocab = Vocab.load(run / TOKENS_FILE)
    if len(vocab) != ck["vocab_size"]:
        raise ExportError(f"{run / TOKENS_FILE} has {len(vocab)} tokens but the checkpoint was trained with "
                          f"{ck['vocab_size']}: the run directory is inconsistent")
    model = CaptionModel(cfg.model, len(vocab), pretrained=False, tokens=vocab.tokens)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, vocab, cfg, ck_path


def _example_pixels(B: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, size, size, generator=g)


def export_caption_graphs(model: CaptionModel, directory: Path, size: int) -> tuple[Path, Path]:
    """Both graphs into `directory`, declared shapes fixed, onnx.checker run."""
    enc_path, step_path = directory / mf.ENCODER_FILE, directory / mf.STEP_FILE
    enc_names = model.encoder_output_names()
    pixels = _example_pixels(EXAMPLE_B, size)
    with torch.no_grad():
        _quiet_export(PixelEncoderGraph(model).eval(), (pixels,), enc_path, ["pixels"], enc_names,
                      {"pixels": {0: "B"}, **{n: {0: "B"} for n in enc_names}})
        enc = model.encode(pixels)
        states = model.initial_states(enc)
        N, K = EXAMPLE_N, EXAMPLE_K
        row = torch.arange(N) % EXAMPLE_B
        args = (torch.arange(N) % (model.vocab_size - 4) + 4, row, row.clone(), torch.tensor([K]),
                *(enc[n] for n in model.memory_names), *(states[s.name] for s in model.state_specs()))
        _quiet_export(StepGraph(model).eval(), args, step_path, model.step_input_names(), model.step_output_names(),
                      step_axes(model, variable_length=False))
    H, V, R, K = model.cfg.dec_hidden, model.vocab_size, model.cfg.region_dim, model.label_slots
    L = GRID[0] * GRID[1] + K  # the regions, then the label slots
    enc_shapes = {"memory": ["B", L if model.attention else 1, R], mf.state_input("h"): ["B", H],
                  mf.state_input("c"): ["B", H]}
    if model.attention:
        enc_shapes["memory_key"] = ["B", L, model.cfg.att_dim]
    if K:
        enc_shapes["label_tokens"] = ["B", K]
        enc_shapes["label_key"] = ["B", K, model.cfg.att_dim]
    step_shapes = {mf.LOGPROBS: ["N", V], mf.TOPK_LOGPROBS: ["N", "K"], mf.TOPK_IDS: ["N", "K"],
                   mf.ATTENTION: ["N", L], mf.state_output("h"): ["N", H], mf.state_output("c"): ["N", H]}
    set_output_shapes(enc_path, enc_shapes)
    set_output_shapes(step_path, step_shapes)
    check_model(enc_path)
    check_model(step_path)
    return enc_path, step_path


def torch_encode_pixels(model: CaptionModel, pixels: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model.encode(torch.from_numpy(np.ascontiguousarray(pixels)))
    return {n: out[n].numpy() for n in model.encoder_output_names()}


def torch_caption_decode(model: CaptionModel, manifest: Manifest, pixels: np.ndarray, search,
                         max_length: int | None = None):
    """The PyTorch reference search over pixels: the runtime's reference loop, torch graphs."""
    from ..runtime.reference_loop import decode
    from ..train.core.torch_step import torch_step_fn

    return decode(manifest, torch_encode_pixels(model, pixels), torch_step_fn(model), search, max_length=max_length)


def calibration_batches(cfg: CaptionTrainConfig, spec: ImageSpec, count: int = CALIBRATION_IMAGES,
                        batch: int = CALIBRATION_BATCH, seed: int = 0) -> list[np.ndarray]:
    """A seeded sample of `count` TRAINING images, preprocessed as the runtime does, in batches:
    what static int8 calibrates on (validation and test images choose and score; they never fit)."""
    try:
        train, _ = load_splits(cfg)
        paths = [Path(i.image) for i in train]
        pick = np.random.default_rng(seed).permutation(len(paths))[:count]
        pixels = np.stack([preprocess(paths[i], spec) for i in sorted(pick)])
    except EdgeS2SError as e:
        raise ExportError(f"static int8 calibrates on the run's training images, which cannot be read ({e}): "
                          "keep the training data where it was, or export with int8 'linear'") from None
    return [pixels[i : i + batch] for i in range(0, len(pixels), batch)]


def export_caption_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best",
                          int8: str = "none", parity: bool = True, golden: int = 3,
                          max_length: int | None = None, metrics: dict | None = None,
                          no_end_words: bool | None = None, pointer_prior: float | None = None) -> ExportReport:
    """Export a caption run; `metrics` (e.g. test-split scores) are stored in the manifest;
    `no_end_words` and `pointer_prior` as in load_caption_run."""
    if int8 is True:
        int8 = "all"
    if int8 in (False, None):
        int8 = "none"
    if int8 not in INT8_PARTS:
        raise ExportError(f"int8 must be one of {', '.join(INT8_PARTS)}, got {int8!r}")
    run, out = Path(run_dir), Path(out_dir)
    model, vocab, cfg, ck_path = load_caption_run(run, checkpoint, no_end_words, pointer_prior)
    spec: ImageSpec = image_spec(cfg)
    max_length = int(max_length or cfg.max_caption_length + 1)
    val = read_val_items(run)
    images = [Path(v["image"]) for v in val if Path(v["image"]).is_file()][: max(golden, 3)]
    if not images:
        raise ExportError(f"{run} has no readable validation images (val.json): export needs a few for parity and "
                          "golden.json; keep the training images where they were")
    with staged_bundle(out) as tmp:
        fp32 = tmp / "fp32"
        fp32.mkdir()
        enc32, step32 = export_caption_graphs(model, fp32, spec.size)
        enc_path, step_path = tmp / mf.ENCODER_FILE, tmp / mf.STEP_FILE
        if int8 == "none":
            shutil.copyfile(enc32, enc_path)
            shutil.copyfile(step32, step_path)
        else:
            ops = None if int8 == "all" else LINEAR_OPS
            _quantize(enc32, enc_path, ops, keep_float=LABEL_PATH_FLOAT)
            _quantize(step32, step_path, ops)
            if int8 == "static":
                linear = tmp / "fp32" / "encoder-linear.onnx"
                enc_path.replace(linear)
                calib = calibration_batches(cfg, spec)
                quantize_static_prefix(linear, enc_path, "pixels", calib, CNN_PREFIX)
        vocab.save(tmp / mf.TOKENS_FILE)
        manifest = bundle_manifest(
            tmp, "caption", model, vocab, spec.to_manifest(), max_length,
            {"architecture": "show-attend-tell" if model.attention else "show-tell (no attention)", "cnn": cfg.model.cnn,
             "grid": list(GRID), **asdict(cfg.model), "vocab_size": len(vocab), "int8": int8,
             **({"int8_calibration": {"images": sum(map(len, calib)), "split": "train", "ranges": "min-max",
                                      "weights": "per channel"}} if int8 == "static" else {}),
             **({"label_slots": {"count": model.label_slots, "tokens": "label_tokens"}} if model.label_slots else {}),
             **({"no_end": sorted(NO_END_WORDS & set(vocab.tokens))} if cfg.model.no_end_words else {}),
             **({"needs_noun": sorted(MODIFIER_WORDS & set(vocab.tokens))} if model.label_slots else {})},
            ck_path)
        pix = np.stack([preprocess(p, spec) for p in images])

        shutil.rmtree(fp32)

        # golden.json: what `edge-s2s verify` must reproduce on another device. fp32: the
        # PyTorch decodes; int8: the decodes of the quantised graphs on this CPU (PyTorch
        # has no int8 twin to compare with).
        names = []
        for gi, img in enumerate(images[:golden]):
            names.append(f"golden_{gi}{img.suffix.lower() or '.jpg'}")
            shutil.copyfile(img, tmp / names[-1])
        if int8 == "none":
            def golden_decode(p, search):
                return torch_caption_decode(model, manifest, p, search, max_length)
        else:
            from ..runtime.tasks.captioner import Captioner

            write_manifest(tmp, manifest, {})
            ort_ref = Captioner.load(tmp, loop="reference")

            def golden_decode(p, search):
                return ort_ref.decode_pixels(p, search, max_length)
        cases = []
        for gi, name in enumerate(names):
            for sjson, search in GOLDEN_SEARCHES:
                hyps = golden_decode(pix[gi : gi + 1], search)[0]
                cases.append({"image": name, "search": sjson, "max_length": max_length,
                              "hypotheses": [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob),
                                              "score": float(h.score)} for h in hyps]})
        golden_from = "pytorch" if int8 == "none" else "onnxruntime-cpu (int8 graphs)"
        (tmp / mf.GOLDEN_FILE).write_text(json.dumps({"from": golden_from, "cases": cases}, indent=1) + "\n",
                                          encoding="utf-8")

        history = read_metrics(run)
        training = {"checkpoint": ck_path.name, "history": history}
        all_metrics = {"training": training, **(metrics or {})}
        files = write_manifest(tmp, manifest, all_metrics)
        parity_report: dict = {}
        if parity:
            from ..runtime.tasks.captioner import Captioner

            tol = None if int8 != "none" else TOL
            b3 = pix[np.arange(3) % len(pix)]
            t_enc = torch_encode_pixels(model, b3)
            parity_report["step"] = graph_parity(model, enc_path, step_path, {"pixels": b3}, t_enc, steps=6, beams=3,
                                                 k=5, tol=tol)
            rt, loop = load_runtime(Captioner, tmp)
            parity_report["search"] = compare_searches(
                lambda s: rt.decode_pixels(pix, s), lambda s: torch_caption_decode(model, rt.manifest, pix, s),
                len(pix), loop, tol=tol)
            parity_report["enforced"] = tol is not None
            parity_report["tolerance"] = TOL
            all_metrics["parity"] = parity_report
            files = write_manifest(tmp, manifest, all_metrics)
    return ExportReport(bundle=out, checkpoint=ck_path, manifest=manifest, int8=int8 != "none", parity=parity_report,
                        golden_cases=len(cases), files=files)
