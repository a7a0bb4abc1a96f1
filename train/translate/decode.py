"""Decode with the PyTorch model: the runtime's reference search loop driven by torch.

Used for validation BLEU during training and for the exporter's golden decodes, so the
PyTorch side of every comparison runs exactly the search the runtime runs.
"""

from __future__ import annotations

import sacrebleu

from ...runtime.reference_loop import decode
from ...runtime.results import RawHypothesis
from ...runtime.search import Greedy, SearchConfig
from ...runtime.subwords import SubwordText
from ...runtime.text import WordText
from .model import Translator

Text = WordText | SubwordText  # the run's tokenizer (data.Dataset.text, subword_train.run_text)


def source_ids(source: str, text: Text) -> list[int]:
    """Token ids of one source sentence with the end token appended (as the runtime does)."""
    return text.ids(source) + [text.vocab.eos_id]


def decode_ids(model: Translator, ids: list[list[int]], search: SearchConfig = Greedy(), max_length: int = 50,
               batch_size: int = 64) -> list[list[RawHypothesis]]:
    """Search over batches of source id lists with the PyTorch model; hypotheses per input."""
    from ..core.torch_step import decode_manifest, pad_ids, torch_encode_fn, torch_step_fn

    was_training = model.training
    model.eval()
    try:
        manifest = decode_manifest(model, max_length)
        enc_fn, step_fn = torch_encode_fn(model), torch_step_fn(model)
        out: list[list[RawHypothesis]] = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            src, lengths = pad_ids(chunk)
            out.extend(decode(manifest, enc_fn(src, lengths), step_fn, search, max_length=max_length))
        return out
    finally:
        model.train(was_training)


def translate(model: Translator, text: Text, sources: list[str], search: SearchConfig = Greedy(),
              max_length: int = 50, batch_size: int = 64) -> list[str]:
    """Best hypothesis of each source as detokenized text."""
    hyps = decode_ids(model, [source_ids(s, text) for s in sources], search, max_length, batch_size)
    return [text.decode(h[0].ids) if h else "" for h in hyps]


def bleu(hypotheses: list[str], references: list[str], text: Text) -> float:
    """Corpus BLEU (sacrebleu, 13a) of detokenized hypotheses against references, the references
    normalised as the tokenizer prints text (word runs: its casing and spacing) so conventions match."""
    refs = [text.reference(r) for r in references]
    return float(sacrebleu.corpus_bleu(hypotheses, [refs]).score)
