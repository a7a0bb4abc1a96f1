"""Build data/fsdd-synth: FSDD digit strings plus espeak-ng connected-speech strings for training,
the held-out human speaker for testing, and an unseen synthesiser (flite) as a second test set.

    python scripts/build_speech_synth.py            # needs data/fsdd-digits-3000 and data/fsdd-digits
    edge-s2s train speech --data-dir data/fsdd-synth --out runs/speech-default ...

Layout: train/ and val/ hold merged manifests (FSDD rows + synthesised rows, absolute audio paths);
test/ is the FSDD held-out speaker's set; test-flite/ is flite's four voices (never trained on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge_s2s.train.speech.data import build_fsdd
from edge_s2s.train.speech.synth import ensure_installed, espeak_voices, flite_voices, merge_sets, synth_digit_set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fsdd-sets", type=Path, default=Path("data/fsdd-digits-3000"),
                    help="FSDD digit-string sets to merge (built with build_fsdd when missing)")
    ap.add_argument("--test-set", type=Path, default=Path("data/fsdd-digits/test"),
                    help="the held-out speaker's test set (the one docs/speech-results.md reports)")
    ap.add_argument("--out", type=Path, default=Path("data/fsdd-synth"))
    ap.add_argument("--n-synth-train", type=int, default=2000)
    ap.add_argument("--n-synth-val", type=int, default=100)
    ap.add_argument("--n-flite-test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=29)
    args = ap.parse_args()
    if not (args.fsdd_sets / "train" / "manifest.jsonl").is_file():
        build_fsdd("../shared/data/fsdd", args.fsdd_sets, 3000, 200, 300, seed=13)
    ensure_installed()  # apt-get install -y espeak-ng flite (Debian packages)
    rng = np.random.default_rng(args.seed)
    synth = args.out / "synth"
    tr = synth_digit_set(synth / "train", args.n_synth_train, espeak_voices(), rng, prefix="train-")
    va = synth_digit_set(synth / "val", args.n_synth_val, espeak_voices(), rng, prefix="val-")
    fl = synth_digit_set(args.out / "test-flite", args.n_flite_test, flite_voices(), rng, prefix="test-")
    merge_sets(args.out / "train" / "manifest.jsonl", [args.fsdd_sets / "train" / "manifest.jsonl", tr])
    merge_sets(args.out / "val" / "manifest.jsonl", [args.fsdd_sets / "val" / "manifest.jsonl", va])
    merge_sets(args.out / "test" / "manifest.jsonl", [args.test_set / "manifest.jsonl"])
    print(f"wrote {args.out}: train/val merged with espeak-ng strings; test (human, held out); test-flite ({fl})")


if __name__ == "__main__":
    main()
