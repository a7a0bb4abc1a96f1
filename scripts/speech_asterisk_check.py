"""Digit transcribers on a real human voice they never heard (issue 17): the Asterisk PBX's prompt speaker
saying digit strings of 3 to 30 digits, with three kinds of pause, at 8 kHz as recorded and resampled to
16 kHz; digit error (WER: digits are space-separated words), CER and whole-string accuracy per bundle,
search, rate, pause kind and length bucket, and how many transcripts were cut at a step limit.

    python scripts/speech_asterisk_check.py                                  # the shipped model
    python scripts/speech_asterisk_check.py --bundle shipped=models/transcriber \\
        --bundle candidate=runs/default-transcriber/candidate/transcriber-24ep --beam --write-docs

The voice: Debian `asterisk-core-sounds-en-wav` (CC-BY-SA-3.0, recorded by Allison Smith), one
professional female US-English voice, 16-bit PCM at 8 kHz, `digits/0.wav` .. `9.wav` (found with
`dpkg -L`; installed with apt-get when missing and running as root). Each digit is ONE recording, so
a digit said twice is the same clip twice, which is how Asterisk itself says numbers.

The strings are built by train/speech/data.py, the FSDD builder, unchanged: an `FsddIndex` holding the
ten recordings as speaker "asterisk", `digit_strings` (seeded; "random" strings, 40 per length bucket
by default; pauses of 50-300 ms), each recording trimmed of its leading and trailing silence
(`ClipCache`: `runtime.audio.trim_silence`), and `write_digit_set` at 8 and 16 kHz; only the pause
kind changes between conditions (`dataclasses.replace`, like `rerender_digit_set`). Transcripts come
from the runtime (`Transcriber`, one thread), which resamples 16 kHz to the bundle's rate and cuts a
recording longer than the bundle's max_seconds at its pauses. WER / CER from jiwer
(scripts/speech_table.py `error_rates`). Writes runs/results/speech-asterisk.md and .json (docs/ with
--write-docs). Nothing here trains or chooses a model: it only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from results_out import add_write_docs, results_dir  # noqa: E402
from speech_compare import bundles_or_shipped  # noqa: E402
from speech_table import SEARCHES, error_rates  # noqa: E402

from edge_s2s.runtime.errors import EdgeS2SError  # noqa: E402
from edge_s2s.runtime.tasks.transcriber import Transcriber  # noqa: E402
from edge_s2s.train.speech.data import (  # noqa: E402
    DigitUtterance,
    FsddIndex,
    Recording,
    digit_strings,
    read_manifest,
    write_digit_set,
)

PACKAGE = "asterisk-core-sounds-en-wav"
SPEAKER = "asterisk"
CONDITIONS: dict[str, tuple[str, float | None]] = {
    "digital zeros": ("zeros", None),
    "-70 dBFS noise floor": ("noise", -70.0),
    "-50 dBFS room noise": ("noise", -50.0),
}
RATES = (8000, 16000)
BUCKETS: dict[str, tuple[int, int]] = {"3-5": (3, 5), "6-10": (6, 10), "11-20": (11, 20), "21-30": (21, 30)}
ALL = "all"


def package_version() -> str | None:
    """The installed version of the package (None when it is not installed)."""
    p = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", PACKAGE], capture_output=True,
                       text=True, check=False)
    status, _, version = p.stdout.strip().partition(" ")
    return version if p.returncode == 0 and status == "installed" else None


def digits_folder() -> Path:
    """The folder of the package's digits/0.wav .. 9.wav (installed from Debian first when missing)."""
    if shutil.which("dpkg-query") is None:
        sys.exit(f"error: no dpkg here: pass --sounds, a folder holding Asterisk's digits 0.wav .. 9.wav ({PACKAGE})")
    if package_version() is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            sys.exit(f"error: Debian package {PACKAGE} is missing: sudo apt-get install -y {PACKAGE}")
        print(f"installing Debian package {PACKAGE} ...", file=sys.stderr)
        if subprocess.run(["apt-get", "install", "-y", "-qq", PACKAGE], check=False).returncode:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", PACKAGE], check=True)
    files = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=True).stdout.split()
    zeros = sorted(Path(f).parent for f in files if f.endswith("/digits/0.wav"))
    if not zeros:
        sys.exit(f"error: {PACKAGE} installs no digits/0.wav: pass --sounds")
    return zeros[0]


