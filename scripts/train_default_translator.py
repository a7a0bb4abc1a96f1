#!/usr/bin/env python3
"""Train the German->English translator, shrink it to int8 if that costs no validation BLEU, and ship it
as the default model (what `edge-s2s translate "Wie spät ist es?"` and `Translator.load()` use).

    python scripts/build_de_en_corpus.py --out data/de-en-big      # once: the parallel text (offline sources)
    python scripts/train_default_translator.py                       # train (resumable), export, choose, ship
    python scripts/train_default_translator.py --no-ship             # measure only

1. Data: --data holds train.tsv (every offline source), valid.tsv and test.tsv (the untouched trans-de-en
   splits). Training reads train.tsv and picks best.pt on valid.tsv (greedy BLEU of 300 sentences).
2. The recipe (train/translate): a shared SentencePiece unigram vocabulary learnt from train.tsv, a
   bidirectional LSTM encoder, an LSTM decoder with general attention, Luong input feeding and its first
   state from the encoder's final states, dropout,
   label smoothing 0.1, Adam with the rate halved after an epoch without validation gain, early stopping.
   The last --keep-epochs epoch ends are kept; `--checkpoint choose` also tries their parameter average
   (Vaswani et al. 2017, sec. 6.1) and exports whichever of best / last / average has the highest
   validation BLEU.
3. Export fp32 (parity with PyTorch proved) and int8 (dynamic weights; golden cases from the int8 graphs).
   Both are scored through the runtime on valid.tsv (greedy: this chooses) and on test.tsv (greedy and
   beam 5: this is reported, never used to choose). int8 ships when its validation BLEU is within
   --int8-tolerance of fp32's and the bundle is at most 25 MB.
4. The chosen bundle replaces --out (default models/translator/, package data); its test BLEU goes into
   the manifest's metrics and everything into --work/variants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 25_000_000


def bundle_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def read_pairs(path: Path, limit: int = 0) -> tuple[list[str], list[str]]:
    rows = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    rows = rows[:limit] if limit else rows
    return [r[0] for r in rows], [r[1] for r in rows]


def score(bundle: Path, pairs: tuple[list[str], list[str]], searches: dict, threads: int) -> dict:
    """Cased sacreBLEU of a bundle through the runtime, per search, with decode seconds."""
    from edge_s2s.runtime import Seq2Seq
    from edge_s2s.train.translate.decode import bleu

    rt = Seq2Seq.load(bundle, threads=threads)
    sources, refs = pairs
    out = {}
    for name, search in searches.items():
        t0 = time.time()
        hyps = [r.text for r in rt.generate(sources, search=search, batch_size=64)]
        out[name] = {"bleu": round(bleu(hyps, refs, rt.text), 2), "seconds": round(time.time() - t0, 1),
                     "unk_outputs": sum("⁇" in h for h in hyps),
                     "samples": [{"source": s, "reference": r, "output": h} for s, r, h in
                                 list(zip(sources, refs, hyps))[:8]]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "de-en-big")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "default-translator")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "translator")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--max-steps", type=int, default=0, help="stop training at this step (0 = --epochs); resumable")
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--emb", type=int, default=256)
    ap.add_argument("--enc", type=int, default=256, help="encoder width per direction")
    ap.add_argument("--dec", type=int, default=512)
    ap.add_argument("--attention", default="general", choices=("general", "dot", "additive"),
                    help="the match function (a resumed run keeps its own; docs/de-en-results.md section 2 compares them)")
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=60, help="longest training sentence, in subword tokens")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--int8-tolerance", type=float, default=0.5, help="largest validation BLEU loss accepted for int8")
    ap.add_argument("--checkpoint", default="best", choices=("best", "last", "choose"),
                    help="what to export: best.pt, last.pt, or the one with the highest validation BLEU among "
                         "best.pt, last.pt and the average of the kept epoch ends (--keep-epochs)")
    ap.add_argument("--keep-epochs", type=int, default=4,
                    help="keep the last N epoch-end checkpoints (epoch-NNN.pt) for averaging (0 = none)")
    ap.add_argument("--no-train", action="store_true", help="export, score and ship the run as it stands")
    ap.add_argument("--no-ship", action="store_true", help="measure only; leave --out alone")
    args = ap.parse_args(argv)

    import torch

    from edge_s2s.export.translate import export_bundle
    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.train import ModelConfig, TrainConfig, train_translator
    from edge_s2s.train.core.checkpoint import EPOCH_PATTERN, average_checkpoints

    torch.set_num_threads(args.threads)
    for name in ("train.tsv", "valid.tsv", "test.tsv"):
        if not (args.data / name).is_file():
            print(f"error: {args.data / name} is missing: build the data first with "
                  f"python scripts/build_de_en_corpus.py --out {args.data}", file=sys.stderr)
            return 1
    run = args.work / "run"
    cfg = TrainConfig(
        data=str(args.data / "train.tsv"), val_file=str(args.data / "valid.tsv"), out_dir=str(run),
        model=ModelConfig(emb_dim=args.emb, enc_hidden=args.enc, dec_hidden=args.dec, attention=args.attention,
                          att_dim=args.dec, dropout=args.dropout, feed_attention=True, init_state="encoder"),
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        tokenizer="sentencepiece", subword_vocab_size=args.vocab, lowercase=False, label_smoothing=0.1,
        lr_decay=0.5, patience=3, select_by="bleu", val_bleu_max=300, max_source_length=args.max_length,
        max_target_length=args.max_length, checkpoint_every=500, keep_epochs=args.keep_epochs,
    )
    resume = (run / "last.pt").is_file()
    print(f"training -> {run}" + (" (resuming)" if resume else ""), flush=True)
    t0 = time.time()
    if resume:
        saved = TrainConfig.from_dict(json.loads((run / "config.json").read_text(encoding="utf-8"))["train"])
        flags = {"--emb": "emb_dim", "--enc": "enc_hidden", "--dec": "dec_hidden", "--attention": "attention",
                 "--dropout": "dropout"}
        clash = [f"{flag} {getattr(cfg.model, f)} (the run has {getattr(saved.model, f)})" for flag, f in flags.items()
                 if getattr(cfg.model, f) != getattr(saved.model, f)]
        if clash:
            print(f"error: {run} was trained with other model flags: {'; '.join(clash)}: resume it with its own "
                  "flags, or pass --work DIR for a new run", file=sys.stderr)
            return 1
        saved.epochs, saved.max_steps = args.epochs, args.max_steps  # the schedule may be lengthened
        saved.keep_epochs = max(saved.keep_epochs, args.keep_epochs)  # and epoch ends kept from now on
        cfg = saved
    if not args.no_train:
        train_translator(cfg, resume=resume, progress=sys.stderr.isatty())
    train_s = time.time() - t0

    bundles = args.work / "bundles"
    val, test = read_pairs(args.data / "valid.tsv"), read_pairs(args.data / "test.tsv")
    greedy, both = {"greedy": Greedy()}, {"greedy": Greedy(), "beam5": Beam(size=5)}
    results: dict = {"run": str(run), "train_seconds_this_session": round(train_s), "variants": {}}
    checkpoint = args.checkpoint
    if checkpoint == "choose":  # best.pt (an epoch end), the later last.pt, or the average of the kept epochs
        candidates = {"best": "best", "last": "last"}
        kept = sorted(run.glob(EPOCH_PATTERN))
        if len(kept) >= 2:
            candidates["average"] = str(average_checkpoints(kept, run / "average.pt"))
            print(f"average.pt: the mean of {', '.join(p.name for p in kept)}", flush=True)
        picks = {}
        for ck, path in candidates.items():
            b = export_bundle(run, bundles / f"pick-{ck}", checkpoint=path, parity=False, golden=0).bundle
            picks[ck] = score(b, val, greedy, args.threads)["greedy"]["bleu"]
        checkpoint = candidates[max(picks, key=picks.get)]
        results["checkpoint_choice"] = {"validation_bleu": picks, "chosen": max(picks, key=picks.get),
                                        "averaged": [p.name for p in kept] if "average" in candidates else []}
        print(f"checkpoint: {checkpoint} (validation BLEU {picks})", flush=True)
    # limits for users: sources up to 4x the training filter, outputs up to 3x (a cut output is a warning)
    lim = dict(max_source_length=4 * args.max_length + 1, max_length=3 * args.max_length + 1)
    variants = {"fp32": export_bundle(run, bundles / "fp32", checkpoint=checkpoint, **lim).bundle,
                "int8": export_bundle(run, bundles / "int8", checkpoint=checkpoint, int8=True, **lim).bundle}
    for name, path in variants.items():
        r = {"bytes": bundle_bytes(path), "val": score(path, val, greedy, args.threads)["greedy"],
             "test": score(path, test, both, args.threads)}
        results["variants"][name] = r
        print(f"  {name:5} {r['bytes'] / 1e6:5.2f} MB  valid BLEU {r['val']['bleu']:5.2f}  test BLEU greedy "
              f"{r['test']['greedy']['bleu']:5.2f} beam5 {r['test']['beam5']['bleu']:5.2f}", flush=True)
    fp32 = results["variants"]["fp32"]
    ok = [n for n, r in results["variants"].items()
          if r["val"]["bleu"] >= fp32["val"]["bleu"] - args.int8_tolerance and r["bytes"] <= MAX_BYTES]
    if not ok:
        print(f"error: no variant is at most {MAX_BYTES / 1e6:.0f} MB: use a smaller model", file=sys.stderr)
        return 1
    chosen = min(ok, key=lambda n: results["variants"][n]["bytes"])
    results["chosen"] = chosen
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "variants.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    print(f"chosen: {chosen} ({results['variants'][chosen]['bytes'] / 1e6:.2f} MB)")
    if args.no_ship:
        return 0

    from edge_s2s.export.bundle_writer import staged_bundle, write_manifest
    from edge_s2s.runtime.manifest import Manifest

    # the chosen bundle with its test score replaces --out in one rename (the old one or the new one is
    # there at every instant: export's staged_bundle)
    with staged_bundle(args.out) as ship:
        for f in variants[chosen].iterdir():
            if f.is_file():
                shutil.copyfile(f, ship / f.name)
        manifest = Manifest.load(ship)
        test_scores = {k: {"bleu": v["bleu"]} for k, v in results["variants"][chosen]["test"].items()}
        write_manifest(ship, manifest, {**manifest.metrics, "test": test_scores,
                                        "test_split": "data/de-en-big/test.tsv (the 1,000 trans-de-en test pairs, "
                                                      "never trained on or used to choose)"})
    print(f"shipped -> {args.out} ({bundle_bytes(args.out) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
