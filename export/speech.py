"""Export a Listen-Attend-Spell `Speller` as a bundle: log-mel frames in, characters out.

encoder.onnx takes `features` float32 [B, T, n_mels] and `feature_lengths` int64 [B] (the
log-mel recipe itself stays numpy, runtime/media/features.py, and is written into the manifest's
"preprocessing"); decoder_step.onnx is the ordinary step contract, with `state.prev_att`
[N, L] for location-aware attention. Both graphs use the TorchScript exporter like the
translator's (graphs.py, whose helpers this reuses): dynamic B, T, L, N, K; example
sizes B=2, T=29 (L=4 after 8x), N=3, K=3, so no axis is frozen, and the tests run the
graphs at other sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..runtime import manifest as mf
from ..runtime.manifest import Manifest
from ..runtime.media.features import FeatureConfig
from ..runtime.tasks.transcriber import DEFAULT_MAX_SECONDS, FEATURE_LENGTHS, FEATURES, Transcriber, rate_step_limit
from ..runtime.text import Vocab
from ..train.core.step_contract import EncoderGraph, StepGraph
from ..train.speech.model import Speller
from .bundle_writer import (
    GOLDEN_SEARCHES,
    ExportError,
    bundle_manifest,
    resolve_checkpoint,
    staged_bundle,
    write_manifest,
)
from .graphs import _quiet_export, check_model, expected_shapes, set_output_shapes, step_axes
from .parity import TOL, compare_searches, graph_parity, load_runtime

EXAMPLE_B, EXAMPLE_T, EXAMPLE_N, EXAMPLE_K = 2, 29, 3, 3


def example_features(model: Speller, B: int = EXAMPLE_B, T: int = EXAMPLE_T, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frames [B, T, n_mels], zero past lengths that differ per item (the longest is T)."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(B, T, model.cfg.n_mels, generator=g)
    lengths = torch.tensor([max(1, T - (7 * i) % T) for i in range(B)], dtype=torch.long)
    for b in range(B):
        feats[b, lengths[b]:] = 0
    return feats, lengths


def export_speech_graphs(model: Speller, directory: str | Path) -> tuple[Path, Path]:
    """Both graphs into `directory`, declared shapes fixed, onnx.checker run."""
    model.eval()
    directory = Path(directory)
    enc_path, step_path = directory / mf.ENCODER_FILE, directory / mf.STEP_FILE
    enc_names = model.encoder_output_names()
    feats, lengths = example_features(model)
    enc_axes: dict[str, dict[int, str]] = {FEATURES: {0: "B", 1: "T"}, FEATURE_LENGTHS: {0: "B"}}
    for name in enc_names:
        enc_axes[name] = {0: "B"} if name == mf.state_input("h") else {0: "B", 1: "L"}
    with torch.no_grad():
        _quiet_export(EncoderGraph(model).eval(), (feats, lengths), enc_path, [FEATURES, FEATURE_LENGTHS], enc_names,
                      enc_axes)
        enc = model.encode(feats, lengths)
        states = model.initial_states(enc)
        N, K = EXAMPLE_N, EXAMPLE_K
        row = torch.arange(N) % EXAMPLE_B
        args = (torch.arange(N) % (model.vocab_size - 4) + 4, row, row.clone(), torch.tensor([K]),
                *(enc[n] for n in model.memory_names), *(states[s.name] for s in model.state_specs()))
        _quiet_export(StepGraph(model).eval(), args, step_path, model.step_input_names(), model.step_output_names(),
                      step_axes(model, variable_length=True))
    enc_shapes, step_shapes = expected_shapes(model)
    set_output_shapes(enc_path, enc_shapes)
    set_output_shapes(step_path, step_shapes)
    check_model(enc_path)
    check_model(step_path)
    return enc_path, step_path


def torch_encode_features(model: Speller, features: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """The PyTorch encoder on numpy frames [B, T, F] and lengths [B], outputs by name as numpy."""
    model.eval()
    with torch.no_grad():
        out = model.encode(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
                           torch.from_numpy(np.asarray(lengths, dtype=np.int64)))
    return {n: out[n].numpy() for n in model.encoder_output_names()}


def torch_speech_decode(model: Speller, manifest: Manifest, features: np.ndarray, lengths: np.ndarray, search,
                        max_length: int | None = None):
    """The PyTorch reference search over frames: the runtime's reference loop, torch graphs."""
    from ..runtime.reference_loop import decode
    from ..train.core.torch_step import torch_step_fn

    return decode(manifest, torch_encode_features(model, features, lengths), torch_step_fn(model), search,
                  max_length=max_length)


