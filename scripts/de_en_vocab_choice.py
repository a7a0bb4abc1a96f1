#!/usr/bin/env python3
"""Which subword vocabulary for German->English: SentencePiece unigram vs BPE at 4k / 8k / 16k pieces,
learnt from the training text exactly as `train translate --tokenizer sentencepiece` learns it, measured
on the VALIDATION pairs (never the test split): pieces per word (longer sequences cost decoder steps and
make attention's job harder), the share of words cut into 3 or more pieces, and the `<unk>` rate.

    python scripts/de_en_vocab_choice.py --data data/de-en-big       # ~3 min on one core

This is a tokenizer-level proxy: training a translator per vocabulary to compare BLEU did not fit the
2-core budget. Writes de-en-vocab-choice.md (runs/results/, docs/ with --write-docs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from results_out import add_write_docs, results_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "data/de-en-big")
    ap.add_argument("--sizes", default="4000,8000,16000")
    ap.add_argument("--types", default="unigram,bpe")
    add_write_docs(ap)
    args = ap.parse_args()

    from edge_s2s.runtime.subwords import SubwordText
    from edge_s2s.runtime.text import Vocab
    from edge_s2s.train.translate.subword_train import SubwordOptions, learn_subwords, vocab_of

    def pairs(name: str) -> list[tuple[str, str]]:
        rows = (ln.split("\t") for ln in (args.data / name).read_text(encoding="utf-8").splitlines() if ln)
        return [(r[0], r[1]) for r in rows]

    train, valid = pairs("train.tsv"), pairs("valid.tsv")
    sentences = [s for p in train for s in p]
    rows = []
    for kind in args.types.split(","):
        for size in (int(x) for x in args.sizes.split(",")):
            t0 = time.time()
            model = learn_subwords(sentences, SubwordOptions(vocab_size=size, model_type=kind))
            text = SubwordText(model, vocab_of(model))
            row = {"type": kind, "size": size, "learn_seconds": round(time.time() - t0, 1)}
            for side, idx in (("German", 0), ("English", 1)):
                words = pieces = long_words = unk = 0
                for p in valid:
                    for w in p[idx].split():
                        n = len(text.pieces(w))
                        words += 1
                        long_words += n >= 3
                    ids = text.ids(p[idx])
                    pieces += len(ids)
                    unk += sum(i == Vocab.unk_id for i in ids)
                row[side] = {"pieces_per_word": round(pieces / words, 3), "words_in_3plus_pieces": round(long_words / words, 4),
                             "unk_rate": round(unk / max(pieces, 1), 5)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    head = ("| model | pieces | German pieces/word | German words in 3+ pieces | English pieces/word | "
            "English words in 3+ pieces | `<unk>` rate (both) | learn s |\n|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['type']} | {r['size']:,} | {r['German']['pieces_per_word']:.2f} | "
        f"{100 * r['German']['words_in_3plus_pieces']:.1f}% | {r['English']['pieces_per_word']:.2f} | "
        f"{100 * r['English']['words_in_3plus_pieces']:.1f}% | "
        f"{100 * max(r['German']['unk_rate'], r['English']['unk_rate']):.3f}% | {r['learn_seconds']} |\n" for r in rows)
    text = (f"Learnt from {args.data / 'train.tsv'} ({len(train):,} pairs, both sides), measured on the "
            f"{len(valid)} validation pairs (the test split is not read).\n\n" + head + body)
    print(text)
    out = results_dir(args) / "de-en-vocab-choice.md"
    out.write_text("# Subword vocabulary for German->English (scripts/de_en_vocab_choice.py)\n\n" + text,
                   encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
