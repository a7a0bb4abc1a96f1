#!/usr/bin/env python3
"""Real-data check: German->English on Debian's trans-de-en sentence pairs.

Prepares the data (scripts/prepare_de_en.py; apt-get installs trans-de-en if missing),
trains the attention translator, the no-attention baseline (the notes' first
encoder-decoder: last encoder state only) and the NTM decoder (memory = the encoder's
outputs, read and written by content addressing) with the same budget, exports both, and scores
the 1,000 held-out test pairs with BLEU (sacrebleu) through the runtime, greedy and beam 5.
Prints a Markdown table and writes it to docs/de-en-results.md.

    python scripts/de_en_bleu.py --epochs 6          # ~30-40 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/de-en")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/de-en-check")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--attention", default="general")
    ap.add_argument("--models", default="attention,none,ntm",
                    help="Which models: attention (LSTM + attention), none (no attention), ntm (NTM decoder)")
    ap.add_argument("--ntm-width", type=int, default=128, help="Memory row width of the NTM decoder")
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/ (docs/ with --write-docs)")
    add_write_docs(ap)
    args = ap.parse_args()

    if not (args.data / "test.tsv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts/prepare_de_en.py"), "--out", str(args.data)], check=True)

    from edge_s2s.export import export_bundle
    from edge_s2s.runtime import Beam, Greedy, Seq2Seq
    from edge_s2s.train import ModelConfig, TrainConfig, train_translator
    from edge_s2s.train.translate.decode import bleu

    pairs = [ln.split("\t") for ln in (args.data / "test.tsv").read_text(encoding="utf-8").splitlines()]
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    rows = []
    for name in args.models.split(","):
        attention = args.attention if name == "attention" else "none"
        decoder = "ntm" if name == "ntm" else "lstm"
        run_dir, bundle = args.work / f"run-{name}", args.work / f"bundle-{name}"
        cfg = TrainConfig(
            data=str(args.data / "train.tsv"), val_file=str(args.data / "valid.tsv"), out_dir=str(run_dir),
            model=ModelConfig(emb_dim=128, enc_hidden=128, dec_hidden=256, attention=attention, att_dim=128, dropout=0.2,
                              decoder=decoder, ntm_width=args.ntm_width),
            epochs=args.epochs, batch_size=64, lr=2e-3, vocab_min_count=2, val_bleu_max=200, seed=1,
        )
        resume = (run_dir / "last.pt").exists()
        train_translator(cfg, resume=resume, progress=sys.stderr.isatty())
        export_bundle(run_dir, bundle)
        model = Seq2Seq.load(bundle, threads=2)
        for label, search in (("greedy", Greedy()), ("beam 5", Beam(size=5))):
            t0 = time.time()
            hyps = [r.text for r in model.generate(sources, search=search, batch_size=64)]
            dec_s = time.time() - t0
            score = bleu(hyps, refs, model.text)
            label_model = {"none": "none", "ntm": f"NTM decoder (memory width {args.ntm_width})"}.get(
                name, f"attention ({attention})")
            rows.append((label_model, label, score, dec_s, best_val_loss(run_dir)))
            print(f"{name:10s} {label:7s} BLEU {score:5.2f}  decode {dec_s:5.1f}s", flush=True)
        (args.work / f"samples-{name}.json").write_text(json.dumps(
            [{"source": s, "reference": r, "output": h} for s, r, h in list(zip(sources, refs, hyps))[:20]],
            ensure_ascii=False, indent=1), encoding="utf-8")

    table = ["| model | search | test BLEU | best validation loss (nats/token) | decode 1,000 sentences (s) |",
             "|---|---|---|---|---|"]
    table += [f"| {m} | {s} | {b:.2f} | {v:.3f} | {d:.1f} |" for m, s, b, d, v in rows]
    text = (f"German->English, Debian trans-de-en sentence pairs, 1,000 held-out test pairs, "
            f"{args.epochs} epochs each, word-level shared vocabulary (min count 2), CPU.\n\n" + "\n".join(table) + "\n")
    print(text)
    args.out = args.out or results_dir(args) / "de-en-results.md"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# de-en real-data check (scripts/de_en_bleu.py)\n\n" + text, encoding="utf-8")


def best_val_loss(run_dir: Path) -> float:
    """The lowest validation loss of a run (metrics.jsonl), the checkpoint export takes."""
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if ln.strip()]
    return min(r["val_loss"] for r in rows if "val_loss" in r)


if __name__ == "__main__":
    main()