def asterisk_index(folder: Path) -> FsddIndex:
    """The ten recordings as one speaker's takes (take 0 each), the index `digit_strings` draws from."""
    missing = [f"{d}.wav" for d in "0123456789" if not (folder / f"{d}.wav").is_file()]
    if missing:
        sys.exit(f"error: {folder} lacks {', '.join(missing)}: pass the folder holding Asterisk's digits 0.wav .. 9.wav")
    return FsddIndex(folder, {SPEAKER: {d: [Recording(folder / f"{d}.wav", SPEAKER, d, 0)] for d in "0123456789"}})


def recipes(index: FsddIndex, per_bucket: int, seed: int) -> dict[str, list[DigitUtterance]]:
    """Length bucket -> `per_bucket` seeded digit strings ("random" kind, lengths uniform in the bucket)."""
    rng = np.random.default_rng(seed)
    return {b: digit_strings(index, [SPEAKER], per_bucket, rng, lo, hi, kinds={"random": 1.0}, prefix=f"{b}-",
                             pause_mix={"zeros": 1.0})
            for b, (lo, hi) in BUCKETS.items()}


def render_conditions(utts: list[DigitUtterance], out_dir: Path) -> dict[tuple[int, str], Path]:
    """(rate, condition label) -> manifest of the strings written with that pause kind at that rate."""
    return {(rate, label): write_digit_set(out_dir / f"{rate}" / (kind if db is None else f"{kind}{db:g}"),
                                           [replace(u, pause=kind, pause_db=db) for u in utts], rate)
            for rate in RATES for label, (kind, db) in CONDITIONS.items()}


def scores(hyps: list[str], refs: list[str], ts: list) -> dict:
    """error_rates plus what the runtime said: cut at a step limit, split at pauses, refused, and how many
    transcripts have fewer digits than the reference with no warning (a cut nobody was told about?)."""
    short = [len(h.split()) < len(r.split()) for h, r in zip(hyps, refs)]
    return {**error_rates(hyps, refs), "n": len(refs),
            "cut": sum(t.warning is not None for t in ts),
            "split": sum(bool(t.pieces) for t in ts),
            "refused": sum(t.error is not None for t in ts),
            "short": sum(short),
            "short_unwarned": sum(s and t.warning is None for s, t in zip(short, ts))}


def digit_alignment(hyps: list[str], refs: list[str]) -> dict:
    """jiwer's digit substitutions, deletions and insertions, and digit -> share of its occurrences in the
    references that the transcript has right."""
    import jiwer

    said: dict[str, int] = dict.fromkeys("0123456789", 0)
    right = dict(said)
    words = jiwer.process_words(refs, hyps)
    for al, ref in zip(words.alignments, [r.split() for r in refs]):
        for chunk in al:
            for d in ref[chunk.ref_start_idx: chunk.ref_end_idx]:
                said[d] += 1
                right[d] += chunk.type == "equal"
    return {"substitutions": words.substitutions, "deletions": words.deletions, "insertions": words.insertions,
            "digit_recall": {d: right[d] / said[d] for d in said if said[d]}}


