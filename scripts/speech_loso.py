"""Leave-one-speaker-out evaluation of the digit transcriber's recipe (issue 17, item 4): for each human
speaker (the five FSDD speakers and the Asterisk prompt voice), train a model WITHOUT that speaker, then
test it on that speaker's digit strings of 3-30 digits with pauses of digital zeros and of room noise.

    python scripts/speech_loso.py                              # every fold, the default budget
    python scripts/speech_loso.py --speakers theo asterisk --epochs 6 --write-docs

Each fold (runs/speech-loso/<speaker>/):
- train: FSDD digit strings of the other FSDD speakers (takes 5-49; pauses a third each of digital zeros,
  the recordings' floor and -90..-45 dBFS noise: `build_fsdd`'s PAUSE_MIX), the Asterisk voice's strings
  unless it is the held-out one, and --n-borrowed of data/speech-default's synthesised strings (espeak-ng,
  Piper) and augmented copies, never a copy of the held-out speaker's recordings;
- val: the other FSDD speakers' takes 0-4 (chooses best.pt; nothing else is chosen);
- test: --n-test strings of the held-out speaker, 3-30 digits ("random" kind, lengths uniform), rendered
  with digital-zero pauses and with -50 dBFS white-noise pauses, 8 kHz.
Each fold trains the same recipe as scripts/train_default_transcriber.py (SpeechTrainConfig defaults),
for --epochs, one thread, and chooses split_seconds the same way on its own training speakers' long
validation strings. Every fold's model and the shipped model are scored through the runtime
(greedy); the shipped model heard every FSDD speaker but theo, so only its theo and Asterisk rows are
held out (the table marks the others). Digit error is jiwer WER on space-separated digits.

Writes runs/results/speech-loso.md and .json (docs/ with --write-docs).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from results_out import add_write_docs, results_dir  # noqa: E402
from speech_asterisk_check import SPEAKER as ASTERISK  # noqa: E402
from speech_asterisk_check import asterisk_index, digits_folder  # noqa: E402
from speech_table import error_rates  # noqa: E402

from edge_s2s.train.speech.data import (  # noqa: E402
    FSDD_ROOT,
    PAUSE_MIX,
    VAL_TAKES,
    FsddIndex,
    digit_strings,
    fsdd_index,
    read_manifest,
    write_digit_set,
    write_manifest,
)

CONDITIONS: dict[str, tuple[str, float | None]] = {"digital zeros": ("zeros", None), "-50 dBFS noise": ("noise", -50.0)}


def fold_index(fsdd: FsddIndex, asterisk: FsddIndex, held_out: str) -> tuple[FsddIndex, FsddIndex, FsddIndex]:
    """(train, val, test) recordings for the fold that holds out `held_out`."""
    others = [s for s in fsdd.speakers if s != held_out]
    train = fsdd.select(others, exclude_takes=VAL_TAKES)
    val = fsdd.select(others, takes=VAL_TAKES)
    if held_out == ASTERISK:
        return train, val, asterisk
    recs = {**train.recordings, **asterisk.recordings}  # Asterisk's one take per digit goes to training
    return FsddIndex(fsdd.root, recs), val, fsdd.select([held_out])


def borrowed_rows(data: Path, held_out: str, n: int, seed: int) -> list[dict]:
    """`n` (0: all) of data/speech-default's synthesised training strings and augmented copies, never a copy of
    `held_out`'s recordings (its own FSDD strings are left out too: each fold draws its human strings anew)."""
    rows = [r for r in read_manifest(data / "train" / "manifest.jsonl") if r.get("speaker") != held_out
            and (r.get("augment") is not None or str(r.get("speaker", "")).startswith(("espeak-ng-", "piper-")))]
    if 0 < n < len(rows):
        keep = np.random.default_rng(seed).choice(len(rows), n, replace=False)
        rows = [rows[i] for i in sorted(keep)]
    return rows