FeatureSeq2Seq = Transcriber  # the name export parity used before the runtime Transcriber existed


def speech_parity(model: Speller, bundle_dir: str | Path, features: np.ndarray, lengths: np.ndarray,
                  searches=None, max_length: int | None = None, tol: float | None = TOL) -> dict:
    """Step-graph parity (beam-like row reordering) and whole-search parity (runtime loop on ORT
    vs the same loop on PyTorch) on frames [B, T, F]; ParityError when they differ beyond tol."""
    d = Path(bundle_dir)
    report = {"step": graph_parity(model, d / mf.ENCODER_FILE, d / mf.STEP_FILE,
                                   {FEATURES: features.astype(np.float32), FEATURE_LENGTHS: lengths.astype(np.int64)},
                                   torch_encode_features(model, features, lengths), steps=6, beams=3, k=5, tol=tol)}
    rt, loop = load_runtime(Transcriber, d)
    report["search"] = compare_searches(
        lambda s: rt.decode_features(features, lengths, s, max_length),
        lambda s: torch_speech_decode(model, rt.manifest, features, lengths, s, max_length), len(lengths), loop,
        searches, tol)
    return report


def write_golden_audio(model: Speller, manifest: Manifest, features: FeatureConfig, directory: Path,
                       recordings: list[tuple[str | Path, str]], max_length: int,
                       max_seconds: float | None = None) -> list[dict]:
    """Copy `recordings` ((path, reference transcript) pairs) into `directory` as golden_<i>.wav (16-bit
    mono at the bundle's rate) and write golden.json: PyTorch's greedy and beam-5 decodes of each copy,
    from the copy's own samples read back the runtime's way, so `edge-s2s verify` can re-run them anywhere.
    Recordings that are silence only or over `max_seconds` are skipped; returns the cases."""
    import json

    import soundfile as sf

    from ..runtime.media.audio import is_silence, load_audio
    from ..runtime.media.features import log_mel

    rate, cases = features.sample_rate, []
    names: list[tuple[str, str]] = []
    for src, transcript in recordings:
        x, _ = load_audio(src, rate)
        if is_silence(x, rate) or (max_seconds is not None and x.size / rate > max_seconds):
            continue
        name = f"golden_{len(names)}.wav"
        sf.write(str(directory / name), x, rate, subtype="PCM_16")
        names.append((name, transcript))
    for name, transcript in names:
        feats = log_mel(load_audio(directory / name, rate)[0], features)
        for sjson, search in GOLDEN_SEARCHES:
            hyps = torch_speech_decode(model, manifest, feats[None], np.array([feats.shape[0]]), search, max_length)[0]
            cases.append({"audio": name, "transcript": transcript, "search": sjson, "max_length": max_length,
                          "hypotheses": [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob),
                                          "score": float(h.score)} for h in hyps]})
    (directory / mf.GOLDEN_FILE).write_text(json.dumps({"from": "pytorch", "cases": cases}, indent=1) + "\n",
                                            encoding="utf-8")
    return cases


