"""Train, evaluate, export and look at the generators of issue 8; writes docs/generation-results.md.

    python scripts/generation_study.py                 # everything (about an hour on 2 CPU cores)
    python scripts/generation_study.py --only digits   # runs whose name contains "digits"
    python scripts/generation_study.py --quick         # tiny budgets: checks the pipeline in minutes

Every run trains into runs/gen/<name> (resumed, not restarted, when it exists), is scored
on its held-out test split with PyTorch (teacher forcing) and again through the exported
bundle and the runtime (forced-prefix scoring, a cross-check), is exported to
bundles/gen/<name>, and generates samples through the runtime (PNG grids under docs/img/).
Data: the King James Bible (Debian bible-kjv-text, public domain), Fashion-MNIST (Debian
dataset-fashion-mnist, MIT) and the scikit-learn digits (BSD); none of it is committed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from results_out import add_write_docs, results_dir  # noqa: E402

from edge_s2s.runtime.pictures.sample_grid import save_grid
from edge_s2s.runtime.search import Sample
from edge_s2s.runtime.tasks.generator import Generator
from edge_s2s.train.core.checkpoint import LAST, load_checkpoint
from edge_s2s.train.generate.config import GeneratorConfig, GeneratorTrainConfig
from edge_s2s.train.generate.loop import heldout_metrics, load_generator, load_generator_data, train_generator

ROOT = Path(__file__).resolve().parent.parent
PIXEL = dict(unit="pixel", blocked_ids=[0, 1, 2, 3])
SIZES = {"digits": (8, 8), "fashion": (28, 28)}
N_CLASSES = 10


@dataclass
class Run:
    name: str
    data: str
    model: dict
    train: dict = field(default_factory=dict)
    note: str = ""


def runs(quick: bool) -> list[Run]:
    def px(data, **model):
        h, w = SIZES[data]
        return dict(PIXEL, height=h, width=w, **model)

    cond = dict(n_conditions=N_CLASSES, cond_dim=16)
    digits_train = dict(levels=4, epochs=30, batch_size=64, lr=3e-3)
    fashion_train = dict(levels=4, epochs=2, batch_size=64, lr=3e-3, max_train=15000)
    out = [
        Run("kjv-char", "kjv", dict(unit="char", emb_dim=32, hidden=256, dropout=0.0, blocked_ids=[0, 2]),
            dict(epochs=8, batch_size=64, lr=3e-3, max_tokens=300)),
        Run("kjv-word", "kjv", dict(unit="word", emb_dim=128, hidden=256, dropout=0.2, blocked_ids=[0, 2]),
            dict(epochs=6, batch_size=64, lr=3e-3, vocab_min_count=2)),
        Run("digits-lstm", "digits", px("digits", emb_dim=16, hidden=128), dict(digits_train)),
        Run("digits-grid", "digits", px("digits", arch="grid", emb_dim=16, hidden=128), dict(digits_train)),
        Run("digits-lstm-distribution", "digits", px("digits", emb_dim=16, hidden=128, input_mode="distribution"),
            dict(digits_train), "fed the expected embedding under its previous softmax"),
        Run("digits-lstm-cond", "digits", px("digits", emb_dim=16, hidden=128, **cond),
            dict(digits_train, conditional=True)),
        Run("digits-grid-cond", "digits", px("digits", arch="grid", emb_dim=16, hidden=128, **cond),
            dict(digits_train, conditional=True)),
        Run("fashion-lstm-cond", "fashion", px("fashion", emb_dim=16, hidden=128, **cond),
            dict(fashion_train, conditional=True)),
        Run("fashion-grid-cond", "fashion", px("fashion", arch="grid", emb_dim=16, hidden=96, **cond),
            dict(fashion_train, conditional=True)),
    ]
    if quick:
        for r in out:
            r.train.update(epochs=1, max_steps=20, max_train=r.train.get("max_train", 0) or 0)
            if r.data == "kjv":
                r.train["max_train"] = 640
            elif r.data == "fashion":
                r.train["max_train"] = 640
    return out


def config(run: Run, runs_dir: Path) -> GeneratorTrainConfig:
    return GeneratorTrainConfig(data=run.data, out_dir=str(runs_dir / run.name), model=GeneratorConfig(**run.model),
                                **run.train)


def train(run: Run, cfg: GeneratorTrainConfig) -> float:
    """Train or resume to the configured epochs; returns the seconds spent now."""
    last = Path(cfg.out_dir) / LAST
    t0 = time.time()
    if last.is_file():
        pos = load_checkpoint(last).get("position", {})
        if pos.get("epoch", 0) >= cfg.epochs or (cfg.max_steps and pos.get("step", 0) >= cfg.max_steps):
            return 0.0
        train_generator(cfg, resume=True, progress=sys.stderr.isatty())
    else:
        train_generator(cfg, progress=sys.stderr.isatty())
    return time.time() - t0


def runtime_check(bundle: Path, cfg: GeneratorTrainConfig, n: int = 8) -> dict:
    """Score a few test sequences through the runtime (forced prefix) and with PyTorch."""
    from edge_s2s.train.generate.loop import dataset_nll

    model, vocab, _ = load_generator(cfg.out_dir)
    data = load_generator_data(cfg, vocab)
    # Decoding never emits <unk> (a forced one scores -inf), so text checks use verses without it.
    exs = [e for e in data.splits["test"] if vocab.unk_id not in e[0]][:n]
    gen = Generator.load(bundle)
    rt = 0.0
    for ids, c in exs:
        if gen.is_image:
            img = np.asarray(ids, np.int64).reshape(gen.height, gen.width) - 4
            rt += -gen.score([img], condition=c if gen.conditions else None)[0]
        else:
            # the ids themselves (a word text may hold <unk>, which score(text) would refuse)
            raws = gen.decode_encoded(gen.encode_conditions([0]), Sample(seed=0), len(ids), prefix=[ids])
            rt += -raws[0][0].log_prob
    pt, k = dataset_nll(model, exs)
    return {"sequences": len(exs), "runtime_nll": rt, "pytorch_nll": pt, "abs_diff": abs(rt - pt)}


def samples(run: Run, cfg: GeneratorTrainConfig, bundle: Path, img_dir: Path, quick: bool) -> dict:
    gen = Generator.load(bundle)
    out: dict = {}
    if not gen.is_image:
        prompts = ["And God said", "The LORD is", "In the beginning"]
        res = gen.generate(prompts, search=Sample(temperature=0.8, top_p=0.9, seed=7), max_length=200)
        out["text"] = [r.text for r in res]
        res = gen.generate(["And it came to pass"], search=Sample(temperature=0.8, top_p=0.9, seed=7,
                                                                  repetition_penalty=1.3), max_length=200)
        out["text_repetition_penalty_1.3"] = res[0].text
        return out
    img_dir.mkdir(parents=True, exist_ok=True)
    per = 2 if quick else 8
    if gen.conditions:
        imgs, labels = [], []
        for c in range(len(gen.conditions)):
            imgs.append(gen.sample_images(per, condition=c, search=Sample(seed=100 + c)))
            labels += [gen.conditions[c]] * per
        grid = np.concatenate(imgs)
        path = save_grid(img_dir / f"{run.name}-samples.png", grid, gen.levels, columns=per,
                         scale=3 if gen.height > 10 else 8)
    else:
        grid = gen.sample_images(8 * per, search=Sample(seed=100))
        path = save_grid(img_dir / f"{run.name}-samples.png", grid, gen.levels, columns=per,
                         scale=3 if gen.height > 10 else 8)
    out["samples_png"] = _rel(path)
    # Completion: the top half of test images is forced, the rest generated (3 tries each).
    data = load_generator_data(cfg)
    test = data.splits["test"]
    picks = list(range(8))
    if gen.conditions:  # one test image per class
        picks = [next(i for i, (_, lab) in enumerate(test) if lab == c) for c in range(len(gen.conditions))][:8]
    rows = gen.height // 2
    originals = np.stack([np.asarray(test[i][0], np.int64).reshape(gen.height, gen.width) - 4 for i in picks])
    top = originals.copy()
    top[:, rows:] = 0
    tries = [originals, top]
    for k in range(3):
        done = []
        for i, img in zip(picks, originals):
            c = test[i][1] if gen.conditions else None
            done.append(gen.complete(img[None], rows, condition=c, search=Sample(seed=200 + k))[0])
        tries.append(np.stack(done))
    grid = np.stack(tries, 1).reshape(-1, gen.height, gen.width)  # one row per test image
    path = save_grid(img_dir / f"{run.name}-completions.png", grid, gen.levels, columns=len(tries),
                     scale=3 if gen.height > 10 else 8)
    out["completions_png"] = _rel(path)
    return out


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def marginal_baseline(data: str, levels: int = 4) -> float:
    """Test bits per pixel of independent pixels: each position's level histogram on the
    training images (add-0.5 smoothed). What a generator that cannot see its own samples
    can reach at best; NaN when the data set is not installed here (the page then says so
    instead of failing after hours of training)."""
    from edge_s2s.runtime.errors import EdgeS2SError
    from edge_s2s.train.generate.pixel_data import DATASETS, quantise

    entry = DATASETS[data]
    try:
        splits = entry[0]()
    except EdgeS2SError as e:
        print(f"note: no independent-pixel baseline for {data}: {e}", file=sys.stderr)
        return float("nan")
    tr = quantise(splits["train"][0], levels, entry[1]).reshape(len(splits["train"][0]), -1).astype(np.int64)
    te = quantise(splits["test"][0], levels, entry[1]).reshape(len(splits["test"][0]), -1).astype(np.int64)
    counts = np.stack([(tr == q).sum(0) for q in range(levels)], 1) + 0.5
    p = counts / counts.sum(1, keepdims=True)
    return float(-np.log2(p[np.arange(tr.shape[1])[None], te]).mean())


def _doc_link(path: str) -> str:
    """A repository path as a link from docs/generation-results.md."""
    return path[len("docs/"):] if path.startswith("docs/") else f"../{path}"


def _fmt(x, nd=3):
    return "–" if x is None else f"{x:.{nd}f}"


def write_report(results: dict, path: Path, quick: bool) -> None:
    """docs/generation-results.md from the results JSON (tables, samples, pictures)."""
    lines = ["# Generation results (issue 8)", "",
             "Regenerate with `python scripts/generation_study.py` (runs in `runs/gen/`, bundles in "
             "`bundles/gen/`, numbers in `docs/generation-results.json`). One seed per configuration; test splits "
             "are never used for training or model selection (best checkpoint = lowest validation NLL).", ""]
    if quick:
        lines += ["**QUICK MODE: tiny budgets, the numbers mean nothing.**", ""]
    text = [r for r in results.values() if r["data"] == "kjv"]
    if text:
        lines += ["## Language models on the King James Bible", "",
                  "Corpus: Debian `bible-kjv-text` (public domain; Crown patent in the UK), 31,102 verses, one "
                  "training sequence a verse, split by chapter (chapter k: test if k % 20 == 7, validation if "
                  "k % 20 == 13): 28,181 / 1,508 / 1,413 verses.", "",
                  "| model | vocabulary | parameters | epochs | test perplexity (per token) | test bits per character "
                  "| validation perplexity |", "|---|---|---|---|---|---|---|"]
        for r in text:
            t, v = r["test"], r["val"]
            bpc = t.get("test_bits_per_char")
            if bpc is None:  # words: the same NLL spread over the characters of the test text
                bpc = None
            lines.append(f"| {r['name']} ({r['model']['unit']}, LSTM {r['model']['hidden']}) | {r.get('vocab', '?')} "
                         f"| {r['parameters']:,} | {r['train'].get('epochs')} | {_fmt(t['test_perplexity'], 2)} "
                         f"| {_fmt(bpc)} | {_fmt(v['val_perplexity'], 2)} |")
        lines += ["", "Samples through the runtime (`Sample(temperature=0.8, top_p=0.9, seed=7)`, prompt forced):", ""]
        for r in text:
            for s_ in r["samples"].get("text", []):
                lines.append(f"- {r['name']}: {s_}")
            if "text_repetition_penalty_1.3" in r["samples"]:
                lines.append(f"- {r['name']}, repetition penalty 1.3: {r['samples']['text_repetition_penalty_1.3']}")
        lines.append("")
    pix = [r for r in results.values() if r["data"] != "kjv"]
    if pix:
        lines += ["## Images pixel by pixel", "",
                  "Pixels quantised to 4 levels (the tokens), generated in raster order. `lstm`: a plain LSTM over "
                  "the raster sequence (the notes' \"pixel as a character\"). `grid`: the notes' neighbour-aware "
                  "generator, a 2-D LSTM whose cell reads its left and upper neighbours' states and pixels "
                  "(train/generate/grid_lstm.py). Test NLL in bits per pixel (lower is better; log2(4) = 2 bits is a uniform "
                  "guess).", "",
                  "| data | generator | condition | input fed | parameters | epochs | train images | test bits/pixel "
                  "| val bits/pixel |", "|---|---|---|---|---|---|---|---|---|"]
        for r in pix:
            m, t = r["model"], r["train"]
            lines.append(f"| {r['data']} {m['height']}x{m['width']} | {m.get('arch', 'lstm')} | "
                         f"{'class' if t.get('conditional') else 'none'} | {m.get('input_mode', 'token')} | "
                         f"{r['parameters']:,} | {t.get('epochs')} | {r.get('train_examples', '?')} | "
                         f"{_fmt(r['test']['test_bits_per_pixel'])} | {_fmt(r['val']['val_bits_per_pixel'])} |")
        for data in sorted({r["data"] for r in pix}):
            b = marginal_baseline(data)
            h, w = SIZES[data]
            shown = f"{b:.3f}" if b == b else "(data set not installed)"
            lines.append(f"| {data} {h}x{w} | independent pixels (per-position histograms) | none | – | – | – | – "
                         f"| {shown} | – |")
        lines += ["", "Samples (one row per class for conditional models) and completions (each row: a test image, "
                  "its top half, three completions of the bottom half):", ""]
        for r in pix:
            s_ = r["samples"]
            lines.append(f"- {r['name']}: ![samples]({_doc_link(s_['samples_png'])}) "
                         f"![completions]({_doc_link(s_['completions_png'])})")
        lines.append("")
    def bpp(name):
        r = results.get(name)
        return r["test"]["test_bits_per_pixel"] if r else float("nan")

    if pix:
        lines += ["## What we see", "",
                  f"- **Feeding the distribution vs a sample** (digits, same LSTM, same budget): teacher forcing "
                  f"{bpp('digits-lstm'):.3f} bits/pixel, fed the expected embedding {bpp('digits-lstm-distribution'):.3f}"
                  f", next to {marginal_baseline('digits'):.3f} for independent pixels. Fed only its own softmax, the "
                  "model never sees which pixel was drawn, so its input sequence is the same for every image and each "
                  "pixel's distribution is fixed in advance: the model can only learn per-position marginals, and it "
                  "does (its NLL is the histogram baseline's). Its samples are independent noise with the right "
                  "average intensity (digits-lstm-distribution-samples.png), and completion cannot use the given top "
                  "half. The notes' warning (\"the right one is worse\") holds: when the next token is ambiguous, the "
                  "distribution keeps both options alive instead of committing to one, and later pixels cannot agree "
                  "with a choice that was never made.",
                  f"- **Neighbour-aware vs raster** on Fashion-MNIST: the 2-D LSTM reaches {bpp('fashion-grid-cond'):.3f}"
                  f" bits/pixel against {bpp('fashion-lstm-cond'):.3f} for the raster LSTM, and its samples stand "
                  "upright while the raster LSTM's are sheared: it must count 28 pixels per row in its state and drifts "
                  "by about a pixel a row, which is the notes' point that the plain generator ignores where a pixel is. "
                  f"On the 8x8 digits the raster LSTM is slightly better ({bpp('digits-lstm'):.3f} vs "
                  f"{bpp('digits-grid'):.3f} unconditional, {bpp('digits-lstm-cond'):.3f} vs {bpp('digits-grid-cond'):.3f}"
                  " conditional): a row is 8 pixels, easy to count, and the 2-D LSTM's causal field has a blind spot "
                  "(the pixels above and to the right of (i, j), such as (i-1, j+1), never reach it: every path runs "
                  "left or down), which costs more on small images with 1,350 training examples.",
                  "- **The condition helps**: every conditional model beats its unconditional twin on digits; the "
                  "samples of one class per row are recognisable for both datasets.", ""]
    checks = [(r["name"], r["runtime_check"]) for r in results.values()]
    if checks:
        lines += ["## The bundle scores what PyTorch scores", "",
                  "NLL (nats) of the first 8 test sequences (text: the first 8 without `<unk>`) through the exported bundle (runtime, forced-prefix "
                  "decoding) and with PyTorch teacher forcing. Text models renormalise without `<unk>` when decoding, "
                  "so their runtime NLL is slightly lower by design.", "",
                  "| run | runtime NLL | PyTorch NLL | abs diff |", "|---|---|---|---|"]
        for name, c in checks:
            lines.append(f"| {name} | {c['runtime_nll']:.4f} | {c['pytorch_nll']:.4f} | {c['abs_diff']:.2e} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="Only runs whose name contains this.")
    ap.add_argument("--quick", action="store_true", help="Tiny budgets (pipeline check).")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "gen")
    ap.add_argument("--bundles", type=Path, default=ROOT / "bundles" / "gen")
    ap.add_argument("--docs", type=Path, default=None,
                    help="folder of the page and its img/ (default runs/results; docs with --write-docs)")
    add_write_docs(ap)
    ap.add_argument("--train-only", action="store_true", help="Train the runs, evaluate nothing.")
    args = ap.parse_args(argv)
    args.docs = args.docs or results_dir(args)
    torch.set_num_threads(2)
    if args.train_only:
        for run in runs(args.quick):
            if not args.only or args.only in run.name:
                print(f"== {run.name}: {train(run, config(run, args.runs)):.0f} s", flush=True)
        return 0
    from edge_s2s.export.generate import export_generator_bundle

    results_path = args.docs / ("generation-results.quick.json" if args.quick else "generation-results.json")
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for run in runs(args.quick):
        if args.only and args.only not in run.name:
            continue
        cfg = config(run, args.runs)
        print(f"== {run.name}", flush=True)
        seconds = train(run, cfg)
        test = heldout_metrics(cfg.out_dir)
        val = heldout_metrics(cfg.out_dir, split="val")
        bundle = args.bundles / run.name
        export_generator_bundle(cfg.out_dir, bundle, metrics={"test": test})
        run_cfg = json.loads((Path(cfg.out_dir) / "config.json").read_text())
        entry = {"name": run.name, "data": run.data, "model": run.model, "train": run.train, "note": run.note,
                 "vocab": run_cfg["vocab_size"], "train_examples": run_cfg["examples"]["train"],
                 "test": test, "val": val, "train_seconds_this_call": round(seconds, 1),
                 "parameters": sum(p.numel() for p in load_generator(cfg.out_dir)[0].parameters()),
                 "runtime_check": runtime_check(bundle, cfg),
                 "samples": samples(run, cfg, bundle, args.docs / "img", args.quick)}
        results[run.name] = entry
        print(json.dumps({k: entry[k] for k in ("test", "runtime_check")}, indent=1), flush=True)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, args.docs / ("generation-results.quick.md" if args.quick else "generation-results.md"),
                 args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
