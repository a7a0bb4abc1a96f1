"""Decoder-only generation: text one character or word at a time, images one pixel at a time.

    lm = Generator.load("bundles/kjv-char")
    lm.generate(["And God said"], search=Sample(temperature=0.8, top_p=0.9, seed=7))[0].text
    for ev in lm.stream("And God said", search=Sample(seed=7)):
        print(ev.token, end="", flush=True)

    px = Generator.load("bundles/fashion")
    images = px.sample_images(16, condition="Sneaker", search=Sample(seed=1))   # [16, 28, 28] levels
    halves = px.complete(test_images, rows=14)                                   # top rows forced

The bundle's encoder turns a condition id (a class, or 0 for an unconditional model) into
the initial states; the prompt, or the top rows of an image, is a forced prefix of the
search loop (`prefix=`), which also gives `score()`: the log-likelihood of a whole
sequence through the same graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import EdgeS2SError, InputError, int_option
from ..loop_common import Timings
from ..manifest import wrong_task
from ..results import Hypothesis, RawHypothesis, Result, TokenEvent
from ..search import Beam, Greedy, Sample, SearchConfig
from ..session import graph_errors
from ..text import join_units, split_units
from .seq2seq import Seq2Seq, offset_callback, stream_events

CONDITION = "condition"


class Generator(Seq2Seq):
    """A loaded generator bundle (manifest task "generate")."""

    def _setup_input(self, pre: dict) -> None:
        if pre.get("type") != "generate":
            raise wrong_task(self.bundle.manifest.task, "generate")
        self.unit: str = pre.get("unit", "char")
        self.conditions: list[str] | None = pre.get("conditions")
        img = pre.get("image") or {}
        self.height, self.width, self.levels = int(img.get("height", 0)), int(img.get("width", 0)), int(img.get("levels", 0))
        self._lowercase = bool(pre.get("lowercase", False))

    @property
    def is_image(self) -> bool:
        return self.unit == "pixel"

    # --- conditions ----------------------------------------------------------------------

    def condition_id(self, condition: int | str | None) -> int:
        """A class id from an id or a class name (case-insensitive); 0 for unconditional models."""
        if not self.conditions:
            if condition is not None:
                raise InputError("this model is unconditional: drop the condition (--condition)")
            return 0
        if condition is None:
            raise InputError(f"this model needs a condition: one of {self._classes()}")
        if isinstance(condition, str) and condition.strip().lstrip("-").isdigit():
            condition = int(condition)
        if isinstance(condition, (int, np.integer)) and not isinstance(condition, bool):
            if 0 <= int(condition) < len(self.conditions):
                return int(condition)
            raise InputError(f"unknown condition {condition}: use an id 0..{len(self.conditions) - 1} or a name: "
                             f"{self._classes()}")
        if isinstance(condition, str):
            lower = [c.lower() for c in self.conditions]
            if condition.strip().lower() in lower:
                return lower.index(condition.strip().lower())
        raise InputError(f"unknown condition {condition!r}: use one of {self._classes()}")

    def _classes(self) -> str:
        return ", ".join(f"{i}={c}" for i, c in enumerate(self.conditions or []))

    def encode_conditions(self, conditions: list[int]) -> dict[str, np.ndarray]:
        """Run the encoder on condition ids [B]; returns the initial states by name."""
        if not conditions:
            raise InputError("nothing to generate: ask for at least one sequence")
        feeds = {CONDITION: np.asarray(conditions, dtype=np.int64)}
        if self._enc_inputs != [CONDITION]:
            raise EdgeS2SError(f"encoder inputs {self._enc_inputs} are not a generator's: re-export the bundle")
        with graph_errors("encoding the condition"):
            outs = self.bundle.encoder.run(self._enc_outputs, feeds)
        return dict(zip(self._enc_outputs, outs))

    # --- text ------------------------------------------------------------------------------

    def prompt_ids(self, prompt: str) -> list[int]:
        """A text prompt as ids; characters (or words) the model never saw are an InputError."""
        if self.is_image:
            raise InputError("this is an image model: it takes no text prompt (use --complete for a partial image)")
        if not isinstance(prompt, str):
            raise InputError(f"a prompt is text, got {type(prompt).__name__}")
        units = split_units(prompt, self.unit, self._lowercase)
        unknown = sorted({u for u in units if u not in self.vocab.index or self.vocab.index[u] < 4})
        if unknown:
            what = "characters" if self.unit == "char" else "words"
            shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise InputError(f"the prompt has {what} this model never saw: {shown}; remove or replace them "
                             f"(it knows {len(self.vocab) - 4} {what})")
        return [self.vocab.index[u] for u in units]

    def _check_prefix_length(self, n: int, max_length: int | None) -> int:
        ml = self.manifest.max_length if max_length is None else int(max_length)
        if n >= ml:
            raise InputError(f"the prompt is {n} tokens long, but this model generates at most {ml} "
                             f"(prompt included): shorten the prompt or raise --max-length")
        return ml

    def generate(self, prompts: list[str] | None = None, n: int = 1, condition: int | str | None = None,
                 search: SearchConfig = Sample(), max_length: int | None = None, min_length: int = 0,
                 include_prompt: bool = True, callback: Callable[[TokenEvent], bool | None] | None = None,
                 timings: Timings | None = None, batch_size: int = 64) -> list[Result]:
        """`n` continuations of every prompt (None = from nothing); one Result each, prompt-major.

        Each row draws its own tokens (one uniform per row and step), so the n samples of a
        prompt differ; the same seed (and batch_size) gives the same samples. callback's
        batch_index is the index into the returned list.
        """
        int_option(batch_size, "batch_size", 1)
        if isinstance(prompts, str):
            raise InputError("generate() takes a list of prompts: wrap the prompt in a list")
        int_option(n, "n", 1, what=" (how many sequences to generate)")
        self._check_call(search, callback, max_length, min_length)
        prompts = [""] if prompts is None else list(prompts)
        if not prompts:
            raise InputError("no prompts given: pass at least one (an empty string generates from nothing)")
        ids = [self.prompt_ids(p) for p in prompts]
        for x in ids:
            self._check_prefix_length(len(x), max_length)
        cond = self.condition_id(condition)
        prefixes = [x for x in ids for _ in range(n)]
        raws: list[list[RawHypothesis]] = []
        for start in range(0, len(prefixes), batch_size):
            chunk = prefixes[start : start + batch_size]
            cb = offset_callback(callback, start)
            raws += self.decode_encoded(self.encode_conditions([cond] * len(chunk)), search, max_length, min_length,
                                        cb, timings, prefix=chunk)
        return [self._text_result(r, len(p) if not include_prompt else 0) for r, p in zip(raws, prefixes)]

    def _text_result(self, raws: list[RawHypothesis], skip: int) -> Result:
        hyps = []
        for r in raws:
            ids = list(r.ids)[skip:]
            toks = self.vocab.decode(ids)
            hyps.append(Hypothesis(ids=ids, tokens=toks, text=join_units(toks, self.unit), score=float(r.score),
                                   log_prob=float(r.log_prob), token_log_probs=list(r.token_log_probs)[skip:]))
        return Result(hyps)

    def stream(self, prompt: str = "", search: SearchConfig = Sample(), max_length: int | None = None,
               min_length: int = 0, condition: int | str | None = None) -> Iterator[TokenEvent]:
        """Yield each generated token of one prompt as soon as the loop produces it.

        The prompt's own (forced) tokens and the end token are not yielded; the last event has
        is_last=True (finished=True when the end token followed it). Closing the iterator stops the decode.
        """
        if isinstance(search, Beam):
            raise InputError("beam search cannot stream tokens (hypotheses change until the end): use Greedy() or Sample()")
        self._check_call(search, None, max_length, min_length)
        ids = self.prompt_ids(prompt)
        self._check_prefix_length(len(ids), max_length)
        enc = self.encode_conditions([self.condition_id(condition)])
        return stream_events(
            lambda on_token: self.decode_encoded(enc, search, max_length, min_length, on_token, prefix=[ids]),
            self.vocab.eos_id, keep=lambda ev: not ev.forced)

    # --- images ------------------------------------------------------------------------------

    def _need_image(self) -> None:
        if not self.is_image:
            raise InputError("this is a text model: use generate() / a --prompt, not image sampling")

    def _image_ids(self, images: np.ndarray, rows: int) -> list[list[int]]:
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (self.height, self.width):
            raise InputError(f"images must be [n, {self.height}, {self.width}] pixel levels, got shape {images.shape}")
        if images.size and (images.min() < 0 or images.max() >= self.levels):
            raise InputError(f"pixel levels must be in 0..{self.levels - 1}, got {images.min()}..{images.max()}: "
                             "quantise the image first (Generator.quantise)")
        if not 0 <= rows <= self.height:
            raise InputError(f"rows must be between 0 and the image height {self.height}, got {rows}")
        flat = images.reshape(len(images), -1)[:, : rows * self.width].astype(np.int64) + 4
        return flat.tolist()

    def _images(self, raws: list[list[RawHypothesis]]) -> np.ndarray:
        out = np.zeros((len(raws), self.height, self.width), np.uint8)
        for i, r in enumerate(raws):
            ids = np.asarray(r[0].ids[: self.height * self.width], np.int64) - 4
            out[i].reshape(-1)[: len(ids)] = np.clip(ids, 0, self.levels - 1)
        return out

    def sample_images(self, n: int, condition: int | str | None = None, search: SearchConfig = Sample(),
                      batch_size: int = 64) -> np.ndarray:
        """n images [n, H, W] of pixel levels 0..levels-1, one pixel at a time in raster order."""
        self._need_image()
        int_option(n, "n", 1, what=" (how many images to generate)")
        return self.complete(np.zeros((n, self.height, self.width), np.uint8), 0, condition, search, batch_size)

    def complete(self, images: np.ndarray, rows: int, condition: int | str | None = None,
                 search: SearchConfig = Sample(), batch_size: int = 64) -> np.ndarray:
        """Keep the top `rows` rows of each image (forced prefix) and generate the rest."""
        self._need_image()
        prefixes = self._image_ids(images, rows)
        cond = self.condition_id(condition)
        out = []
        for s in range(0, len(prefixes), batch_size):
            chunk = prefixes[s : s + batch_size]
            enc = self.encode_conditions([cond] * len(chunk))
            out.append(self._images(self.decode_encoded(enc, search, self.height * self.width, prefix=chunk)))
        return np.concatenate(out)

    def quantise(self, gray: np.ndarray) -> np.ndarray:
        """uint8 gray 0..255 [.., H, W] -> pixel levels, as training quantised its images."""
        g = np.asarray(gray, dtype=np.float64)
        return np.minimum((g / 256.0 * self.levels).astype(np.int64), self.levels - 1).astype(np.uint8)

    # --- likelihood ---------------------------------------------------------------------------

    def score(self, items: list, condition: int | str | None = None) -> list[float]:
        """Log-likelihood (nats) of each text (end token included) or image [H, W] of levels."""
        if not isinstance(items, (list, tuple)) or not items:
            raise InputError("score() takes a non-empty list of texts or images")
        cond = self.condition_id(condition)
        if self.is_image:
            prefixes = self._image_ids(np.stack([np.asarray(x) for x in items]), self.height)
            ml = self.height * self.width
        else:
            prefixes = [self.prompt_ids(t) + [self.vocab.eos_id] for t in items]
            ml = max(len(p) for p in prefixes)
        raws = self.decode_encoded(self.encode_conditions([cond] * len(prefixes)), _SCORE, ml, prefix=prefixes)
        return [float(r[0].log_prob) for r in raws]


_SCORE = Greedy()  # any search would do: every token is forced