def check(bundles: list[tuple[str, Path]], sets: dict[tuple[int, str], Path], searches: list[str]) -> list[dict]:
    """One row per bundle, search, rate, condition and length bucket (and "all")."""
    out = []
    for blabel, bpath in bundles:
        rt = Transcriber.load(bpath, threads=1)
        for (rate, clabel), manifest in sets.items():
            rows = read_manifest(manifest)
            paths, refs = [r["audio"] for r in rows], [r["transcript"] for r in rows]
            buckets = [r["id"].split("-" + SPEAKER + "-")[0] for r in rows]
            for sname in searches:
                t0 = time.perf_counter()
                ts = rt.transcribe(paths, SEARCHES[sname], batch_size=16, errors="keep")
                seconds = time.perf_counter() - t0
                hyps = [t.text if t.error is None else "" for t in ts]
                for b in [*BUCKETS, ALL]:
                    idx = [i for i, x in enumerate(buckets) if b in (x, ALL)]
                    row = {"model": blabel, "search": sname, "rate": rate, "condition": clabel, "bucket": b,
                           **scores([hyps[i] for i in idx], [refs[i] for i in idx], [ts[i] for i in idx]),
                           "example": {"ref": refs[idx[0]].replace(" ", ""), "hyp": hyps[idx[0]].replace(" ", "")}}
                    if b == ALL:
                        row.update(digit_alignment(hyps, refs))
                        row["seconds"] = round(seconds, 1)
                        row["audio_seconds"] = round(sum(r["duration"] for r in rows), 1)
                        row["warnings"] = sorted({t.warning for t in ts if t.warning})[:3]
                        row["errors"] = sorted({t.error for t in ts if t.error})[:3]
                        print({k: v for k, v in row.items() if k not in ("example", "warnings", "errors")},
                              file=sys.stderr)
                    out.append(row)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(res: dict) -> str:
    conds, bks = list(CONDITIONS), [*BUCKETS, ALL]
    rows = res["rows"]

    def get(model, search, rate, cond, bucket):
        return next(r for r in rows if (r["model"], r["search"], r["rate"], r["condition"], r["bucket"])
                    == (model, search, rate, cond, bucket))

    keys = list(dict.fromkeys((r["model"], r["search"]) for r in rows))
    lines = ["# Digit transcriber on a voice it never heard: the Asterisk prompt speaker", "",
             ("The voice: Allison Smith, the professional US-English female voice of the Asterisk PBX's prompts, "
              f"from Debian `{PACKAGE}` {res['package_version'] or ''} (CC-BY-SA-3.0), one 16-bit 8 kHz recording "
              "of each digit (`digits/0.wav` .. `9.wav`). No model here heard this voice in training, and "
              "nothing here trained or chose a model: this page only measures."), "",
             (f"{res['strings']} seeded digit strings (seed {res['seed']}; {res['per_bucket']} per length bucket, "
              "lengths uniform within it), built by train/speech/data.py's FSDD builder (`digit_strings`, "
              "`write_digit_set`: each recording trimmed of its leading and trailing silence, pauses of "
              "50-300 ms plus a lead-in and tail), written once per pause kind: digital zeros, white noise at "
              "-70 dBFS (a faint floor) and at -50 dBFS (room noise), at 8 kHz as recorded and resampled to "
              "16 kHz (the runtime resamples back; the noise is drawn at the file's rate, so at 16 kHz half its "
              "power lies above 4 kHz and the model's band gets 3 dB less). Transcripts from the runtime (`Transcriber`, one thread); "
              "a recording longer than a bundle's max_seconds is cut at its pauses and the pieces joined. The "
              "FSDD builder's training strings have 2-10 digits, so the 11-20 and 21-30 buckets are longer than "
              "anything such a model heard; the cut falls at the longest pause, so a piece can still hold up to "
              "max_seconds of digits (about 16 of this slow prompt voice)."), "",
             f"Regenerate: `{res['command']}`", "",
             "## Digit error by length", "",
             "Each cell: digit error (jiwer WER, digits being space-separated words) / whole string right.", "",
             "| model | search | rate | pauses | " + " | ".join(f"{b} digits" if b != ALL else ALL for b in bks) + " |",
             "|---|---|---|---|" + "---|" * len(bks)]
    for model, search in keys:
        for rate in RATES:
            for c in conds:
                cells = [f"{_pct(x['wer'])} / {_pct(x['string_accuracy'])}"
                         for x in (get(model, search, rate, c, b) for b in bks)]
                lines.append(f"| {model} | {search} | {rate // 1000} kHz | {c} | " + " | ".join(cells) + " |")
    lines += ["", "## All lengths, and whether a transcript was cut", "",
              ("S / D / I: digits substituted, deleted and inserted (jiwer). cut: the runtime's `warning` (a step limit stopped the text before the end token); split: "
               "recordings cut at pauses into pieces (longer than max_seconds); short, unwarned: fewer digits "
               "than the reference and no warning (the model itself dropped digits, or a silent cut); refused: "
               "an InputError (scored as an empty transcript)."), "",
              ("| model | search | rate | pauses | digit error | S / D / I | CER | whole string | cut | split "
               "| short, unwarned | refused | seconds |"), "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, search in keys:
        for rate in RATES:
            for c in conds:
                x = get(model, search, rate, c, ALL)
                lines.append(f"| {model} | {search} | {rate // 1000} kHz | {c} | {_pct(x['wer'])} "
                             f"| {x['substitutions']} / {x['deletions']} / {x['insertions']} | {_pct(x['cer'])} "
                             f"| {_pct(x['string_accuracy'])} | {x['cut']} | {x['split']}/{x['n']} "
                             f"| {x['short_unwarned']} | {x['refused']} | {x['seconds']:.0f} |")
    lines += ["", "## Which digits", "",
              ("Each digit is ONE recording, said wherever that digit occurs, so a clip a model mishears is "
               "misheard in nearly every string: these numbers measure ten recordings in many contexts, and one "
               "misheard clip caps whole-string accuracy. Share of each digit's occurrences transcribed right "
               "(jiwer alignment, all lengths, greedy, 8 kHz):"), "",
              "| model | pauses | " + " | ".join("0123456789") + " |", "|---|---|" + "---|" * 10]
    for model in dict.fromkeys(m for m, _ in keys):
        for c in conds:
            rec = get(model, "greedy", 8000, c, ALL)["digit_recall"]
            lines.append(f"| {model} | {c} | " + " | ".join(f"{100 * rec[d]:.0f}%" if d in rec else "-"
                                                           for d in "0123456789") + " |")
    lines += ["", "First string of each bucket, greedy, 8 kHz, digital zeros (reference -> transcript):", ""]
    for model in dict.fromkeys(m for m, _ in keys):
        for b in BUCKETS:
            r = get(model, "greedy", 8000, "digital zeros", b)
            lines.append(f"- {model}, {b} digits: `{r['example']['ref']}` -> `{r['example']['hyp']}`")
    lines += ["", "Bundles: " + "; ".join(f"{k} = `{v['path']}` (trained on: {v['data']}; max_seconds "
                                           f"{v['max_seconds']})" for k, v in res["bundles"].items()) + ".", ""]
    return "\n".join(lines)


def bundle_info(path: Path) -> dict:
    m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    model = m.get("model", {})
    data = model.get("data", "?") + (f", speakers {', '.join(model['test_speakers'])} held out"
                                     if model.get("test_speakers") else "")
    return {"path": str(path), "data": data, "max_seconds": m.get("preprocessing", {}).get("max_seconds")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", action="append", default=[],
                    help="NAME=bundle directory (repeat; default: shipped=the packaged transcriber)")
    ap.add_argument("--sounds", type=Path, default=None,
                    help=f"the folder of 0.wav .. 9.wav (default: {PACKAGE}'s digits/, installed when missing)")
    ap.add_argument("--per-bucket", type=int, default=40, help="strings per length bucket (default %(default)s)")
    ap.add_argument("--seed", type=int, default=17, help="seed of the digit strings (default %(default)s)")
    ap.add_argument("--beam", action="store_true", help="beam 5 as well as greedy")
    ap.add_argument("--audio", type=Path, default=None, help="keep the rendered sets here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=None, help="default runs/results/speech-asterisk.md (docs/ with "
                                                           "--write-docs)")
    add_write_docs(ap)
    a = ap.parse_args(argv)
    bundles = bundles_or_shipped(a.bundle)
    if a.per_bucket < 1:
        sys.exit(f"error: --per-bucket must be >= 1, got {a.per_bucket}")
    out = a.out or results_dir(a) / "speech-asterisk.md"
    searches = ["greedy", "beam5"] if a.beam else ["greedy"]
    folder = a.sounds or digits_folder()
    t0 = time.perf_counter()
    try:
        utts = [u for us in recipes(asterisk_index(folder), a.per_bucket, a.seed).values() for u in us]
        with tempfile.TemporaryDirectory(prefix="asterisk-check-") as tmp:
            sets = render_conditions(utts, a.audio or Path(tmp))
            rows = check(bundles, sets, searches)
    except (EdgeS2SError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    command = "python scripts/speech_asterisk_check.py " + " ".join(
        [f"--bundle {shlex.quote(b)}" for b in a.bundle]
        + (["--beam"] if a.beam else []) + ([f"--per-bucket {a.per_bucket}"] if a.per_bucket != 40 else [])
        + ([f"--seed {a.seed}"] if a.seed != 17 else []) + (["--write-docs"] if a.write_docs else []))
    res = {"voice": str(folder), "package": PACKAGE, "package_version": None if a.sounds else package_version(),
           "licence": "CC-BY-SA-3.0", "seed": a.seed, "per_bucket": a.per_bucket, "strings": len(utts),
           "buckets": BUCKETS, "rates": list(RATES), "command": command.strip(),
           "bundles": {k: bundle_info(v) for k, v in bundles},
           "conditions": {k: {"pause": p, "pause_db": db} for k, (p, db) in CONDITIONS.items()},
           "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    page = markdown(res)
    out.write_text(page, encoding="utf-8")
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