def write_speech_bundle(model: Speller, vocab: Vocab, features: FeatureConfig, out_dir: str | Path, max_length: int,
                        checkpoint: str | Path, model_info: dict | None = None, metrics: dict | None = None,
                        parity_features: tuple[np.ndarray, np.ndarray] | None = None,
                        max_seconds: float | None = None, split_seconds: float | None = None,
                        golden_audio: list[tuple[str | Path, str]] | None = None,
                        tokens_per_second: float | None = None) -> Manifest:
    """Export `model` as a bundle at `out_dir` (atomically: a failed export leaves nothing).

    features: the log-mel recipe the model was trained on (the manifest's "preprocessing").
    parity_features: held-out (frames [B, T, F], lengths [B]); when given, parity is proved and recorded.
    max_seconds: the longest recording the runtime accepts (preprocessing "max_seconds"; None = the
    runtime's DEFAULT_MAX_SECONDS).
    split_seconds: recordings longer than this are cut at pauses into pieces of about this length
    (preprocessing "split_seconds", at most max_seconds; None = only past max_seconds). Golden cases are
    kept within it, so PyTorch's decode and the runtime's see the same piece.
    golden_audio: (recording, reference transcript) pairs copied into the bundle with PyTorch's decodes
    (golden.json, `write_golden_audio`); None writes no golden.json.
    tokens_per_second: the fastest output rate of the training recordings (`trained_tokens_per_second`),
    the manifest's max_tokens_per_second: the runtime's step limit then follows each recording's
    length, and max_length becomes at least the limit of a `max_seconds` piece (what other tools
    decode with). None: not recorded (the runtime falls back to a generous default rate).
    """
    if features.n_mels != model.cfg.n_mels:
        raise ExportError(f"the feature recipe has n_mels={features.n_mels} but the model reads "
                          f"{model.cfg.n_mels}-bin frames: pass the FeatureConfig the model was trained with")
    if len(vocab) != model.vocab_size:
        raise ExportError(f"the vocabulary has {len(vocab)} tokens but the model has {model.vocab_size}: "
                          "pass the vocabulary it was trained with")
    if max_seconds is not None and not max_seconds > 0:
        raise ExportError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    limit = max_seconds or DEFAULT_MAX_SECONDS
    if split_seconds is not None and not 0 < split_seconds <= limit:
        raise ExportError(f"split_seconds must be above 0 and at most max_seconds ({limit:g}), got {split_seconds!r}")
    if tokens_per_second is not None and not 0 < tokens_per_second <= mf.MAX_TOKENS_PER_SECOND:
        raise ExportError(f"tokens_per_second must be above 0 and at most {mf.MAX_TOKENS_PER_SECOND:g}, "
                          f"got {tokens_per_second!r}")
    if tokens_per_second is not None:
        max_length = max(max_length, rate_step_limit(max_seconds or DEFAULT_MAX_SECONDS, tokens_per_second))
    pre = features.to_dict()
    if max_seconds is not None:
        pre["max_seconds"] = float(max_seconds)
    if split_seconds is not None:
        pre["split_seconds"] = float(split_seconds)
    model.eval()
    out = Path(out_dir)
    with staged_bundle(out) as tmp:
        export_speech_graphs(model, tmp)
        vocab.save(tmp / mf.TOKENS_FILE)
        info = {"architecture": "listen-attend-spell", **model.cfg.to_dict(), "vocab_size": len(vocab), "unit": "char",
                **(model_info or {})}
        manifest = bundle_manifest(tmp, "transcribe", model, vocab, pre, max_length, info,
                                   Path(checkpoint))
        manifest.max_tokens_per_second = None if tokens_per_second is None else float(tokens_per_second)
        if golden_audio:
            write_golden_audio(model, manifest, features, tmp, golden_audio, max_length,
                               split_seconds or limit)
        all_metrics = dict(metrics or {})
        write_manifest(tmp, manifest, all_metrics)
        if parity_features is not None:
            all_metrics["parity"] = speech_parity(model, tmp, *parity_features, max_length=max_length)
            write_manifest(tmp, manifest, all_metrics)
    return manifest


def load_speech_run(run_dir: str | Path, checkpoint: str | Path = "best"):
    """(model in eval mode, vocab, SpeechTrainConfig, checkpoint path) of a speech run."""
    from ..train.core.checkpoint import load_checkpoint
    from ..train.core.run_dir import TOKENS_FILE
    from ..train.speech.loop import TASK, SpeechTrainConfig

    run = Path(run_dir)
    if not run.is_dir():
        raise ExportError(f"run directory {run} does not exist: pass the directory training wrote")
    ck_path = resolve_checkpoint(run, checkpoint)
    ck = load_checkpoint(ck_path)
    if ck.get("task") != TASK:
        raise ExportError(f"{ck_path} is not a speech (transcribe) checkpoint")
    cfg = SpeechTrainConfig.from_dict(ck["train_config"])
    vocab = Vocab.load(run / TOKENS_FILE)
    if len(vocab) != ck["vocab_size"]:
        raise ExportError(f"{run / TOKENS_FILE} has {len(vocab)} tokens but the checkpoint was trained with "
                          f"{ck['vocab_size']}: the run directory is inconsistent")
    model = Speller(cfg.model, len(vocab))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, vocab, cfg, ck_path


