"""Held-out WER / CER of a speech bundle (greedy vs beam 5) and real-time factor, runtime vs PyTorch eager;
writes docs/speech-results.{json,md}, or with --section one section at the end of --out (any bundle + test manifest).

    python scripts/speech_table.py --bundle bundles/speech-fsdd --run runs/speech-fsdd
    python scripts/speech_table.py --bundle B --run R --test data/fsdd-digits/test/manifest.jsonl --limit 100
    python scripts/speech_table.py --bundle bundles/speech-tuxpaint-fr --run runs/speech-tuxpaint-fr \
        --test data/tuxpaint-fr/test/manifest.jsonl --section "Tux Paint French phrases" --examples 8

Transcripts come from the runtime (`Transcriber`, ONNX Runtime, the compiled loop) on the test
manifest's wav files, so the numbers are what a user gets. WER and CER are jiwer's, over the
whole set; digits are written space-separated, so WER is the digit error rate. Real-time factor =
processing seconds / audio seconds, one recording at a time, one thread, greedy, audio read and
features included, for the runtime and for the same model in PyTorch eager (the run's checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from results_out import add_write_docs, results_dir  # noqa: E402

from edge_s2s.runtime.search import Beam, Greedy  # noqa: E402
from edge_s2s.runtime.tasks.transcriber import Transcriber  # noqa: E402
from edge_s2s.runtime.tools.run_logs import read_metrics  # noqa: E402
from edge_s2s.train.speech.data import read_manifest  # noqa: E402
from edge_s2s.train.speech.features import features_from_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = {"greedy": Greedy(), "beam5": Beam(size=5)}


def error_rates(hyps: list[str], refs: list[str]) -> dict[str, float]:
    import jiwer

    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps)),
            "string_accuracy": sum(h == r for h, r in zip(hyps, refs)) / max(len(refs), 1)}


def runtime_rtf(rt: Transcriber, paths: list[str], seconds: float) -> float:
    t0 = time.perf_counter()
    for p in paths:
        rt.transcribe([p])
    return (time.perf_counter() - t0) / seconds


def torch_rtf(run: Path, paths: list[str], seconds: float) -> float:
    """The same checkpoint in PyTorch eager: features, encoder, greedy steps through the reference loop."""
    from edge_s2s.export.speech import load_speech_run
    from edge_s2s.train.speech.loop import torch_transcribe

    model, vocab, cfg, _ = load_speech_run(run)
    fc = cfg.feature_config
    t0 = time.perf_counter()
    for p in paths:
        torch_transcribe(model, [features_from_file(p, fc)], vocab, cfg.max_length)
    return (time.perf_counter() - t0) / seconds


def run_info(run: Path | None) -> dict:
    if run is None or not (run / "config.json").is_file():
        return {}
    cfg = json.loads((run / "config.json").read_text(encoding="utf-8"))
    hist = read_metrics(run)
    best = min(hist, key=lambda m: m.get("val_cer", m["val_loss"])) if hist else {}
    return {"train": cfg["train"], "utterances": cfg.get("utterances", {}), "epochs_done": len(hist),
            "train_seconds": round(sum(m["seconds"] for m in hist), 1), "best_epoch": best.get("epoch"),
            "best_val_cer": best.get("val_cer")}


def markdown(res: dict) -> str:
    info, t = res.get("run", {}), res["train_cfg"]
    lines = ["# Speech recognition on real recordings: FSDD digit strings, held-out speaker", "",
             "Listen, Attend and Spell (train/speech/model.py) trained on spoken digit strings built from the Free "
             "Spoken Digit Dataset (human recordings, CC BY-SA 4.0; train/speech/data.py). The test strings are "
             f"spoken by a speaker never heard in training ({', '.join(res['test_speakers'])}). Transcripts are "
             "digits separated by spaces, so WER is the digit error rate. Made by `scripts/speech_table.py`.", "",
             f"Test set: {res['n_test']} strings, {res['audio_seconds']:.0f} s of audio. "
             f"Bundle: `{res['bundle']}`.", "",
             "| search | WER | CER | whole string right |", "|---|---|---|---|"]
    for name, r in res["searches"].items():
        lines.append(f"| {name} | {100 * r['wer']:.1f}% | {100 * r['cer']:.1f}% | {100 * r['string_accuracy']:.1f}% |")
    lines += ["", "Real-time factor (processing / audio seconds; one recording at a time, one thread, greedy, "
              "reading and features included; lower is faster):", "", "| engine | RTF |", "|---|---|"]
    for name, v in res["rtf"].items():
        lines.append(f"| {name} | {v:.4f} |")
    if info:
        m = t.get("model", {})
        lines += ["", "## How it was made", "",
                  f"- data: {t['n_train']} train / {t['n_val']} val / {t['n_test']} test digit strings (2-10 digits; "
                  f"random, phone numbers, PINs), data seed {t['data_seed']}; train and val from the other speakers "
                  "(val from FSDD's test takes 0-4)",
                  f"- model: listener {m.get('listener_hidden')} per direction, {m.get('pyramid_layers')} pyramid "
                  f"layers (8x), speller {m.get('dec_hidden')}, attention {m.get('attention')}; features "
                  f"{t['features']['n_mels']} log-mel bins at {t['features']['sample_rate']} Hz, normalised per "
                  f"utterance; SpecAugment {'on' if t['spec_augment'] else 'off'}",
                  f"- training: seed {t['seed']}, Adam lr {t['lr']}, batch {t['batch_size']}, "
                  f"{info['epochs_done']} epochs, {info['train_seconds']:.0f} s on one CPU thread; best epoch "
                  f"{info['best_epoch']} (validation CER {100 * (info['best_val_cer'] or 0):.1f}%)"]
    for note in res.get("notes", []):
        lines += ["", note]
    if res.get("commands"):
        lines += ["", "Commands:", "", "```"] + res["commands"] + ["```"]
    return "\n".join(lines) + "\n"


def section_markdown(res: dict, title: str) -> str:
    """One `## title` section: the WER/CER table, example transcripts, how the model was made, the commands."""
    info, t = res.get("run", {}), res["train_cfg"]
    lines = [f"## {title}", "",
             f"Test set: `{res['test']}`, {res['n_test']} recordings, {res['audio_seconds']:.0f} s of audio "
             f"(speakers: {', '.join(res['test_speakers'])}). Bundle: `{res['bundle']}`. Transcripts from the runtime; "
             "WER and CER are jiwer's over the whole set. Made by `scripts/speech_table.py --section`.", "",
             "| search | WER | CER | whole transcript right |", "|---|---|---|---|"]
    for name, r in res["searches"].items():
        lines.append(f"| {name} | {100 * r['wer']:.1f}% | {100 * r['cer']:.1f}% | {100 * r['string_accuracy']:.1f}% |")
    if res.get("examples"):
        lines += ["", "Examples (held-out recordings, reference / greedy / beam 5):", "",
                  "| reference | greedy | beam 5 |", "|---|---|---|"]
        lines += [f"| {e['ref']} | {e['greedy'] or '(empty)'} | {e['beam5'] or '(empty)'} |" for e in res["examples"]]
    lines += ["", "Real-time factor (one recording at a time, one thread, greedy): "
              + ", ".join(f"{k} {v:.4f}" for k, v in res["rtf"].items()) + "."]
    if info:
        m, f = t.get("model", {}), t["features"]
        corpus = t.get("corpus", "fsdd")
        data = (f"Tux Paint's `{t.get('lang')}` recordings, held out by utterance (a sentence is never in two "
                "splits)" if corpus == "tuxpaint" else "FSDD digit strings, held-out speaker")
        lines += ["", f"- data: {data}; {info['utterances'].get('train')} train / {info['utterances'].get('val')} "
                  f"val recordings, data seed {t['data_seed']}; max_length {t['max_length']}",
                  f"- model: listener {m.get('listener_hidden')} per direction, {m.get('pyramid_layers')} pyramid "
                  f"layers, speller {m.get('dec_hidden')}, attention {m.get('attention')}; {f['n_mels']} log-mel "
                  f"bins at {f['sample_rate']} Hz, {f['win_ms']:g} ms / {f['hop_ms']:g} ms, normalised per utterance: "
                  f"{f['normalize']}; SpecAugment {'on' if t['spec_augment'] else 'off'}",
                  f"- training: seed {t['seed']}, Adam lr {t['lr']}, batch {t['batch_size']}, {info['epochs_done']} "
                  f"epochs, {info['train_seconds']:.0f} s on one CPU thread; best epoch {info['best_epoch']} "
                  f"(validation CER {100 * (info['best_val_cer'] or 0):.1f}%)"]
    for note in res.get("notes", []):
        lines += ["", note]
    if res.get("commands"):
        lines += ["", "Commands:", "", "```"] + res["commands"] + ["```"]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """`text` with the `## ` section of the same title replaced by `section` (it runs to the next `## ` heading),
    or `section` appended at the end."""
    title = section.split("\n", 1)[0]
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == title), None)
    if start is None:
        return text.rstrip("\n") + ("\n\n" if text.strip() else "") + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--run", type=Path, default=None, help="the run directory (training facts, PyTorch RTF)")
    ap.add_argument("--test", type=Path, default=ROOT / "data" / "fsdd-digits" / "test" / "manifest.jsonl")
    ap.add_argument("--limit", type=int, default=0, help="first N test strings only (0 = all)")
    ap.add_argument("--rtf-n", type=int, default=50, help="recordings timed for the real-time factor")
    ap.add_argument("--out", type=Path, default=None,
                    help="default runs/results/speech-results.md (docs/ with --write-docs)")
    add_write_docs(ap)
    ap.add_argument("--command", action="append", default=[], help="a command line to quote in the report")
    ap.add_argument("--note", action="append", default=[], help="a paragraph to add to the report")
    ap.add_argument("--section", default=None, help="write a section with this title at the end of --out "
                    "(replacing one of the same title) instead of the whole file; JSON beside it")
    ap.add_argument("--examples", type=int, default=0, help="example transcripts to show (with --section)")
    a = ap.parse_args(argv)
    a.out = a.out or results_dir(a) / "speech-results.md"
    torch.set_num_threads(1)
    rows = read_manifest(a.test)
    if a.limit:
        rows = rows[: a.limit]
    paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
    seconds = sum(float(r["duration"]) for r in rows)
    rt = Transcriber.load(a.bundle, threads=1)
    test = a.test.resolve()
    res: dict = {"bundle": str(a.bundle), "test": str(test.relative_to(ROOT) if test.is_relative_to(ROOT) else test),
                 "n_test": len(rows), "audio_seconds": seconds,
                 "test_speakers": sorted({r["speaker"] for r in rows}), "searches": {}, "rtf": {}}
    all_hyps = {}
    for name, search in SEARCHES.items():
        all_hyps[name] = hyps = [t.text for t in rt.transcribe(paths, search, batch_size=16)]
        res["searches"][name] = error_rates(hyps, refs)
        print(name, res["searches"][name], file=sys.stderr)
    step = max(1, len(rows) // max(a.examples, 1))
    res["examples"] = [{"ref": refs[i], **{n: h[i] for n, h in all_hyps.items()}}
                       for i in range(0, len(rows), step)][: a.examples]
    timed = paths[: a.rtf_n]
    timed_s = sum(float(r["duration"]) for r in rows[: a.rtf_n])
    res["rtf"]["edge-s2s runtime (onnxruntime, compiled loop)"] = runtime_rtf(rt, timed, timed_s)
    if a.run is not None:
        res["rtf"]["PyTorch eager (same checkpoint)"] = torch_rtf(a.run, timed, timed_s)
    res["run"] = run_info(a.run)
    res["train_cfg"] = res["run"].get("train", {})
    res["commands"], res["notes"] = a.command, a.note
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if a.section:
        slug = re.sub(r"[^a-z0-9]+", "-", a.section.lower()).strip("-")
        a.out.with_name(f"{a.out.stem}-{slug}.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        section = section_markdown(res, a.section)
        a.out.write_text(replace_section(a.out.read_text(encoding="utf-8") if a.out.is_file() else "", section),
                         encoding="utf-8")
        print(section)
        return 0
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    a.out.write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
