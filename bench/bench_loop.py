#!/usr/bin/env python3
"""Decoding speed, side by side in one run: compiled loop vs numpy loop vs PyTorch eager vs the floor.

All four decode the same inputs with the same weights and the same search:

  compiled   runtime/_loop.pyx over the bundle's ONNX graphs (IO binding, no state copies)
  numpy      runtime/reference_loop.py over the same graphs (session.run with feed dicts)
  torch      the same reference loop driven by the PyTorch model (eager, same weights)
  floor      the sum of the raw ORT run times (encoder + every step) inside the compiled
             decode: what a loop with zero overhead would take

Each setting is timed `--repeats` times, interleaving the loops, and the median is kept.
Ratios are to the floor (1.00 = no overhead at all). Interleaved, each compiled decode follows a
PyTorch one that has cooled the caches; "in a row" times the compiled loop `--repeats` more times
back to back (as an app decoding one request after another), against its own floor.

    python bench/bench_loop.py                        # builds a model at the design's size
    python bench/bench_loop.py --run runs/de-en --bundle bundles/de-en
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def synthetic_run(work: Path, vocab: int, src_len: int, hidden: int) -> tuple[Path, Path]:
    """A real model at the requested size, trained briefly on generated data, and its bundle."""
    from edge_s2s.export import export_bundle
    from edge_s2s.train import ModelConfig, TrainConfig, train_translator

    rng = random.Random(0)
    words = [f"w{i}" for i in range(vocab - 4)]
    lines = []
    for i in range(max(400, vocab // 8)):
        n = rng.randint(src_len - 5, src_len + 5)
        src = [words[(i * 8 + j) % len(words)] if j < 8 else rng.choice(words) for j in range(n)]
        lines.append(" ".join(src) + "\t" + " ".join(reversed(src)))
    data = work / "bench.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = TrainConfig(data=str(data), out_dir=str(work / "run"), epochs=1, batch_size=32, max_steps=5, val_bleu_max=0,
                      max_source_length=src_len + 10, max_target_length=src_len + 10, vocab_max_size=vocab,
                      model=ModelConfig(emb_dim=128, enc_hidden=hidden // 2, dec_hidden=hidden, attention="general",
                                        dropout=0.0))
    run = train_translator(cfg, progress=False)
    bundle = work / "bundle"
    export_bundle(run, bundle, checkpoint="last")
    return run, bundle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="Run directory (PyTorch weights); with --bundle")
    ap.add_argument("--bundle", type=Path, help="Its exported bundle")
    ap.add_argument("--vocab", type=int, default=5000, help="Synthetic model: vocabulary size")
    ap.add_argument("--hidden", type=int, default=256, help="Synthetic model: decoder width")
    ap.add_argument("--src-len", type=int, default=48, help="Synthetic model: source length (memory L)")
    ap.add_argument("--max-length", type=int, default=40, help="Output tokens per decode")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op and torch threads")
    ap.add_argument("--natural", action="store_true",
                    help="Let outputs end at the end token (default: forbid it, so every decode runs max_length steps)")
    args = ap.parse_args()

    import torch

    from edge_s2s.export.translate import load_trained
    from edge_s2s.runtime import Beam, Greedy, Seq2Seq, Timings
    from edge_s2s.runtime.reference_loop import decode as reference_decode
    from edge_s2s.train.core.torch_step import decode_manifest, pad_ids, torch_encode_fn, torch_step_fn

    torch.set_num_threads(args.threads)
    tmp = None
    if args.run is None:
        tmp = tempfile.TemporaryDirectory()
        print(f"building a model: V={args.vocab}, H={args.hidden}, L~{args.src_len} ...", file=sys.stderr)
        args.run, args.bundle = synthetic_run(Path(tmp.name), args.vocab, args.src_len, args.hidden)
    compiled = Seq2Seq.load(args.bundle, threads=args.threads, loop="compiled")
    numpy_loop = Seq2Seq.load(args.bundle, threads=args.threads, loop="reference")
    tmodel, _, _, _, _ = load_trained(args.run, "last")
    enc_fn, step_fn = torch_encode_fn(tmodel), torch_step_fn(tmodel)
    man = compiled.manifest
    tman = decode_manifest(tmodel, args.max_length)

    rng = random.Random(1)
    V = man.tokens.size
    L = args.src_len

    def inputs(batch: int) -> list[list[int]]:
        return [[rng.randrange(4, V) for _ in range(L)] + [man.tokens.eos_id] for _ in range(batch)]

    rows = []
    for batch in [int(x) for x in args.batches.split(",")]:
        ids = inputs(batch)
        src, lengths = pad_ids(ids)
        for beam in [int(x) for x in args.beams.split(",")]:
            search = Greedy() if beam == 1 else Beam(size=beam)
            min_len = 0 if args.natural else args.max_length
            times = {"compiled": [], "numpy": [], "torch": [], "floor": []}
            outs = {}
            for rep in range(args.repeats + 1):  # first round warms up
                tm = Timings()
                t0 = time.perf_counter_ns()
                outs["compiled"] = compiled.decode_ids(ids, search, args.max_length, min_len, timings=tm)
                t1 = time.perf_counter_ns()
                outs["numpy"] = numpy_loop.decode_ids(ids, search, args.max_length, min_len)
                t2 = time.perf_counter_ns()
                with torch.inference_mode():
                    outs["torch"] = reference_decode(tman, enc_fn(src, lengths), step_fn, search, args.max_length, min_len)
                t3 = time.perf_counter_ns()
                if rep:
                    times["compiled"].append(t1 - t0)
                    times["numpy"].append(t2 - t1)
                    times["torch"].append(t3 - t2)
                    times["floor"].append(sum(tm.encoder_ns) + sum(tm.step_ns))
            row_t, row_f = [], []
            for rep in range(args.repeats + 1):
                tm = Timings()
                t0 = time.perf_counter_ns()
                compiled.decode_ids(ids, search, args.max_length, min_len, timings=tm)
                if rep:
                    row_t.append(time.perf_counter_ns() - t0)
                    row_f.append(sum(tm.encoder_ns) + sum(tm.step_ns))
            times["in a row"], times["in a row floor"] = row_t, row_f
            same = all([h.ids for h in outs[k][0]] == [h.ids for h in outs["compiled"][0]] for k in ("numpy", "torch"))
            steps = len(tm.step_ns)
            med = {k: statistics.median(v) / 1e6 for k, v in times.items()}
            rows.append((batch, beam, steps, med, same))

    print(f"\nbundle {args.bundle}  V={V}  L={L}  max_length={args.max_length} ({'natural' if args.natural else 'fixed'})  threads={args.threads}  "
          f"repeats={args.repeats} (median)  providers={','.join(compiled.providers)}\n")
    print("| search | batch | steps | floor ms | compiled ms (x floor) | compiled in a row (x its floor) | numpy loop ms (x floor) "
          "| torch eager ms (x floor) | same tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch, beam, steps, m, same in rows:
        f = m["floor"]
        label = "greedy" if beam == 1 else f"beam {beam}"
        print(f"| {label} | {batch} | {steps} | {f:.2f} | {m['compiled']:.2f} ({m['compiled'] / f:.3f}) | "
              f"{m['in a row']:.2f} ({m['in a row'] / m['in a row floor']:.3f}) | "
              f"{m['numpy']:.2f} ({m['numpy'] / f:.3f}) | {m['torch']:.2f} ({m['torch'] / f:.3f}) | {'yes' if same else 'NO'} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
