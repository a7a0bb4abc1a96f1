"""Digit transcribers on the held-out speaker's test strings with three kinds of pause (issue 17): digital
zeros, noise at the recordings' own floor (how the test set is built), and noise at -90 dBFS; digit
error (WER: digits are space-separated words), CER and whole-string accuracy per bundle and condition.

    python scripts/speech_silence_check.py                                   # the shipped model
    python scripts/speech_silence_check.py --bundle old=models/transcriber \\
        --bundle new=runs/default-transcriber/bundles/int8-all --beam

The strings are the recipes of --test (data/fsdd-digits/test/manifest.jsonl, built by
train/speech/data.py build_fsdd: speaker "theo", never heard in training) rendered again from the
FSDD recordings (--fsdd) with only the pauses changed (`rerender_digit_set`), 16-bit PCM at 8 kHz
like the data set. Transcripts come from the runtime (`Transcriber`), WER / CER from jiwer
(scripts/speech_table.py). Writes runs/results/speech-silence.md and .json (docs/ with --write-docs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_out import add_write_docs, results_dir  # noqa: E402
from speech_compare import bundles_or_shipped  # noqa: E402
from speech_table import SEARCHES, error_rates, replace_section  # noqa: E402

from edge_s2s.runtime.errors import EdgeS2SError  # noqa: E402
from edge_s2s.runtime.tasks.transcriber import Transcriber  # noqa: E402
from edge_s2s.train.speech.data import FSDD_ROOT, read_manifest, rerender_digit_set  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "data" / "fsdd-digits" / "test" / "manifest.jsonl"
CONDITIONS: dict[str, tuple[str, float | None]] = {
    "digital zeros": ("zeros", None),
    "recordings' floor": ("floor", None),
    "-90 dBFS noise": ("noise", -90.0),
}
SECTION = "Pauses of digital silence (issue 17)"


def render_conditions(test: Path, out_dir: Path, fsdd: Path, limit: int = 0) -> dict[str, Path]:
    """Condition label -> manifest of the test strings re-rendered with that pause kind under `out_dir`."""
    return {label: rerender_digit_set(test, out_dir / kind, kind, db, fsdd, limit)
            for label, (kind, db) in CONDITIONS.items()}


def check(bundles: list[tuple[str, Path]], sets: dict[str, Path], searches: list[str]) -> list[dict]:
    """One row per bundle, condition and search: jiwer WER / CER, whole-string accuracy, the first example."""
    out = []
    for blabel, bpath in bundles:
        rt = Transcriber.load(bpath, threads=1)
        for clabel, manifest in sets.items():
            rows = read_manifest(manifest)
            paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
            for sname in searches:
                hyps = [t.text for t in rt.transcribe(paths, SEARCHES[sname], batch_size=16)]
                row = {"model": blabel, "condition": clabel, "search": sname, **error_rates(hyps, refs),
                       "example": {"ref": refs[0].replace(" ", ""), "hyp": hyps[0].replace(" ", "")}}
                out.append(row)
                print({k: v for k, v in row.items() if k != "example"}, file=sys.stderr)
    return out


def markdown(res: dict) -> str:
    """The page section: one table, a row per model and search, a column per condition."""
    conds = list(CONDITIONS)
    lines = [f"## {SECTION}", "",
             (f"Made by `scripts/speech_silence_check.py` through the runtime: the {res['strings']} held-out-speaker "
              f"test strings of `{res['test']}` rendered again with only their pauses changed. Each cell: digit "
              "error (jiwer WER, digits being space-separated words) / CER / whole string right."), "",
             "| model | search | " + " | ".join(conds) + " |", "|---|---|" + "---|" * len(conds)]
    for model, search in dict.fromkeys((r["model"], r["search"]) for r in res["rows"]):
        cells = []
        for c in conds:
            r = next(x for x in res["rows"] if (x["model"], x["search"], x["condition"]) == (model, search, c))
            cells.append(f"{100 * r['wer']:.1f}% / {100 * r['cer']:.1f}% / {100 * r['string_accuracy']:.1f}%")
        lines.append(f"| {model} | {search} | " + " | ".join(cells) + " |")
    lines += ["", "First string, greedy (reference -> transcript):", ""]
    for r in res["rows"]:
        if r["search"] == "greedy":
            lines.append(f"- {r['model']}, {r['condition']}: `{r['example']['ref']}` -> `{r['example']['hyp']}`")
    lines += ["", "Bundles: " + "; ".join(f"{k} = `{v}`" for k, v in res["bundles"].items()) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", action="append", default=[],
                    help="NAME=bundle directory (repeat; default: shipped=the packaged transcriber)")
    ap.add_argument("--test", type=Path, default=TEST, help="a build_fsdd test manifest (default %(default)s)")
    ap.add_argument("--fsdd", type=Path, default=FSDD_ROOT, help="the FSDD folder the set was built from")
    ap.add_argument("--limit", type=int, default=0, help="only the first N strings (0 = all)")
    ap.add_argument("--beam", action="store_true", help="beam 5 as well as greedy")
    ap.add_argument("--audio", type=Path, default=None, help="keep the rendered sets here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/speech-silence.md (docs/ with "
                                                           "--write-docs)")
    add_write_docs(ap)
    a = ap.parse_args(argv)
    bundles = bundles_or_shipped(a.bundle)
    if a.limit < 0:
        sys.exit(f"error: --limit must be >= 0, got {a.limit}")
    out = a.out or results_dir(a) / "speech-silence.md"
    searches = ["greedy", "beam5"] if a.beam else ["greedy"]
    try:
        with tempfile.TemporaryDirectory(prefix="silence-check-") as tmp:
            sets = render_conditions(a.test, a.audio or Path(tmp), a.fsdd, a.limit)
            rows = check(bundles, sets, searches)
            strings = len(read_manifest(next(iter(sets.values()))))
    except (EdgeS2SError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    res = {"test": str(a.test), "strings": strings, "bundles": {k: str(v) for k, v in bundles},
           "conditions": {k: {"pause": p, "pause_db": db} for k, (p, db) in CONDITIONS.items()}, "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    section = markdown(res)
    out.write_text(replace_section(out.read_text(encoding="utf-8") if out.is_file() else "", section),
                   encoding="utf-8")
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