def build_fold(fold: Path, fsdd: FsddIndex, asterisk: FsddIndex, held_out: str, data: Path, n_train: int,
               n_borrowed: int, n_val: int, n_test: int, seed: int) -> dict[str, Path]:
    """The fold's train/val manifests and one test manifest per pause condition (skipped when present)."""
    tests = {c: fold / "test" / c.split()[0].strip("-") / "manifest.jsonl" for c in CONDITIONS}
    splits = {"train": fold / "data" / "train" / "manifest.jsonl", "val": fold / "data" / "val" / "manifest.jsonl"}
    if all(p.is_file() for p in [*splits.values(), *tests.values()]):
        return {**splits, **{f"test:{c}": p for c, p in tests.items()}}
    train_idx, val_idx, test_idx = fold_index(fsdd, asterisk, held_out)
    rng = np.random.default_rng([seed, sum(map(ord, held_out))])
    human = write_digit_set(fold / "human-train", digit_strings(train_idx, train_idx.speakers, n_train, rng,
                                                                prefix="train-", pause_mix=PAUSE_MIX))
    write_digit_set(fold / "data" / "val", digit_strings(val_idx, val_idx.speakers, n_val, rng, prefix="val-"))
    rows = [{**r, "audio": str(Path(r["audio"]).resolve())}  # the merged manifest lives elsewhere
            for r in [*read_manifest(human), *borrowed_rows(data, held_out, n_borrowed, seed)]]
    write_manifest(splits["train"], rows)
    utts = digit_strings(test_idx, test_idx.speakers, n_test, rng, min_digits=3, max_digits=30,
                         kinds={"random": 1.0}, prefix="test-", pause_mix={"zeros": 1.0})
    for c, (kind, db) in CONDITIONS.items():
        write_digit_set(tests[c].parent, [replace(u, pause=kind, pause_db=db) for u in utts])
    return {**splits, **{f"test:{c}": p for c, p in tests.items()}}


def train_fold(fold: Path, epochs: int, seed: int, fsdd: Path, speakers: list[str]) -> Path:
    """Train (or resume, or reuse) the fold's model; returns its fp32 bundle, with split_seconds chosen
    like the shipped model's (`choose_split_seconds`) on the fold's own FSDD training `speakers`."""
    from train_default_transcriber import choose_split_seconds

    from edge_s2s.export.speech import export_speech_bundle
    from edge_s2s.train.speech.loop import SpeechTrainConfig, train_speech

    run, bundle = fold / "run", fold / "bundle"
    done = len((run / "metrics.jsonl").read_text().splitlines()) if (run / "metrics.jsonl").is_file() else 0
    if (bundle / "manifest.json").is_file() and done >= epochs:
        return bundle
    if done < epochs:  # a larger --epochs extends a fold's run from its last checkpoint
        cfg = SpeechTrainConfig(data_dir=str(fold / "data"), out_dir=str(run), epochs=epochs, seed=seed)
        train_speech(cfg, resume=(run / "last.pt").is_file(), progress=False)
    export_speech_bundle(run, bundle, golden=0)
    split = choose_split_seconds(bundle, str(fsdd), fold, speakers=speakers)
    (fold / "split_seconds.json").write_text(json.dumps(split, indent=1) + "\n", encoding="utf-8")
    if split["chosen"] is not None:
        export_speech_bundle(run, bundle, golden=0, split_seconds=split["chosen"])
    return bundle


def score(bundle: Path, manifest: Path) -> dict:
    from edge_s2s.runtime.search import Greedy
    from edge_s2s.runtime.tasks.transcriber import Transcriber

    rows = read_manifest(manifest)
    ts = Transcriber.load(bundle, threads=1).transcribe([r["audio"] for r in rows], Greedy(), batch_size=16,
                                                        errors="keep")
    hyps = [t.text if t.error is None else "" for t in ts]
    return {**error_rates(hyps, [r["transcript"] for r in rows]), "n": len(rows),
            "cut": sum(t.warning is not None for t in ts)}


