#!/usr/bin/env python3
"""Does an answer depend on what else is in its batch? Each input decoded alone (batch 1) and among
others (a bigger batch), through the runtime; the table counts the inputs whose text differs and the
largest score difference.

ONNX Runtime's dynamic int8 scaled each activation tensor at once, and a batch is one tensor, so int8
bundles answered differently with different batch-mates; export/int8_rows.py (per-row scales) and the
transcriber's per-recording int8-LSTM encoder fixed that. Inputs are validation or held-out data only:

  translate   the first 500 trans-de-en validation sentences (data/de-en/valid.tsv), batch 32
  caption     40 clip-art validation images (data/clipart/dataset_clipart.json), batch 16
  transcribe  200 held-out strings of the FSDD speaker theo (data/speech-default-v5/test), batch 8

    python scripts/batch_check.py --bundle "translator=models/translator" --bundle "captioner=models/captioner" \\
        --bundle "transcriber=models/transcriber" --write-docs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from results_out import add_write_docs, results_dir

ROOT = Path(__file__).resolve().parent.parent
BATCH = {"translate": 32, "caption": 16, "transcribe": 8}


def inputs(task: str, args: argparse.Namespace) -> list:
    if task == "translate":
        lines = args.translate_data.read_text(encoding="utf-8").splitlines()
        return [ln.split("\t")[0] for ln in lines[:500]]
    if task == "caption":
        items = json.loads(args.caption_data.read_text())["images"]
        return [str(args.caption_data.parent / i["filepath"] / i["filename"]) for i in items if i["split"] == "val"][:40]
    if task == "transcribe":
        rows = [json.loads(ln) for ln in args.speech_data.read_text().splitlines() if ln.strip()]
        return [r["audio"] for r in rows[:200]]
    raise SystemExit(f"error: no batch check for task {task!r}")


def decode(model, task: str, xs: list, search, batch: int) -> list[tuple[str, float]]:
    if task == "translate":
        out = model.generate(xs, search=search, batch_size=batch)
    elif task == "caption":
        out = model.caption(xs, search=search, batch_size=batch)
    else:
        out = model.transcribe(xs, search=search, batch_size=batch)
    return [(r.text, float(r.score)) for r in out]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", required=True, help="LABEL=bundle directory (repeat)")
    ap.add_argument("--translate-data", type=Path, default=ROOT / "data" / "de-en" / "valid.tsv")
    ap.add_argument("--caption-data", type=Path, default=ROOT / "data" / "clipart" / "dataset_clipart.json")
    ap.add_argument("--speech-data", type=Path, default=ROOT / "data" / "speech-default-v5" / "test" / "manifest.jsonl")
    add_write_docs(ap)
    args = ap.parse_args(argv)

    from edge_s2s.runtime.manifest import Manifest
    from edge_s2s.runtime.search import Beam, Greedy
    from edge_s2s.runtime.tasks.loading import load_any

    rows = []
    for spec in args.bundle:
        label, sep, path = spec.partition("=")
        if not sep or not (Path(path) / "manifest.json").is_file():
            print(f"error: --bundle {spec!r}: give LABEL=DIR with a bundle directory", file=sys.stderr)
            return 1
        task = Manifest.load(path).task
        xs = inputs(task, args)
        model = load_any(path, threads=1)
        for sname, search in (("greedy", Greedy()), ("beam 5", Beam(5))):
            alone = decode(model, task, xs, search, 1)
            together = decode(model, task, xs, search, BATCH[task])
            differ = sum(a[0] != b[0] for a, b in zip(alone, together))
            gap = max(abs(a[1] - b[1]) for a, b in zip(alone, together))
            rows.append({"bundle": label, "path": path, "task": task, "search": sname, "inputs": len(xs),
                         "batch": BATCH[task], "texts_differ": differ, "max_score_gap": gap,
                         "int8": Manifest.load(path).model.get("int8")})
            print(f"{label:40} {sname:7} {differ:4d} of {len(xs)} differ (batch 1 vs {BATCH[task]}), "
                  f"largest score gap {gap:.2e}", flush=True)
    out = ["# Do answers depend on their batch-mates?", "",
           "`python scripts/batch_check.py " + " ".join(f"--bundle '{b}'" for b in args.bundle) + " --write-docs`: "
           "each input decoded alone and in a batch, through the runtime, 1 thread; validation or held-out inputs "
           "only (see the script). Every bundle runs on this runtime, so an int8-LSTM transcriber encodes recording "
           "by recording whatever its export (`Transcriber.encode_features`); its remaining score gap comes from its "
           "decoder's int8 scales (per tensor before export/int8_rows.py, per row after).", "",
           "| bundle | task | int8 | search | inputs | batch | texts that differ | largest score gap |",
           "|---|---|---|---|---|---|---|---|"]
    out += [f"| {r['bundle']} | {r['task']} | {r['int8']} | {r['search']} | {r['inputs']} | {r['batch']} | "
            f"{r['texts_differ']} | {r['max_score_gap']:.1e} |" for r in rows]
    d = results_dir(args)
    (d / "batch-check.md").write_text("\n".join(out) + "\n")
    (d / "batch-check.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {d / 'batch-check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
