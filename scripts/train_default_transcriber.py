"""Train (or take) a digit-string recogniser, shrink it if that costs no accuracy, and ship it as the default
transcriber (the model `edge-s2s transcribe call.wav` and `Transcriber.load()` use).

    python scripts/train_default_transcriber.py                       # data, training, exports, ship
    python scripts/train_default_transcriber.py --run runs/speech-fsdd  # ship an existing run

1. Data: FSDD digit strings under --data (`train/speech/data.py` build_fsdd, seed 13; the test
   strings are spoken by a speaker never heard in training). Built when missing.
2. Training (skipped with --run): `train_speech` with the FSDD defaults; an interrupted run resumes.
3. Export fp32 (parity with PyTorch proved; split_seconds, the piece length a long recording is cut into at
   its pauses, chosen on 11-30-digit and ordinary validation strings: `choose_split_seconds`), then the same graphs with dynamic int8 weights:
   "linear" (MatMul/Gemm/Gather: the speller and the projections) and "all" (the listener's LSTMs too).
4. Each variant is scored through the runtime on the validation strings (greedy WER: this chooses)
   and on the held-out-speaker test strings (greedy and beam 5: this is reported). The smallest
   variant whose validation WER is within --int8-tolerance of fp32's ships.
5. The shipped bundle gets golden cases (`edge-s2s verify`): two phone numbers spoken by espeak-ng
   (or flite) are synthesised into it, not FSDD recordings (FSDD is CC BY-SA and never committed),
   each decoded greedy and beam 5 (PyTorch for fp32, the int8 graphs on this CPU otherwise). Its
   test metrics go into the manifest, and it replaces --out (default models/transcriber/, package data).
6. Replacing a model already in --out is decided on VALIDATION strings only (the held-out speaker's
   test strings are reported, never used to decide): the chosen variant ships only if its validation
   WER is at most --replace-tolerance above the old model's AND its WER is lower on the validation
   strings rendered again with pauses of digital zeros (issue 17; `rerender_digit_set`) AND, when the data
   has val-isolated/ (the training speakers' validation takes, one digit each), its WER there is at most
   --replace-tolerance above the old model's. Both models'
   numbers go into --work/variants.json ("replace"); --force skips this check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
VARIANTS = {"fp32": None, "int8 (linear)": ["MatMul", "Gemm", "Gather"], "int8 (all)": []}  # [] = every op type
GOLDEN_SAYINGS = ("four one five, five five five, zero one nine nine", "two eight six seven")


def bundle_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def score(bundle: Path, manifest: Path, searches: dict) -> dict[str, dict[str, float]]:
    """jiwer WER / CER (and whole-string accuracy) of a bundle on a manifest, per search, through the runtime."""
    from speech_table import error_rates

    from edge_s2s.runtime.tasks.transcriber import Transcriber
    from edge_s2s.train.speech.data import read_manifest

    rows = read_manifest(manifest)
    rt = Transcriber.load(bundle, threads=1)
    paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
    return {name: error_rates([t.text for t in rt.transcribe(paths, s, batch_size=16)], refs)
            for name, s in searches.items()}


def synthesise(text: str, path: Path) -> Path:
    """`text` spoken by espeak-ng (or flite) into the wav `path`."""
    if shutil.which("espeak-ng"):
        cmd = ["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), text]
    elif shutil.which("flite"):
        cmd = ["flite", "-t", text, "-o", str(path)]
    else:
        raise SystemExit("error: the golden recordings are synthesised: sudo apt-get install -y espeak-ng")
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def add_golden(bundle: Path, run: Path, sayings: tuple[str, ...], int8: bool) -> None:
    """Synthesise `sayings` into the bundle, write golden.json (greedy and beam 5 decodes), re-hash the files."""
    from edge_s2s.export.bundle_writer import GOLDEN_SEARCHES, write_manifest
    from edge_s2s.export.speech import load_speech_run, torch_speech_decode
    from edge_s2s.runtime import manifest as mf
    from edge_s2s.runtime.manifest import Manifest
    from edge_s2s.runtime.tasks.transcriber import Transcriber
    from edge_s2s.train.speech.features import batch_features, features_from_file

    manifest = Manifest.load(bundle)
    model, _, cfg, _ = load_speech_run(run)
    ort_ref = Transcriber.load(bundle, loop="reference")
    cases = []
    for i, text in enumerate(sayings):
        name = f"golden_{i}.wav"
        wav = synthesise(text, bundle / name)
        x, lengths = batch_features([features_from_file(wav, cfg.feature_config)])
        for sjson, search in GOLDEN_SEARCHES:
            if int8:
                hyps = ort_ref.decode_features(x, lengths, search, manifest.max_length)[0]
            else:
                hyps = torch_speech_decode(model, manifest, x, lengths, search, manifest.max_length)[0]
            cases.append({"audio": name, "search": sjson, "max_length": manifest.max_length,
                          "hypotheses": [{"ids": list(map(int, h.ids)), "log_prob": float(h.log_prob),
                                          "score": float(h.score)} for h in hyps]})
    golden_from = "onnxruntime-cpu (int8 graphs)" if int8 else "pytorch"
    (bundle / mf.GOLDEN_FILE).write_text(json.dumps({"from": golden_from, "cases": cases}, indent=1) + "\n",
                                         encoding="utf-8")
    write_manifest(bundle, manifest, manifest.metrics)


SPLIT_CANDIDATES = (4.0, 6.0, 8.0, None)  # None: split only past max_seconds (the export's default)


def choose_split_seconds(bundle: Path, fsdd: str, work: Path, n: int = 120, seed: int = 77,
                         speakers: list[str] | None = None, val: Path | None = None) -> dict:
    """Step 3b: the bundle's split_seconds, chosen on LONG validation strings (11-30 digits, longer than any
    training string) of the training speakers' validation takes, with pauses of digital zeros and of -50 dBFS
    noise, and on the ordinary validation strings `val` when given (cutting a 10-digit number in two costs
    there): greedy digit error per candidate, the lowest mean wins (ties: the longer pieces). Returns the
    scores and "chosen" (None: do not write split_seconds). `speakers`: the FSDD speakers the model was
    trained on (default: all but the held-out theo); a held-out speaker is never used here."""
    from dataclasses import replace

    import numpy as np
    from speech_table import error_rates

    from edge_s2s.runtime.tasks.transcriber import Transcriber
    from edge_s2s.train.speech.data import (VAL_TAKES, digit_strings, fsdd_index, read_manifest, speaker_split,
                                            write_digit_set)

    index = fsdd_index(fsdd)
    train_idx = speaker_split(index)[0] if speakers is None else index.select(speakers)
    takes = train_idx.select(takes=VAL_TAKES)
    utts = digit_strings(takes, takes.speakers, n, np.random.default_rng(seed), min_digits=11, max_digits=30,
                         kinds={"random": 1.0}, prefix="vlong-", pause_mix={"zeros": 1.0})
    sets = {f"{kind}{'' if db is None else f'{db:g}'}": read_manifest(write_digit_set(
        work / "val-long" / kind, [replace(u, pause=kind, pause_db=db) for u in utts]))
        for kind, db in (("zeros", None), ("noise", -50.0))}
    if val is not None:
        sets["val"] = read_manifest(val)
    rt = Transcriber.load(bundle, threads=1)
    scores: dict = {}
    for cand in SPLIT_CANDIDATES:
        rt.split_seconds = rt.max_seconds if cand is None else min(cand, rt.max_seconds)
        per = {}
        for name, rows in sets.items():
            ts = rt.transcribe([r["audio"] for r in rows], batch_size=16, errors="keep")
            per[name] = error_rates([t.text if t.error is None else "" for t in ts],
                                    [r["transcript"] for r in rows])["wer"]
        scores["max" if cand is None else f"{cand:g}"] = {**per, "mean": float(np.mean(list(per.values())))}
        print(f"  split_seconds {cand or rt.max_seconds:g}: validation digit error (long strings, then ordinary) "
              + ", ".join(f"{k} {100 * v:.1f}%" for k, v in per.items()), flush=True)
    best = min(scores.items(), key=lambda kv: (round(kv[1]["mean"], 4), -float(rt.max_seconds if kv[0] == "max"
                                                                              else kv[0])))[0]
    return {"strings": n, "seed": seed, "scores": scores, "chosen": None if best == "max" else float(best)}


def replace_check(new: Path, old: Path, val: Path, zeros_dir: Path, fsdd: str, new_val_wer: float,
                  tolerance: float, isolated: Path | None = None) -> dict:
    """Step 6: may `new` replace `old`? Validation WER within `tolerance`, lower WER on the validation
    strings with pauses of digital zeros, and (when the data has val-isolated/: the training speakers'
    validation takes said one digit at a time) WER there within `tolerance` too (greedy, through the runtime)."""
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.train.speech.data import read_manifest, rerender_digit_set, write_manifest

    fsdd_rows = [r for r in read_manifest(val) if r.get("sources")]  # FSDD strings (synthesised ones have none)
    fsdd_val = write_manifest(zeros_dir.parent / "val-fsdd.jsonl", fsdd_rows)
    zeros = rerender_digit_set(fsdd_val, zeros_dir, "zeros", root=fsdd)
    greedy = {"greedy": Greedy()}
    r = {"old": str(old), "tolerance": tolerance,
         "val_wer": {"new": new_val_wer, "old": score(old, val, greedy)["greedy"]["wer"]},
         "val_zeros_wer": {"new": score(new, zeros, greedy)["greedy"]["wer"],
                           "old": score(old, zeros, greedy)["greedy"]["wer"]}}
    val_ok = r["val_wer"]["new"] <= r["val_wer"]["old"] + tolerance
    zeros_ok = r["val_zeros_wer"]["new"] < r["val_zeros_wer"]["old"]
    iso_ok, iso = True, ""
    if isolated is not None and isolated.is_file():
        r["val_isolated_wer"] = {"new": score(new, isolated, greedy)["greedy"]["wer"],
                                 "old": score(old, isolated, greedy)["greedy"]["wer"]}
        iso_ok = r["val_isolated_wer"]["new"] <= r["val_isolated_wer"]["old"] + tolerance
        iso = (f", single digits {100 * r['val_isolated_wer']['new']:.2f}% vs old "
               f"{100 * r['val_isolated_wer']['old']:.2f}% ({'within' if iso_ok else 'beyond'} +{100 * tolerance:.2f})")
    r["qualifies"] = val_ok and zeros_ok and iso_ok
    r["why"] = (f"validation WER {100 * r['val_wer']['new']:.2f}% vs old {100 * r['val_wer']['old']:.2f}% "
                f"({'within' if val_ok else 'beyond'} +{100 * tolerance:.2f} points), with digital-zero pauses "
                f"{100 * r['val_zeros_wer']['new']:.2f}% vs old {100 * r['val_zeros_wer']['old']:.2f}% "
                f"({'better' if zeros_ok else 'not better'})" + iso)
    print(("replaces" if r["qualifies"] else "does not replace") + f" {old}: {r['why']}")
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="ship this existing speech run (no training)")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "fsdd-digits")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "default-transcriber")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "transcriber")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (lower when fine-tuning)")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="fine-tune: start from this speech run's best.pt instead of random weights")
    ap.add_argument("--int8-tolerance", type=float, default=0.005,
                    help="largest validation WER increase (absolute) accepted for an int8 variant")
    ap.add_argument("--replace-tolerance", type=float, default=0.005,
                    help="largest validation WER increase (absolute) over the model in --out accepted for replacing it")
    ap.add_argument("--force", action="store_true", help="replace --out even if the new model is not better (step 6)")
    ap.add_argument("--no-ship", action="store_true", help="measure only; leave --out alone")
    args = ap.parse_args(argv)

    import torch

    from edge_s2s.export.bundle_writer import quantize_bundle
    from edge_s2s.export.speech import export_speech_bundle
    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.train.speech.data import read_manifest
    from edge_s2s.train.speech.loop import SpeechTrainConfig, ensure_speech_sets, train_speech

    torch.set_num_threads(1)
    if args.run is None:
        run = args.work / "run"
        cfg = SpeechTrainConfig(data_dir=str(args.data), out_dir=str(run), epochs=args.epochs, seed=args.seed,
                                lr=args.lr, init_from=str(args.init_from or ""))
        resume = (run / "last.pt").is_file()
        print(f"training -> {run}" + (" (resuming)" if resume else ""))
        train_speech(cfg, resume=resume, progress=False)
    else:
        run = args.run
        if not (run / "config.json").is_file():
            print(f"error: {run} is not a speech run directory (no config.json): pass the directory "
                  "`edge-s2s train speech` wrote", file=sys.stderr)
            return 1
        from edge_s2s.train.speech.loop import load_speech_run_config

        cfg = load_speech_run_config(run)
    if cfg.corpus != "fsdd":
        print(f"error: {run} was trained on {cfg.corpus}, not FSDD digit strings: the default transcriber "
              "reads digits", file=sys.stderr)
        return 1
    splits = ensure_speech_sets(cfg)

    bundles = args.work / "bundles"
    variants = {"fp32": bundles / "fp32"}
    export_speech_bundle(run, variants["fp32"], golden=0)  # golden cases: synthesised ones, at shipping
    split = choose_split_seconds(variants["fp32"], cfg.fsdd, args.work, val=splits["val"])
    if split["chosen"] is not None:
        print(f"split_seconds: {split['chosen']:g}", flush=True)
        export_speech_bundle(run, variants["fp32"], golden=0, split_seconds=split["chosen"])
    for name, ops in VARIANTS.items():
        if ops is not None:
            variants[name] = quantize_bundle(variants["fp32"], bundles / ("int8-" + name.split()[1].strip("()")),
                                             ops or None)
    greedy, both = {"greedy": Greedy()}, {"greedy": Greedy(), "beam5": Beam(size=5)}
    results: dict = {"run": str(run), "test": str(splits["test"]), "val": str(splits["val"]), "split_seconds": split,
                     "variants": {}}
    for name, path in variants.items():
        r = {"bytes": bundle_bytes(path), "val": score(path, splits["val"], greedy)["greedy"],
             "test": score(path, splits["test"], both)}
        results["variants"][name] = r
        print(f"  {name:14} {r['bytes'] / 1e6:5.2f} MB  val WER {100 * r['val']['wer']:.2f}%  test WER greedy "
              f"{100 * r['test']['greedy']['wer']:.2f}% beam5 {100 * r['test']['beam5']['wer']:.2f}%")

    fp32_wer = results["variants"]["fp32"]["val"]["wer"]
    ok = [n for n, r in results["variants"].items() if r["val"]["wer"] <= fp32_wer + args.int8_tolerance]
    chosen = min(ok, key=lambda n: results["variants"][n]["bytes"])
    results["chosen"] = chosen
    print(f"chosen: {chosen} ({results['variants'][chosen]['bytes'] / 1e6:.2f} MB)")
    if (args.out / "manifest.json").is_file():
        results["replace"] = replace_check(variants[chosen], args.out, splits["val"], args.work / "val-zeros",
                                           cfg.fsdd, results["variants"][chosen]["val"]["wer"],
                                           args.replace_tolerance,
                                           Path(splits["val"]).parent.parent / "val-isolated" / "manifest.jsonl")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "variants.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.no_ship:
        return 0
    if "replace" in results and not results["replace"]["qualifies"] and not args.force:
        print(f"not shipped: {results['replace']['why']}; {args.out} left as it was")
        return 0

    rows = read_manifest(splits["test"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.ship-", dir=str(args.out.parent)))
    try:
        ship = staging / "bundle"
        shutil.copytree(variants[chosen], ship)
        add_golden(ship, run, GOLDEN_SAYINGS, int8=chosen != "fp32")
        from edge_s2s.export.bundle_writer import write_manifest
        from edge_s2s.runtime.manifest import Manifest

        manifest = Manifest.load(ship)
        test = results["variants"][chosen]["test"]
        write_manifest(ship, manifest, {**manifest.metrics, "test": test,
                                        "test_split": f"{splits['test']} ({len(rows)} strings, held-out speaker)"})
        old = staging / "old"
        if args.out.exists():
            os.replace(args.out, old)
        os.replace(ship, args.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"shipped -> {args.out} ({bundle_bytes(args.out) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