def markdown(res: dict) -> str:
    lines = ["# Leave one speaker out: the digit transcriber's recipe on voices it never heard", "",
             ("Each fold trains the default recipe without one human speaker and tests on that speaker's "
              f"{res['n_test']} digit strings of 3-30 digits (8 kHz), rendered twice: pauses of digital zeros "
              "and of -50 dBFS noise. Training per fold: "
              f"{res['n_train']} FSDD/Asterisk strings of the other speakers plus {res['n_borrowed']} of "
              f"data/speech-default's synthesised strings and augmented copies, at least {res['epochs']} epochs (a fold "
              f"extended with a larger --epochs keeps its longer run: see the training table), seed {res['seed']}. The shipped model is "
              "scored on the same strings; it was trained on the FSDD speakers other than theo, so its rows "
              "marked * are not held out."), "",
             f"Regenerate: `{res['command']}`", "",
             "Each cell: digit error (jiwer WER) / whole string right; greedy.", "",
             "| held-out speaker | " + " | ".join(f"fold model, {c}" for c in CONDITIONS) + " | "
             + " | ".join(f"shipped, {c}" for c in CONDITIONS) + " |", "|---|" + "---|" * (2 * len(CONDITIONS))]
    means: dict[str, list[float]] = {}
    for spk, f in res["folds"].items():
        star = "" if spk in ("theo", ASTERISK) else " *"
        cells = []
        for who in ("fold", "shipped"):
            for c in CONDITIONS:
                x = f[who][c]
                means.setdefault(f"{who}:{c}", []).append(x["wer"])
                cells.append(f"{100 * x['wer']:.1f}% / {100 * x['string_accuracy']:.0f}%"
                             + (star if who == "shipped" else ""))
        lines.append(f"| {spk} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{100 * np.mean(means[f'{w}:{c}']):.1f}%**"
                                             for w in ("fold", "shipped") for c in CONDITIONS) + " |")
    lines += ["", "Each fold's training (its best validation CER on the other speakers' takes 0-4, and the split_seconds "
              "it chose):", "", "| held-out speaker | epochs | steps | best validation CER | split_seconds |",
              "|---|---|---|---|---|"]
    lines += [f"| {spk} | {f['training']['epochs']} | {f['training']['steps']} | "
              f"{100 * f['training']['best_val_cer']:.1f}% | {f['split_seconds'] or 'max'} |"
              for spk, f in res["folds"].items()]
    lines += ["", "Transcripts cut at a step limit: " + ", ".join(
        f"{spk} {sum(f[w][c]['cut'] for w in ('fold', 'shipped') for c in CONDITIONS)}"
        for spk, f in res["folds"].items()) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speakers", nargs="*", default=None, help="held-out speakers (default: every FSDD speaker "
                                                                 "and asterisk)")
    ap.add_argument("--fsdd", type=Path, default=Path(FSDD_ROOT))
    ap.add_argument("--data", type=Path, default=Path("data/speech-default"),
                    help="synthesised training strings (scripts/build_speech_synth.py)")
    ap.add_argument("--work", type=Path, default=Path("runs/speech-loso"))
    ap.add_argument("--shipped", type=Path, default=None, help="the model to compare (default: the packaged one)")
    ap.add_argument("--n-train", type=int, default=2000, help="human (FSDD / Asterisk) training strings per fold")
    ap.add_argument("--n-borrowed", type=int, default=2000,
                    help="synthesised strings and augmented copies taken from --data per fold (0: all)")
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/speech-loso.md")
    add_write_docs(ap)
    a = ap.parse_args(argv)
    import torch

    from edge_s2s.runtime.tasks.transcriber import default_transcriber_path

    torch.set_num_threads(1)
    if not (a.data / "train" / "manifest.jsonl").is_file():
        sys.exit(f"error: {a.data} has no training strings: run python scripts/build_speech_synth.py first")
    fsdd = fsdd_index(a.fsdd)
    asterisk = asterisk_index(digits_folder())
    speakers = a.speakers or [*fsdd.speakers, ASTERISK]
    unknown = [s for s in speakers if s not in fsdd.speakers and s != ASTERISK]
    if unknown:
        sys.exit(f"error: unknown speaker(s) {', '.join(unknown)}: choose from {', '.join(fsdd.speakers)}, asterisk")
    shipped = a.shipped or default_transcriber_path()
    folds: dict[str, dict] = {}
    for spk in speakers:
        t0 = time.perf_counter()
        fold = a.work / spk
        sets = build_fold(fold, fsdd, asterisk, spk, a.data, a.n_train, a.n_borrowed, a.n_val, a.n_test, a.seed)
        bundle = train_fold(fold, a.epochs, a.seed, a.fsdd, [s for s in fsdd.speakers if s != spk])
        folds[spk] = {who: {c: score(b, sets[f"test:{c}"]) for c in CONDITIONS}
                      for who, b in (("fold", bundle), ("shipped", shipped))}
        folds[spk]["seconds"] = round(time.perf_counter() - t0)
        history = [json.loads(x) for x in (fold / "run" / "metrics.jsonl").read_text().splitlines() if x.strip()]
        folds[spk]["training"] = {"epochs": len(history), "steps": history[-1]["step"],
                                  "best_val_cer": min(h["val_cer"] for h in history)}
        folds[spk]["split_seconds"] = json.loads((fold / "split_seconds.json").read_text())["chosen"]
        print(spk, json.dumps(folds[spk]), file=sys.stderr)
    command = "python scripts/speech_loso.py" + (f" --speakers {' '.join(map(shlex.quote, a.speakers))}"
                                                 if a.speakers else "") + \
        "".join(f" --{k.replace('_', '-')} {getattr(a, k)}" for k in ("n_train", "n_borrowed", "n_test", "epochs", "seed")
                if getattr(a, k) != ap.get_default(k))
    res = {"command": command, "n_train": a.n_train, "n_borrowed": a.n_borrowed, "n_test": a.n_test, "epochs": a.epochs, "seed": a.seed,
           "shipped": str(shipped), "folds": folds}
    out = a.out or results_dir(a) / "speech-loso.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(res), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
