"""Write a bundle from a training run: graphs, vocabulary, golden decodes, manifest.

Everything is written into a temporary directory next to `out_dir` and renamed into place
only after the graphs pass onnx.checker and (by default) parity, so a failed export never
leaves a half bundle behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..runtime import manifest as mf
from ..runtime.bundle import sha256_file
from ..runtime.errors import EdgeS2SError
from ..runtime.manifest import GraphSpec, Manifest, TokensSpec
from ..runtime.search import Beam, Greedy
from ..runtime.text import Vocab
from ..train.core.checkpoint import BEST, LAST, load_checkpoint
from ..train.translate.config import TrainConfig
from ..train.translate.decode import source_ids
from ..train.translate.loop import TOKENS_FILE, read_metrics, read_val_pairs
from ..train.translate.model import Translator
from ..train.translate.ntm_decoder import build_translator
from .graphs import export_graphs, graph_io
from .parity import TOL, search_parity, step_parity, torch_decode

GOLDEN_SEARCHES = [
    ({"type": "greedy"}, Greedy()),
    ({"type": "beam", "size": 5, "length_penalty": 1.0, "n_best": 1, "early_stop": True},
     Beam(size=5, length_penalty=1.0, n_best=1, early_stop=True)),
]


class ExportError(EdgeS2SError):
    """The run directory or checkpoint cannot be exported as asked."""


@dataclass
class ExportReport:
    """What `export_bundle` wrote and what it proved."""

    bundle: Path
    checkpoint: Path
    manifest: Manifest
    int8: bool = False
    parity: dict = field(default_factory=dict)  # {"step": ..., "search": ...}; empty when parity=False
    golden_cases: int = 0
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256 (manifest.json excluded)

    @property
    def max_abs_diff(self) -> float | None:
        step = self.parity.get("step")
        return None if not step else step["max_abs_diff"]


def resolve_checkpoint(run_dir: Path, checkpoint: str | Path) -> Path:
    """"best" (falls back to last.pt when no epoch finished), "last", or a path."""
    if str(checkpoint) == "best":
        p = run_dir / BEST
        return p if p.is_file() else run_dir / LAST
    if str(checkpoint) == "last":
        return run_dir / LAST
    p = Path(checkpoint)
    return p if p.is_absolute() or p.exists() else run_dir / p


def load_trained(run_dir: str | Path, checkpoint: str | Path = "best") -> tuple[Translator, Vocab, TrainConfig, Path]:
    """Rebuild the model of a run from a checkpoint (eval mode, CPU)."""
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
    return model, vocab, cfg, ck_path


def _quantize(src: Path, dst: Path, op_types: list[str] | None = None) -> None:
    """Dynamic int8 quantisation of `src` into `dst`; op_types None = every op ORT can
    quantise (Conv included), e.g. ["MatMul", "Gemm", "Gather"] for linear layers only."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=op_types)
    finally:
        root.setLevel(level)


def bundle_manifest(directory: Path, task: str, model, vocab: Vocab, preprocessing: dict, max_length: int,
                    model_info: dict, checkpoint: Path) -> Manifest:
    """The manifest of the graphs already written into `directory` (any DecoderContract model)."""
    enc_in, enc_out = graph_io(directory / mf.ENCODER_FILE)
    step_in, step_out = graph_io(directory / mf.STEP_FILE)
    return Manifest(
        task=task,
        tokens=TokensSpec(file=mf.TOKENS_FILE, size=len(vocab), pad_id=vocab.pad_id, unk_id=vocab.unk_id,
                          bos_id=vocab.bos_id, eos_id=vocab.eos_id),
        preprocessing=preprocessing,
        max_length=max_length,
        encoder=GraphSpec(mf.ENCODER_FILE, enc_in, enc_out),
        decoder_step=GraphSpec(mf.STEP_FILE, step_in, step_out),
        memory=model.memory_names,
        state=model.state_specs(),
        attention=model.attention,
        memory_length_from=model.memory_length_from,
        model=model_info,
        source_checkpoint_sha256=sha256_file(checkpoint),
        created_by="edge-s2s export",
    )


