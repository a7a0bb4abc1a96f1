"""The public API: load a bundle once, then generate, in the style of CTranslate2.

    model = Seq2Seq.load("bundles/de-en")
    model.generate(["ein kleiner test ."], search=Beam(5, n_best=2))[0].text
    for ev in model.stream("ein kleiner test ."):
        print(ev.token, end=" ", flush=True)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..bundle import Bundle, shipped_bundle
from ..errors import BundleError, EdgeS2SError, InputError, int_option
from ..loop_common import Timings, check_decode
from ..manifest import MAX_LENGTH_CEILING, Manifest, wrong_task
from ..results import Hypothesis, RawHypothesis, Result, TokenEvent
from ..search import Beam, Greedy, Sample, SearchConfig
from ..session import graph_errors
from ..subwords import SubwordText, bundle_text
from ..text import Vocab, WordText

LOOPS = ("compiled", "reference")


class Seq2Seq:
    """A loaded bundle ready to decode (text in, text out)."""

    def __init__(self, bundle: Bundle, loop: str = "compiled"):
        if loop not in LOOPS:
            raise EdgeS2SError(f"unknown loop {loop!r}: use 'compiled' or 'reference'")
        self.bundle = bundle
        self.loop = loop
        # how ids become text; a text bundle may bring its own (SentencePiece) in _setup_input
        self.text: WordText | SubwordText = WordText(bundle.vocab)
        self._setup_input(bundle.manifest.preprocessing)
        self._enc_outputs = [t.name for t in bundle.manifest.encoder.outputs]
        self._enc_inputs = [t.name for t in bundle.manifest.encoder.inputs]
        self._step_outputs = [t.name for t in bundle.manifest.decoder_step.outputs]
        self._decode = None
        if loop == "compiled":
            from .. import _loop

            self._decode = _loop.decode

    def _setup_input(self, pre: dict) -> None:
        """Read the manifest's preprocessing; subclasses for other inputs override this."""
        if pre.get("type", "text") != "text":
            raise wrong_task(self.bundle.manifest.task, "translate")
        # the word tokenizer, or the bundle's SentencePiece model (runtime/subwords.py)
        self.text = bundle_text(self.bundle.path, pre, self.bundle.manifest.files, self.bundle.vocab)
        self._max_source = int(pre.get("max_source_length", 10**9))

    @classmethod
    def load(cls, path: str | Path | None = None, provider: str = "cpu", threads: int = 0, optimization: str = "all",
             loop: str = "compiled") -> Seq2Seq:
        """Load and check a bundle; no path = the German->English translator shipped with edge-s2s.
        provider "cpu", "cuda" or "auto"; threads 0 = the thread policy (min(cores, 4), no spinning:
        runtime/session.py)."""
        if path is None:
            path = shipped_bundle("translator")
            if not (path / "manifest.json").is_file():
                raise BundleError(f"the default translator is not installed at {path}: reinstall edge-s2s, or pass "
                                  "--bundle with a bundle from `edge-s2s export`")
        return cls(Bundle.load(path, provider=provider, threads=threads, optimization=optimization), loop=loop)

    @property
    def manifest(self) -> Manifest:
        return self.bundle.manifest

    @property
    def vocab(self) -> Vocab:
        return self.bundle.vocab

    @property
    def providers(self) -> list[str]:
        """The execution providers the sessions really use."""
        return self.bundle.providers

    # --- input ---------------------------------------------------------------------

    def encode_sources(self, sources: list[str]) -> list[list[int]]:
        """Token ids (end token appended) of each source; InputError naming the bad one."""
        if isinstance(sources, str):
            raise InputError("generate() takes a list of strings, got one string: wrap it in a list")
        out = []
        for i, s in enumerate(sources):
            if not isinstance(s, str):
                raise InputError(f"input {i + 1} is a {type(s).__name__}, not text: pass strings")
            try:
                out.append(self.text.encode_source(s, self._max_source))
            except InputError as e:
                raise InputError(f"input {i + 1}: {e}") from None
        return out

    def encode(self, ids: list[list[int]]) -> dict[str, np.ndarray]:
        """Run the encoder on a batch of id lists; returns its outputs by name."""
        B, S = len(ids), max(len(x) for x in ids)
        src = np.full((B, S), self.manifest.tokens.pad_id, dtype=np.int64)
        for i, x in enumerate(ids):
            src[i, : len(x)] = x
        feeds = {"src": src, "src_lengths": np.array([len(x) for x in ids], dtype=np.int64)}
        missing = [n for n in self._enc_inputs if n not in feeds]
        if missing:
            raise EdgeS2SError(f"encoder inputs {missing} are not text inputs: this bundle needs a newer runtime")
        with graph_errors("encoding"):
            outs = self.bundle.encoder.run(self._enc_outputs, {n: feeds[n] for n in self._enc_inputs})
        return dict(zip(self._enc_outputs, outs))

    # --- decoding ------------------------------------------------------------------

    def decode_ids(self, ids: list[list[int]], search: SearchConfig = Greedy(), max_length: int | None = None,
                   min_length: int = 0, callback: Callable[[TokenEvent], bool | None] | None = None,
                   timings: Timings | None = None) -> list[list[RawHypothesis]]:
        """One batch of source ids through encoder and search loop (no text)."""
        import time

        t0 = time.perf_counter_ns()
        enc = self.encode(ids)
        if timings is not None:
            timings.encoder_ns.append(time.perf_counter_ns() - t0)
        return self.decode_encoded(enc, search, max_length, min_length, callback, timings)

    def decode_encoded(self, enc: dict[str, np.ndarray], search: SearchConfig = Greedy(), max_length: int | None = None,
                       min_length: int = 0, callback: Callable[[TokenEvent], bool | None] | None = None,
                       timings: Timings | None = None, prefix: list[list[int]] | None = None
                       ) -> list[list[RawHypothesis]]:
        """The search loop over encoder outputs `enc` (any input kind).

        prefix: per item, ids forced before the search takes over (see reference_loop).
        """
        max_length = check_decode(self.manifest, enc, search, max_length)
        kw = dict(max_length=max_length, min_length=min_length, callback=callback, tokens=self.vocab.tokens,
                  timings=timings)
        if prefix is not None:
            kw["prefix"] = prefix
        with graph_errors("decoding"):
            if self._decode is not None:
                return self._decode(self.bundle.step, self.manifest, enc, search, device=self.bundle.device, **kw)
            from ..reference_loop import decode, ort_step

            return decode(self.manifest, enc, ort_step(self.bundle.step, self._step_outputs), search, **kw)

    def _check_call(self, search, callback, max_length, min_length) -> None:
        if not isinstance(search, (Greedy, Beam, Sample)):
            raise InputError(f"search must be Greedy(), Beam(...) or Sample(...), got {type(search).__name__}")
        if isinstance(search, Beam) and callback is not None:
            raise InputError("beam search cannot stream tokens (hypotheses change until the end): use Greedy() or Sample()")
        ml = self.manifest.max_length if max_length is None else max_length
        if isinstance(ml, bool) or not isinstance(ml, int) or not 1 <= ml <= MAX_LENGTH_CEILING:
            raise InputError(f"max_length must be an integer from 1 to {MAX_LENGTH_CEILING} (this bundle's default is "
                             f"{self.manifest.max_length}), got {ml!r}")
        if isinstance(min_length, bool) or not isinstance(min_length, int) or not 0 <= min_length <= ml:
            raise InputError(f"min_length must be between 0 and max_length={ml}, got {min_length}")

    def _result(self, raws: list[RawHypothesis], src_len: int) -> Result:
        hyps = []
        for r in raws:
            toks = self.vocab.decode(r.ids)
            att = None if r.attention is None else np.ascontiguousarray(r.attention[:, :src_len])
            hyps.append(Hypothesis(ids=list(r.ids), tokens=toks, text=self.text.decode(r.ids), score=float(r.score),
                                   log_prob=float(r.log_prob), token_log_probs=list(r.token_log_probs), attention=att))
        return Result(hyps)

    def generate(self, sources: list[str], search: SearchConfig = Greedy(), max_length: int | None = None,
                 min_length: int = 0, batch_size: int = 32,
                 callback: Callable[[TokenEvent], bool | None] | None = None,
                 timings: Timings | None = None) -> list[Result]:
        """Decode every source; one Result per source, in input order.

        callback (greedy/sampling only) gets a TokenEvent per token; batch_index is the
        index into `sources`; returning True stops that input.
        """
        int_option(batch_size, "batch_size", 1)
        self._check_call(search, callback, max_length, min_length)
        ids = self.encode_sources(sources)
        results: list[Result] = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            cb = offset_callback(callback, start)
            raws = self.decode_ids(chunk, search, max_length, min_length, cb, timings)
            results.extend(self._result(r, len(x)) for r, x in zip(raws, chunk))
        return results

    def stream(self, source: str, search: SearchConfig = Greedy(), max_length: int | None = None,
               min_length: int = 0) -> Iterator[TokenEvent]:
        """Yield each token of one source as soon as the loop produces it (greedy/sampling).

        The end token is not yielded: the last event has is_last=True, and finished=True when
        the output ended there (not at max_length). Closing the iterator early stops the decode.
        """
        if isinstance(search, Beam):
            raise InputError("beam search cannot stream tokens (hypotheses change until the end): use Greedy() or Sample()")
        self._check_call(search, None, max_length, min_length)
        ids = self.encode_sources([source])
        return stream_events(lambda on_token: self.decode_ids(ids, search, max_length, min_length, on_token),
                             self.vocab.eos_id)


