#!/usr/bin/env python3
"""German->English, side by side at one budget: attention vs no attention vs the NTM decoder, and
the attention match functions, over several seeds, scored on the untouched trans-de-en test split.

Prepares the data if missing (scripts/prepare_de_en.py: Debian trans-de-en, seeded split, 1,000 test
pairs never trained on), trains each model with the same recipe and the same number of epochs
(subwords, input feeding, label smoothing; the validation split picks best.pt), exports it, and
scores the test pairs through the runtime with sacrebleu, greedy and beam 5. Every finished run's
scores are kept in WORK/results.jsonl, so an interrupted study goes on where it stopped.

    python scripts/de_en_bleu.py --seeds 1,2,3 --epochs 4 --threads 1      # ~75 min on one core
    python scripts/de_en_bleu.py --models attention --attentions dot,general,additive --seeds 1

Writes de-en-study.md/.json (runs/results/, docs/ with --write-docs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEARCHES = ("greedy", "beam 5")


def run_name(model: str, attention: str, seed: int, init: str) -> str:
    if model != "attention":
        return f"{model}-s{seed}"
    return f"{model}-{attention}-s{seed}" + ("-z0" if init == "learned" else "")


def label(model: str, attention: str, init: str = "encoder") -> str:
    if model == "attention":
        return f"attention ({attention}" + (", learned z0 instead of the encoder's state)" if init == "learned" else ")")
    return {"none": "no attention (last encoder state)", "ntm": "NTM decoder"}[model]


def train_and_score(args, model: str, attention: str, seed: int, sources: list[str], refs: list[str]) -> dict:
    from edge_s2s.export import export_bundle
    from edge_s2s.runtime import Beam, Greedy, Seq2Seq
    from edge_s2s.runtime.tools.run_logs import read_metrics
    from edge_s2s.train import ModelConfig, TrainConfig, train_translator
    from edge_s2s.train.translate.decode import bleu

    name = run_name(model, attention, seed, args.init)
    run_dir, bundle = args.work / f"run-{name}", args.work / f"bundle-{name}"
    cfg = TrainConfig(
        data=str(args.data / "train.tsv"), val_file=str(args.data / "valid.tsv"), out_dir=str(run_dir),
        model=ModelConfig(emb_dim=args.emb, enc_hidden=args.enc, dec_hidden=2 * args.enc,
                          attention=attention if model == "attention" else "none", att_dim=args.enc,
                          dropout=args.dropout, decoder="ntm" if model == "ntm" else "lstm", ntm_width=args.enc,
                          feed_attention=model == "attention", init_state=args.init),
        epochs=args.epochs, batch_size=64, lr=args.lr, seed=seed, tokenizer=args.tokenizer,
        subword_vocab_size=args.vocab, lowercase=False, label_smoothing=0.1, val_bleu_max=300, select_by="bleu",
        max_source_length=60, max_target_length=60, vocab_min_count=2,
    )
    t0 = time.time()
    train_translator(cfg, resume=(run_dir / "last.pt").exists(), progress=sys.stderr.isatty())
    train_s = time.time() - t0
    export_bundle(run_dir, bundle)
    rt = Seq2Seq.load(bundle, threads=args.threads)
    row = {"name": name, "model": model, "attention": attention if model == "attention" else "none", "seed": seed,
           "init": args.init if model == "attention" else "encoder",
           "epochs": args.epochs, "train_seconds": round(train_s, 1),
           "best_val_bleu": max(m.get("val_bleu") or 0 for m in read_metrics(run_dir))}
    for sname, search in zip(SEARCHES, (Greedy(), Beam(size=5))):
        t1 = time.time()
        hyps = [r.text for r in rt.generate(sources, search=search, batch_size=64)]
        row[sname] = round(bleu(hyps, refs, rt.text), 2)
        row[f"{sname} seconds"] = round(time.time() - t1, 1)
        row[f"{sname} samples"] = [{"source": s, "reference": r, "output": h}
                                   for s, r, h in list(zip(sources, refs, hyps))[:5]]
    row["unk_outputs"] = sum("⁇" in h or "<unk>" in h for h in hyps)
    return row


def table(rows: list[dict]) -> str:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(label(r["model"], r["attention"], r.get("init", "encoder")), []).append(r)

    def cell(vals: list[float]) -> str:
        if len(vals) == 1:
            return f"{vals[0]:.2f}"
        return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"

    out = [("| model | seeds | greedy BLEU | beam-5 BLEU | best validation BLEU (greedy, 300 sentences) | "
            "train minutes (mean) |"), "|---|---|---|---|---|---|"]
    for name, rs in groups.items():
        out.append(f"| {name} | {', '.join(str(r['seed']) for r in rs)} | {cell([r['greedy'] for r in rs])} | "
                   f"{cell([r['beam 5'] for r in rs])} | {cell([r['best_val_bleu'] for r in rs])} | "
                   f"{statistics.mean(r['train_seconds'] for r in rs) / 60:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/de-en")
    ap.add_argument("--work", type=Path, default=ROOT / "runs/de-en-study")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--models", default="attention,none,ntm", help="attention, none (no attention), ntm")
    ap.add_argument("--attentions", default="general", help="match functions for the attention model")
    ap.add_argument("--init", default="encoder", choices=("encoder", "learned"),
                    help="the attention decoder's first state (the other two models start from the encoder)")
    ap.add_argument("--tokenizer", default="sentencepiece")
    ap.add_argument("--vocab", type=int, default=8000, help="subword vocabulary size")
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--enc", type=int, default=128, help="encoder width per direction (decoder: twice this)")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    ap.add_argument("--test", type=int, default=0, help="score only the first N test pairs (0 = all 1,000)")
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/ (docs/ with --write-docs)")
    add_write_docs(ap)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if not (args.data / "test.tsv").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts/prepare_de_en.py"), "--out", str(args.data)], check=True)
    pairs = [ln.split("\t") for ln in (args.data / "test.tsv").read_text(encoding="utf-8").splitlines()]
    if args.test:
        pairs = pairs[: args.test]
    sources, refs = [p[0] for p in pairs], [p[1] for p in pairs]
    args.work.mkdir(parents=True, exist_ok=True)
    done_file = args.work / "results.jsonl"
    done = {}
    if done_file.exists():
        for ln in done_file.read_text(encoding="utf-8").splitlines():
            r = json.loads(ln)
            done[r["name"]] = r
    rows = [r for r in done.values() if r.get("init") == "learned"]  # the ablation, when it was run
    for seed in (int(s) for s in args.seeds.split(",")):
        for model in args.models.split(","):
            for attention in (args.attentions.split(",") if model == "attention" else ["none"]):
                name = run_name(model, attention, seed, args.init)
                if name not in done:
                    row = train_and_score(args, model, attention, seed, sources, refs)
                    with open(done_file, "a", encoding="utf-8") as f:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    done[name] = row
                r = done[name]
                print(f"{name:24s} greedy {r['greedy']:5.2f}  beam5 {r['beam 5']:5.2f}  "
                      f"({r['train_seconds'] / 60:.1f} min)", flush=True)
                rows.append(r)
    text = (f"German->English on the untouched 1,000-pair trans-de-en test split ({len(sources)} scored), "
            f"each model trained {args.epochs} epochs on the trans-de-en training split with the same recipe "
            f"({args.tokenizer} vocabulary {args.vocab}, embeddings {args.emb}, encoder 2 x {args.enc}, decoder "
            f"{2 * args.enc}, dropout {args.dropout}, label smoothing 0.1, Adam {args.lr}, batch 64, best.pt by "
            "validation BLEU); cased sacreBLEU (13a) through the runtime; mean ± standard deviation over seeds.\n\n"
            + table(rows) + "\n")
    print(text)
    out = args.out or results_dir(args) / "de-en-study.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# German->English: attention, no attention, NTM decoder (scripts/de_en_bleu.py)\n\n" + text,
                   encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