def write_manifest(directory: Path, manifest: Manifest, metrics: dict) -> dict[str, str]:
    """Record every file's sha256 and `metrics` in the manifest and save it; returns the files."""
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != mf.MANIFEST_FILE}
    manifest.files = files
    manifest.metrics = metrics
    manifest.save(directory)
    return files


def _held_out(run: Path, vocab: Vocab, cfg: TrainConfig, n: int) -> list[str]:
    srcs = [s for s, _ in read_val_pairs(run)]
    srcs = [s for s in srcs if len(source_ids(s, vocab, cfg.lowercase)) <= cfg.max_source_length + 1]
    if not srcs:
        raise ExportError(f"{run} has no held-out validation sentences (val.tsv): export needs them for parity "
                          "and golden.json; re-run training with this edge-s2s version")
    # Prefer sentences of different lengths (batch padding gets exercised).
    by_len: dict[int, str] = {}
    for s in srcs:
        by_len.setdefault(len(source_ids(s, vocab, cfg.lowercase)), s)
    picked = sorted(by_len.values(), key=lambda s: -len(s))
    picked += [s for s in srcs if s not in picked]
    return picked[:n]


@contextmanager
def staged_bundle(out: Path, check: Callable[[Path], object] | None = None) -> Iterator[Path]:
    """A temporary directory next to `out` that becomes `out` only when the block succeeds.

    Whatever fails inside (export, checker, parity) removes it, so a failed export never
    leaves a half bundle behind; the manifest must parse before the rename (`check`, default
    Manifest.load; a memory network's bundle passes MemoryManifest.load).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=str(out.parent)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is an ordinary directory
    try:
        yield tmp
        (check or Manifest.load)(tmp)  # what the runtime reads back must parse
        _finalize(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finalize(tmp: Path, out: Path) -> None:
    """Move the finished temp bundle to `out`, replacing an older bundle there."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / mf.MANIFEST_FILE).is_file()):
            raise ExportError(f"{out} exists and is not an edge-s2s bundle: refusing to overwrite it, choose another "
                              "output directory")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best", int8: bool = False,
                  parity: bool = True, golden: int = 3, max_length: int | None = None) -> ExportReport:
    """Export a training run as a bundle directory; returns what was written and proved.

    checkpoint: "best", "last" or a checkpoint path. int8: dynamic int8 quantisation of
    both graphs (parity is then measured and reported, not enforced). golden: how many
    held-out sources go to golden.json (each decoded greedy and beam-5 by PyTorch).
    max_length: most output tokens (end token included); default the training limit + 1.
    """
    run = Path(run_dir)
    out = Path(out_dir)
    model, vocab, cfg, ck_path = load_trained(run, checkpoint)
    max_length = int(max_length or cfg.max_target_length + 1)
    with staged_bundle(out) as tmp:
        with torch.no_grad():
            if int8:
                fp32 = tmp / "fp32"
                fp32.mkdir()
                enc32, step32 = export_graphs(model, fp32)
                _quantize(enc32, tmp / mf.ENCODER_FILE)
                _quantize(step32, tmp / mf.STEP_FILE)
            else:
                export_graphs(model, tmp)
        enc_path, step_path = tmp / mf.ENCODER_FILE, tmp / mf.STEP_FILE
        vocab.save(tmp / mf.TOKENS_FILE)
        manifest = bundle_manifest(
            tmp, "translate", model, vocab,
            {"type": "text", "lowercase": cfg.lowercase, "max_source_length": cfg.max_source_length + 1}, max_length,
            {"architecture": "bilstm-encoder/lstm-decoder", **asdict(cfg.model), "vocab_size": len(vocab), "int8": int8},
            ck_path)
        sources = _held_out(run, vocab, cfg, max(golden, 4))
        id_lists = [source_ids(s, vocab, cfg.lowercase) for s in sources]

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
