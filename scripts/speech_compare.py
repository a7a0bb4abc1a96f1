"""Several speech bundles on several held-out test sets, greedy vs beam 5, in one table: the
comparison README quotes (attention kind, training data). Writes one section of
docs/speech-results.md (replacing a section of the same title) and a JSON beside it.

    python scripts/speech_compare.py \
        --bundle "additive=bundles/speech-fsdd" --bundle "location-aware=bundles/speech-fsdd-location" \
        --test "held-out speaker (human)=data/fsdd-digits/test/manifest.jsonl" \
        --test "flite voices (never trained on)=data/fsdd-synth/test-flite/manifest.jsonl"

Transcripts come from the runtime (`Transcriber`), WER / CER from jiwer (scripts/speech_table.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_out import add_write_docs, results_dir  # noqa: E402
from speech_table import SEARCHES, error_rates, replace_section  # noqa: E402

from edge_s2s.runtime.tasks.transcriber import Transcriber  # noqa: E402
from edge_s2s.train.speech.data import read_manifest  # noqa: E402


def _pairs(values: list[str], what: str) -> list[tuple[str, Path]]:
    out = []
    for v in values:
        label, sep, path = v.partition("=")
        if not sep:
            sys.exit(f"error: --{what} {v!r} is not LABEL=PATH")
        out.append((label, Path(path)))
    return out


def bundles_or_shipped(values: list[str]) -> list[tuple[str, Path]]:
    """--bundle LABEL=PATH values (each must hold a manifest.json), or the shipped transcriber."""
    from edge_s2s.runtime.tasks.transcriber import default_transcriber_path

    bundles = _pairs(values, "bundle") if values else [("shipped", default_transcriber_path())]
    for label, path in bundles:
        if not (path / "manifest.json").is_file():
            sys.exit(f"error: --bundle {label}={path}: no bundle there (no manifest.json)")
    return bundles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", action="append", required=True, help="LABEL=bundle directory (repeat)")
    ap.add_argument("--test", action="append", required=True, help="LABEL=test manifest.jsonl (repeat)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default runs/results/speech-results.md (docs/ with --write-docs)")
    add_write_docs(ap)
    ap.add_argument("--section", default="Compared: attention and training data")
    ap.add_argument("--note", action="append", default=[], help="a paragraph under the table")
    a = ap.parse_args(argv)
    a.out = a.out or results_dir(a) / "speech-results.md"
    bundles, tests = _pairs(a.bundle, "bundle"), _pairs(a.test, "test")
    sets = {label: read_manifest(path) for label, path in tests}
    res: dict = {"bundles": {k: str(v) for k, v in bundles}, "tests": {k: str(v) for k, v in tests},
                 "sizes": {k: len(v) for k, v in sets.items()}, "rows": []}
    for blabel, bpath in bundles:
        rt = Transcriber.load(bpath, threads=1)
        for tlabel, rows in sets.items():
            paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
            for sname, search in SEARCHES.items():
                hyps = [t.text for t in rt.transcribe(paths, search, batch_size=16)]
                row = {"model": blabel, "test": tlabel, "search": sname, **error_rates(hyps, refs)}
                res["rows"].append(row)
                print(row, file=sys.stderr)
    lines = [f"## {a.section}", "",
             "Made by `scripts/speech_compare.py` through the runtime; WER / CER by jiwer; "
             + "; ".join(f"{k}: {v} strings" for k, v in res["sizes"].items()) + ".", ""]
    lines += ["| model | test set | search | WER | CER | whole string right |", "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['model']} | {r['test']} | {r['search']} | {100 * r['wer']:.1f}% | {100 * r['cer']:.1f}% | "
                     f"{100 * r['string_accuracy']:.1f}% |")
    lines += ["", *[p + "\n" for p in a.note],
              "Command:", "", "```", "python scripts/speech_compare.py " + " ".join(
                  f'--bundle "{k}={v}"' for k, v in bundles) + " " + " ".join(f'--test "{k}={v}"' for k, v in tests),
              "```", ""]
    section = "\n".join(lines)
    slug = re.sub(r"[^a-z0-9]+", "-", a.section.lower()).strip("-")
    a.out.with_name(f"{a.out.stem}-{slug}.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    a.out.write_text(replace_section(a.out.read_text(encoding="utf-8") if a.out.is_file() else "", section),
                     encoding="utf-8")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
