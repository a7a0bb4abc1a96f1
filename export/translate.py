"""Export a translator run (bidirectional LSTM encoder, attention or NTM decoder) as a bundle.

The shared steps (staging directory, manifest, checksums, int8) are `bundle_writer.py`; this
module picks the held-out sources, writes the golden decodes and proves parity.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from ..runtime import manifest as mf
from ..runtime.subwords import SubwordText
from ..runtime.text import Vocab, WordText
from ..runtime.tools.run_logs import read_metrics
from ..train.core.checkpoint import load_checkpoint
from ..train.core.run_dir import TOKENS_FILE
from ..train.translate.config import TrainConfig
from ..train.translate.decode import source_ids
from ..train.translate.loop import read_val_pairs
from ..train.translate.model import Translator
from ..train.translate.ntm_decoder import build_translator
from ..train.translate.subword_train import SUBWORD_MODEL_FILE, run_text
from .bundle_writer import (
    GOLDEN_SEARCHES,
    INT8_OPS,
    ExportError,
    ExportReport,
    _quantize,
    bundle_manifest,
    resolve_checkpoint,
    staged_bundle,
    write_manifest,
)
from .graphs import export_graphs
from .parity import TOL, search_parity, step_parity, torch_decode


def load_trained(run_dir: str | Path, checkpoint: str | Path = "best"
                 ) -> tuple[Translator, Vocab, TrainConfig, Path, WordText | SubwordText]:
    """Rebuild the model of a run from a checkpoint (eval mode, CPU), with the run's tokenizer."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ExportError(f"run directory {run} does not exist: pass the directory training wrote")
    ck_path = resolve_checkpoint(run, checkpoint)
    ck = load_checkpoint(ck_path)
    cfg = TrainConfig.from_dict(ck["train_config"])
    vocab = Vocab.load(run / TOKENS_FILE)
    if len(vocab) != ck.get("vocab_size", len(vocab)):
        raise ExportError(f"{run / TOKENS_FILE} has {len(vocab)} tokens but the checkpoint was trained with "
                          f"{ck['vocab_size']}: the run directory is inconsistent")
    model = build_translator(cfg.model, len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    try:
        text = run_text(run, cfg.tokenizer, vocab, cfg.lowercase)
    except Exception as e:  # noqa: BLE001  (SentencePiece and file errors of every kind: one line)
        raise ExportError(str(e)) from None
    return model, vocab, cfg, ck_path, text


def _held_out(run: Path, text: WordText | SubwordText, cfg: TrainConfig, n: int) -> list[str]:
    srcs = [s for s, _ in read_val_pairs(run)]
    srcs = [s for s in srcs if len(source_ids(s, text)) <= cfg.max_source_length + 1]
    if not srcs:
        raise ExportError(f"{run} has no held-out validation sentences (val.tsv): export needs them for parity "
                          "and golden.json; re-run training with this edge-s2s version")
    # Prefer sentences of different lengths (batch padding gets exercised).
    by_len: dict[int, str] = {}
    for s in srcs:
        by_len.setdefault(len(source_ids(s, text)), s)
    picked = sorted(by_len.values(), key=lambda s: -len(s))
    picked += [s for s in srcs if s not in picked]
    return picked[:n]


def export_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best", int8: bool = False,
                  parity: bool = True, golden: int = 3, max_length: int | None = None,
                  max_source_length: int | None = None) -> ExportReport:
    """Export a training run as a bundle directory; returns what was written and proved.

    checkpoint: "best", "last" or a checkpoint path. int8: int8 weights for the linear layers and
    embeddings of both graphs, activations scaled per row so that an answer never depends on its
    batch-mates; the encoder's LSTMs stay float32 (parity is then measured and reported, not enforced). golden: how many
    held-out sources go to golden.json (each decoded greedy and beam-5 by PyTorch).
    max_length: most output tokens (end token included); default the training limit + 1.
    max_source_length: most source tokens (end token included); default 4 x the training limit + 1.
    """
    run = Path(run_dir)
    out = Path(out_dir)
    model, vocab, cfg, ck_path, text = load_trained(run, checkpoint)
    max_length = int(max_length or cfg.max_target_length + 1)
    with staged_bundle(out) as tmp:
        with torch.no_grad():
            if int8:
                fp32 = tmp / "fp32"
                fp32.mkdir()
                enc32, step32 = export_graphs(model, fp32)
                # the encoder's LSTMs stay float32: ORT's int8 LSTM scales the whole padded batch at
                # once, which made a sentence's translation depend on its batch-mates
                _quantize(enc32, tmp / mf.ENCODER_FILE, INT8_OPS["linear"])
                _quantize(step32, tmp / mf.STEP_FILE, INT8_OPS["linear"])
            else:
                export_graphs(model, tmp)
        enc_path, step_path = tmp / mf.ENCODER_FILE, tmp / mf.STEP_FILE
        vocab.save(tmp / mf.TOKENS_FILE)
        # the encoder reads any length; sentences longer than training's filter are allowed up to 4x it
        preprocessing = {"type": "text", "lowercase": cfg.lowercase,
                         "max_source_length": max_source_length or 4 * cfg.max_source_length + 1}
        if cfg.tokenizer == "sentencepiece":  # the model travels in the bundle; its sha256 goes in manifest.files
            shutil.copyfile(run / SUBWORD_MODEL_FILE, tmp / SUBWORD_MODEL_FILE)
            preprocessing.update(tokenizer="sentencepiece", sentencepiece_model=SUBWORD_MODEL_FILE)
        manifest = bundle_manifest(
            tmp, "translate", model, vocab, preprocessing, max_length,
            {"architecture": "bilstm-encoder/lstm-decoder", **asdict(cfg.model), "vocab_size": len(vocab), "int8": int8},
            ck_path)
        sources = _held_out(run, text, cfg, max(golden, 4))
        id_lists = [source_ids(s, text) for s in sources]

        # golden.json: what `edge-s2s verify` must reproduce. fp32: PyTorch's decodes of a few
        # held-out sources; int8: the quantised graphs' decodes on this CPU.
        if int8:
            from ..runtime.tasks.seq2seq import Seq2Seq

            shutil.rmtree(tmp / "fp32")
            write_manifest(tmp, manifest, {})
            ort_ref = Seq2Seq.load(tmp, loop="reference")

            def golden_decode(ids, search):
                return ort_ref.decode_ids([ids], search, max_length)[0]
        else:
            def golden_decode(ids, search):
                return torch_decode(model, manifest, [ids], search, max_length)[0]
        cases = []
        for s, ids in zip(sources[:golden], id_lists[:golden]):
            for sjson, search in GOLDEN_SEARCHES:
                hyps = golden_decode(ids, search)
                cases.append({"source": s, "search": sjson, "max_length": max_length,
                              "hypotheses": [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob),
                                              "score": float(h.score)} for h in hyps]})
        (tmp / mf.GOLDEN_FILE).write_text(json.dumps({"cases": cases}, indent=1, ensure_ascii=False) + "\n",
                                          encoding="utf-8")


        history = read_metrics(run)
        training = {"checkpoint": ck_path.name, "history": history}
        if history:
            best = min(history, key=lambda m: m["val_loss"])
            training.update(best_val_loss=best["val_loss"], best_val_bleu=best.get("val_bleu"), epochs=history[-1]["epoch"],
                            steps=history[-1]["step"])
        metrics = {"training": training}
        files = write_manifest(tmp, manifest, metrics)

        parity_report: dict = {}
        if parity:
            tol = None if int8 else TOL
            # Sizes different from the export example (B=2, S=5, N=3, K=3): B=3 items of
            # different lengths, 3 beams each (N=9), K=5.
            b3 = (id_lists * 3)[:3]
            parity_report["step"] = step_parity(model, enc_path, step_path, b3, steps=6, beams=3, k=5, tol=tol)
            parity_report["search"] = search_parity(tmp, model, id_lists, tol=tol)
            parity_report["enforced"] = tol is not None
            parity_report["tolerance"] = TOL
            metrics["parity"] = parity_report
            files = write_manifest(tmp, manifest, metrics)
    return ExportReport(bundle=out, checkpoint=ck_path, manifest=manifest, int8=int8, parity=parity_report,
                        golden_cases=len(cases), files=files)
