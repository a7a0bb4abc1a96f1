"""Score a captioning bundle on a held-out split, through the runtime (what users run).

BLEU-1..4, METEOR (when Java is present) and CIDEr-D from pycocoevalcap
(train/caption/metrics.py) on the hypotheses the ONNX Runtime search loop produces.
"""

from __future__ import annotations

import time
from pathlib import Path

from ...runtime.search import SearchConfig
from ...runtime.tasks.captioner import Captioner
from .data import CaptionItem, load_captions
from .metrics import caption_scores


def items_of_split(path: str | Path, images: str | Path, split: str = "test") -> list[CaptionItem]:
    """The items of one split of a Karpathy file (or every item of a COCO file)."""
    items = load_captions(path, images, split=split)
    return [i for i in items if i.split == split]


def evaluate_captioner(model: Captioner, items: list[CaptionItem], search: SearchConfig, batch_size: int = 16,
                       meteor: bool = True) -> tuple[dict[str, float], list[str]]:
    """(scores, one caption per item): scores has the metrics plus images and seconds."""
    t0 = time.perf_counter()
    results = model.caption([i.image for i in items], search=search, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    hyps = [r.text for r in results]
    scores = caption_scores({str(k): it.captions for k, it in enumerate(items)},
                            {str(k): h for k, h in enumerate(hyps)}, meteor=meteor)
    scores.update(images=len(items), seconds=round(seconds, 2))
    return scores, hyps