def _parity_frames(cfg, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A padded batch of the run's first `n` validation utterances (different lengths: padding is exercised)."""
    from ..train.speech.features import batch_features
    from ..train.speech.loop import cached_features, ensure_digit_sets

    manifest = Path(cfg.data_dir) / "val" / "manifest.jsonl"
    if not manifest.is_file():
        manifest = ensure_digit_sets(cfg)["val"]
    feats, _ = cached_features(manifest, cfg.feature_config)
    if not feats:
        raise ExportError(f"{manifest} holds no utterances: export needs a few validation recordings for parity")
    return batch_features(feats[:n])


def _golden_recordings(cfg, n: int) -> list[tuple[str, str]]:
    """(audio path, transcript) of `n` of the run's validation recordings, of different lengths where it can."""
    from ..train.speech.data import read_manifest

    manifest = Path(cfg.data_dir) / "val" / "manifest.jsonl"
    rows = [r for r in read_manifest(manifest) if Path(r["audio"]).is_file()] if manifest.is_file() else []
    if n and not rows:
        raise ExportError(f"{manifest} lists no readable recordings: export copies a few validation recordings into "
                          "golden.json; keep the run's data_dir where training left it")
    by_len: dict[int, dict] = {}
    for r in rows:
        by_len.setdefault(len(r["transcript"]), r)
    lengths = sorted(by_len)
    step = max(1, len(lengths) // max(n, 1))
    picked = [by_len[k] for k in lengths[::step]][:n]
    picked += [r for r in rows if r not in picked][: n - len(picked)]
    return [(r["audio"], r["transcript"]) for r in picked]


def trained_max_seconds(cfg, margin: float = 1.5) -> float | None:
    """The longest recording the runtime should hand the model whole: `margin` x the longest
    training recording, in whole seconds (at least 5). Attention trained on 8 s strings wanders
    on 25 s ones, so longer input is split at pauses instead. None when the training manifest is gone."""
    import math

    from ..runtime.tasks.transcriber import DEFAULT_MAX_SECONDS
    from ..train.speech.data import MANIFEST, SpeechDataError, read_manifest

    try:
        rows = read_manifest(Path(cfg.data_dir) / "train" / MANIFEST)
    except SpeechDataError:
        return None
    longest = max((float(r.get("duration", 0.0)) for r in rows), default=0.0)
    if longest <= 0:
        return None
    return float(min(DEFAULT_MAX_SECONDS, max(5.0, math.ceil(longest * margin))))


def max_token_rate(utterances: list[tuple[int, float]]) -> float | None:
    """The fastest output rate, tokens per second, of (token count, seconds) pairs, rounded up to 0.01;
    None when no utterance has both. The maximum, not a percentile: a rate too high costs a few
    steps on a model that loops, one too low cuts a fast speaker's text."""
    import math

    rates = [n / sec for n, sec in utterances if n > 0 and sec > 0]
    return math.ceil(max(rates) * 100) / 100 if rates else None


def trained_tokens_per_second(cfg, vocab: Vocab) -> float | None:
    """The manifest's max_tokens_per_second: the fastest output rate (tokens of the transcript, end
    token excluded, per second of audio) among the training recordings, as `trained_max_seconds`
    reads them. None when the training manifest is gone."""
    from ..train.speech.data import MANIFEST, SpeechDataError, read_manifest
    from ..train.speech.loop import text_ids

    try:
        rows = read_manifest(Path(cfg.data_dir) / "train" / MANIFEST)
    except SpeechDataError:
        return None
    return max_token_rate([(len(text_ids(r["transcript"], vocab)), float(r.get("duration", 0.0))) for r in rows])


def regolden_speech(bundle: Path) -> None:
    """golden.json of a (quantised) speech bundle decoded by its own graphs on this CPU (the
    reference loop), for `edge-s2s verify` to re-run: the recordings are the ones already in it."""
    import json

    doc = json.loads((bundle / mf.GOLDEN_FILE).read_text(encoding="utf-8"))
    rt = Transcriber.load(bundle, loop="reference", threads=1)
    from ..runtime.tools.verify import search_from_json

    for case in doc["cases"]:
        t = rt.transcribe([bundle / case["audio"]], search_from_json(case["search"]), max_length=case["max_length"])[0]
        case["hypotheses"] = [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob), "score": float(h.score)}
                              for h in t.hypotheses]
    doc["from"] = "onnxruntime-cpu (int8 graphs)"
    (bundle / mf.GOLDEN_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def export_speech_bundle(run_dir: str | Path, out_dir: str | Path, checkpoint: str | Path = "best",
                         parity: bool = True, max_length: int | None = None, metrics: dict | None = None,
                         golden: int = 3, max_seconds: float | None = None, int8: str = "none",
                         split_seconds: float | None = None):
    """Export a speech run (train/speech/loop.py) as a transcribe bundle; returns an ExportReport.

    int8: "none", "linear" (MatMul/Gemm/Gather weights) or "all" (every op ORT quantises): the
    fp32 bundle is exported (parity proved) into a temporary folder, quantised into `out_dir`, and
    its golden cases decoded again by the int8 graphs on this CPU.
    Parity is proved on the run's validation recordings, and `golden` of them are copied into the
    bundle with PyTorch's decodes (golden.json, re-run by `edge-s2s verify`): they must still be in
    its data_dir. max_seconds: the runtime's limit (longer recordings are split at pauses); None
    derives it from the training data (`trained_max_seconds`). The manifest's max_tokens_per_second
    comes from the training data too (`trained_tokens_per_second`), and max_length is at least the
    step limit of a max_seconds piece. split_seconds: see `write_speech_bundle` (None: not written).
    """
    import json
    import tempfile

    from ..runtime.tools.run_logs import read_metrics
    from ..train.speech.loop import data_info
    from .bundle_writer import INT8_OPS, ExportReport, quantize_bundle

    if int8 not in INT8_OPS:
        raise ExportError(f"int8 must be one of {', '.join(INT8_OPS)}, got {int8!r}")
    if int8 != "none":
        with tempfile.TemporaryDirectory(prefix="edge-s2s-fp32-") as work:
            fp32 = export_speech_bundle(run_dir, Path(work) / "fp32", checkpoint, parity, max_length, metrics,
                                        golden, max_seconds, split_seconds=split_seconds)
            quantize_bundle(fp32.bundle, Path(out_dir), INT8_OPS[int8], regolden_speech if golden > 0 else None)
        saved = json.loads((Path(out_dir) / mf.MANIFEST_FILE).read_text(encoding="utf-8"))
        return ExportReport(Path(out_dir), fp32.checkpoint, Manifest.load(out_dir), int8=True, parity=fp32.parity,
                            files=dict(saved.get("files", {})), golden_cases=fp32.golden_cases)

    model, vocab, cfg, ck_path = load_speech_run(run_dir, checkpoint)
    max_length = int(max_length or cfg.max_length)
    if max_seconds is None:
        max_seconds = trained_max_seconds(cfg)
    rate = trained_tokens_per_second(cfg, vocab)
    frames = _parity_frames(cfg) if parity else None
    all_metrics = {"training": {"checkpoint": ck_path.name, "history": read_metrics(run_dir)}, **(metrics or {})}
    recordings = _golden_recordings(cfg, golden) if golden > 0 else None
    manifest = write_speech_bundle(model, vocab, cfg.feature_config, out_dir, max_length, ck_path,
                                   model_info=data_info(cfg),
                                   metrics=all_metrics, parity_features=frames, golden_audio=recordings,
                                   max_seconds=max_seconds, split_seconds=split_seconds, tokens_per_second=rate)
    saved = json.loads((Path(out_dir) / mf.MANIFEST_FILE).read_text(encoding="utf-8"))
    report = dict(saved.get("metrics", {}).get("parity", {}))
    if report:
        report.update(enforced=True, tolerance=TOL)
    golden_file = Path(out_dir) / mf.GOLDEN_FILE
    n_cases = len(json.loads(golden_file.read_text(encoding="utf-8"))["cases"]) if golden_file.is_file() else 0
    return ExportReport(Path(out_dir), ck_path, manifest, parity=report, files=dict(saved.get("files", {})),
                        golden_cases=n_cases)