def offset_callback(callback: Callable[[TokenEvent], bool | None] | None, offset: int):
    """`callback` seeing batch indices shifted by `offset` (a later chunk of a batched call)."""
    if callback is None or not offset:
        return callback

    def shifted(ev: TokenEvent):
        ev.batch_index += offset
        return callback(ev)

    return shifted


def stream_events(decode: Callable[[Callable[[TokenEvent], bool]], object], end_id: int,
                  keep: Callable[[TokenEvent], bool] = lambda ev: True) -> Iterator[TokenEvent]:
    """Run `decode(on_token)` in a thread and yield the events `keep` accepts as they come.

    The end token (`end_id`) is never yielded: each event is held until the next one arrives, so
    the one before the end token can be marked is_last and finished (streaming is one step behind
    the loop, a few milliseconds). Closing the iterator early makes on_token return True, which
    stops the decode.
    """
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    done = object()

    def on_token(ev: TokenEvent) -> bool:
        if keep(ev):
            q.put(ev)
        return stop.is_set()

    def work() -> None:
        try:
            decode(on_token)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    thread = threading.Thread(target=work, name="edge-s2s-stream", daemon=True)
    thread.start()
    held: TokenEvent | None = None
    try:
        while True:
            item = q.get()
            if item is done:
                if held is not None:
                    held.is_last = True
                    yield held
                return
            if isinstance(item, BaseException):
                raise item
            if item.id == end_id and not item.forced:
                if held is not None:
                    held.is_last, held.finished = True, True
                    yield held
                held = None
                continue
            if held is not None:
                yield held
            held = item
    finally:
        stop.set()
        thread.join()


Translator = Seq2Seq
