"""Image captioning: pixels in, words out, with the same bundle contract and search loop.

    cap = Captioner.load()                        # the default model shipped in the package
    r = cap.caption(["a.jpg", pil_image, hwc_uint8_array, jpeg_bytes], search=Beam(5))
    r[0].text, r[0].score, r[0].attention         # attention [words, 49]: a 7x7 grid of regions

Preprocessing is `runtime.image` (the function training used), the encoder graph holds
the whole CNN, and the decoder step is run by the same compiled loop as translation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..bundle import Bundle, shipped_bundle
from ..errors import BundleError, InputError, int_option
from ..loop_common import Timings, memory_budget
from ..manifest import wrong_task
from ..media.image import ImageInput, ImageSpec, describe, load_image, to_pixels
from ..results import RawHypothesis, Result, TokenEvent
from ..search import Greedy, SearchConfig
from ..session import graph_errors, thread_policy
from ..text import agree_articles, detokenize
from .seq2seq import Seq2Seq

ERRORS = ("raise", "keep")


def default_model_path() -> Path:
    """Where the default captioner ships inside the package."""
    return shipped_bundle("captioner")


def auto_batch_size() -> int:
    """Images per encoder run when the caller says 0: 16, where throughput stops growing on CPUs
    measured here (bench/bench_caption.py), fewer when this machine's memory is small (the CNN needs
    about 10 MiB of activations an image, and a decode's budget is half the memory)."""
    return int(max(1, min(16, memory_budget() // (64 << 20))))


_ARTICLES = frozenset({"a", "an", "the"})


class Captioner(Seq2Seq):
    """A loaded captioning bundle (manifest task "caption", preprocessing type "image")."""

    def _setup_input(self, pre: dict) -> None:
        if pre.get("type") != "image":
            raise wrong_task(self.bundle.manifest.task, "caption")
        self.spec = ImageSpec.from_manifest(pre)
        grid = self.bundle.manifest.model.get("grid", [7, 7])
        self.grid = (int(grid[0]), int(grid[1]))
        self.label_slots, self._label_memory = self._label_setup(self.bundle.manifest.model.get("label_slots"))
        no_end = self.bundle.manifest.model.get("no_end", [])
        if not isinstance(no_end, list) or not all(isinstance(w, str) for w in no_end):
            raise BundleError(f"manifest model.no_end is {no_end!r}, not a list of words: re-export the bundle")
        self._no_end = frozenset(no_end)
        needs_noun = self.bundle.manifest.model.get("needs_noun", [])
        if not isinstance(needs_noun, list) or not all(isinstance(w, str) for w in needs_noun):
            raise BundleError(f"manifest model.needs_noun is {needs_noun!r}, not a list of words: re-export the bundle")
        self._needs_noun = frozenset(needs_noun)

    def _label_setup(self, info) -> tuple[int, str | None]:
        """(K, the memory tensor holding each image's K label token ids) of a captioner with label
        slots (attention is then over the grid's regions followed by K labels); (0, None) without."""
        if info is None:
            return 0, None
        count = info.get("count") if isinstance(info, dict) else None
        name = info.get("tokens") if isinstance(info, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 32 \
                or name not in self.manifest.memory:
            raise BundleError(f"manifest model.label_slots is {info!r}: it needs 'count' (1-32) and 'tokens' naming a "
                              "memory tensor; re-export the bundle")
        return count, name

    @classmethod
    def load(cls, path: str | Path | None = None, provider: str = "cpu", threads: int = 0, optimization: str = "all",
             loop: str = "compiled") -> Captioner:
        """Load a captioning bundle; no path = the default model shipped with edge-s2s."""
        if path is None:
            path = default_model_path()
            if not (path / "manifest.json").is_file():
                raise BundleError(f"the default captioner is not installed at {path}: reinstall edge-s2s, or pass "
                                  "--bundle with a bundle from `edge-s2s export`")
        return cls(Bundle.load(path, provider=provider, threads=threads, optimization=optimization), loop=loop)

    # --- input ---------------------------------------------------------------------------

    @staticmethod
    def _check_images(images) -> None:
        if not isinstance(images, (list, tuple)):
            raise InputError("caption() takes a list of images (paths, bytes, PIL images or HxWxC uint8 arrays): "
                             "wrap a single image in a list")
        if not images:
            raise InputError("no images given: pass at least one")

    def _one_pixels(self, img: ImageInput, index: int) -> np.ndarray | str:
        """One image's pixels [3, S, S], or its error line (decode and resize release the GIL, so
        worker threads run these side by side and beside the CNN)."""
        try:
            return to_pixels(load_image(img, self.spec), self.spec)
        except InputError as e:
            msg, name = str(e), describe(img, index)
            return msg if name in msg else f"{name}: {msg}"

    def _stack(self, loaded: list[np.ndarray | str]) -> tuple[np.ndarray, list[int], dict[int, str]]:
        ok = [i for i, x in enumerate(loaded) if not isinstance(x, str)]
        errors = {i: x for i, x in enumerate(loaded) if isinstance(x, str)}
        S = self.spec.size
        pix = np.stack([loaded[i] for i in ok]) if ok else np.zeros((0, 3, S, S), np.float32)
        return pix, ok, errors

    def pixels(self, images: list[ImageInput], offset: int = 0) -> tuple[np.ndarray, list[int], dict[int, str]]:
        """(pixels [B_ok, 3, S, S] of the readable images, their indices, {index: error line})."""
        self._check_images(images)
        return self._stack([self._one_pixels(img, offset + i) for i, img in enumerate(images)])

    def encode_pixels(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Run the encoder (the whole CNN + region projection) on [B, 3, S, S] float32 pixels."""
        name = self.manifest.encoder.inputs[0].name
        with graph_errors("encoding images"):
            outs = self.bundle.encoder.run(self._enc_outputs,
                                           {name: np.ascontiguousarray(pixels, dtype=np.float32)})
        return dict(zip(self._enc_outputs, outs))

    def decode_pixels(self, pixels: np.ndarray, search: SearchConfig = Greedy(), max_length: int | None = None,
                      min_length: int = 0, callback: Callable[[TokenEvent], bool | None] | None = None,
                      timings: Timings | None = None) -> list[list[RawHypothesis]]:
        """Encoder + search for one batch of pixels (no text)."""
        t0 = time.perf_counter_ns()
        enc = self.encode_pixels(pixels)
        if timings is not None:
            timings.encoder_ns.append(time.perf_counter_ns() - t0)
        return self.decode_encoded(enc, search, max_length, min_length, callback, timings)

    # --- the API -----------------------------------------------------------------------------

    def caption(self, images: list[ImageInput], search: SearchConfig = Greedy(), max_length: int | None = None,
                min_length: int = 0, batch_size: int = 0, errors: str = "raise",
                callback: Callable[[TokenEvent], bool | None] | None = None,
                timings: Timings | None = None, workers: int = 0,
                on_batch: Callable[[int, list[Result]], None] | None = None) -> list[Result]:
        """Caption every image; one Result per image, in input order.

        errors="raise": an unreadable image raises InputError naming it (nothing is
        captioned); errors="keep": its Result has `error` set and no hypotheses, and the
        other images are still captioned.
        batch_size: images per encoder run (0 = `auto_batch_size()`). workers: threads that decode
        and resize the next batch while the CNN runs this one (0 = as many as the CNN has threads,
        at most 4; 1 = read in the calling thread, nothing overlapped). on_batch(start, results) is
        called after each batch with its first index and its Results (print as they come).
        """
        if errors not in ERRORS:
            raise InputError(f"errors must be 'raise' or 'keep', got {errors!r}")
        batch_size = int_option(batch_size, "batch_size", 0) or auto_batch_size()
        workers = int_option(workers, "workers", 0) or min(4, thread_policy()["intra_op_threads"])
        self._check_call(search, callback, max_length, min_length)
        self._check_images(images)
        results: list[Result | None] = [None] * len(images)
        starts = list(range(0, len(images), batch_size))
        # one image has nothing to overlap with: no pool to start and stop (nor concurrent.futures to
        # import, ~3 ms of `edge-s2s caption photo.jpg`)
        pool = None
        if workers > 1 and len(images) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edge-s2s-images")

        def submit(start: int):
            chunk = images[start : start + batch_size]
            if pool is None:
                return [self._one_pixels(img, start + i) for i, img in enumerate(chunk)]
            return [pool.submit(self._one_pixels, img, start + i) for i, img in enumerate(chunk)]

        try:
            pending = submit(starts[0])
            for k, start in enumerate(starts):
                loaded = [f.result() if pool is not None else f for f in pending]
                if k + 1 < len(starts):  # the next batch is read while this one runs through the CNN
                    pending = submit(starts[k + 1])
                self._caption_batch(loaded, start, results, errors, search, max_length, min_length, callback,
                                    timings)
                if on_batch is not None:
                    on_batch(start, results[start : start + len(loaded)])
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]

    def _caption_batch(self, loaded: list[np.ndarray | str], start: int, results: list, errors: str, search,
                       max_length, min_length, callback, timings) -> None:
        """Encoder + search for one batch of read images; their Results go into `results`."""
        pix, ok, bad = self._stack(loaded)
        if bad and errors == "raise":
            raise InputError(bad[min(bad)])
        for i, msg in bad.items():
            results[start + i] = Result([], error=msg)
        if not ok:
            return
        cb = callback
        if callback is not None:
            def cb(ev: TokenEvent, _ok=ok, _off=start):
                ev.batch_index = _off + _ok[ev.batch_index]
                return callback(ev)
        t0 = time.perf_counter_ns()
        enc = self.encode_pixels(pix)
        if timings is not None:
            timings.encoder_ns.append(time.perf_counter_ns() - t0)
        raws = self.decode_encoded(enc, search, max_length, min_length, cb, timings)
        L = self.grid[0] * self.grid[1] + self.label_slots if self.manifest.attention else 1
        labels = self.labels_of(enc)
        for k, (i, r) in enumerate(zip(ok, raws)):
            results[start + i] = self._result(r, L)
            if labels is not None:
                results[start + i].labels = labels[k]
                self._name_the_noun(results[start + i], labels[k])

    def _name_the_noun(self, res: Result, labels: list[str]) -> None:
        """A caption that names nothing and ends on a colour or size word ("a red", "the big") gets the
        image's most probable label name as its noun ("a red bird"): the label slots are the model's
        nouns (in the manner of the slot filling of Lu et al. 2018). Only the text changes; ids, tokens
        and attention stay what the decoder wrote. Bundles without model.needs_noun are left alone."""
        if not self._needs_noun or not labels:
            return
        for h in res.hypotheses:
            words = h.text.split(" ")
            names_nothing = all(w in self._no_end or w in self._needs_noun or w in _ARTICLES for w in words)
            if words[-1] in self._needs_noun and names_nothing:
                h.text = detokenize(agree_articles([*words, labels[0]]))

    def labels_of(self, enc: dict[str, np.ndarray]) -> list[list[str]] | None:
        """Each image's label-slot names from the encoder outputs (None: the model has no slots)."""
        if not self.label_slots:
            return None
        ids = np.asarray(enc[self._label_memory])
        V = len(self.vocab.tokens)
        if ids.ndim != 2 or ids.shape[1] != self.label_slots or ids.size and (ids.min() < 0 or ids.max() >= V):
            raise BundleError(f"the encoder's {self._label_memory} output is not [images, {self.label_slots}] "
                              "vocabulary ids: the bundle is damaged, re-export it")
        return [[self.vocab.tokens[int(t)] for t in row] for row in ids]

    def _result(self, raws: list[RawHypothesis], src_len: int) -> Result:
        """As for text, and "a"/"an" made to agree with the next word ("an apple", "a unicorn"). The
        step never ends a caption after a word the manifest lists in model.no_end ("a", "of", ...);
        a caption cut at max_length can still stop there, so such trailing words leave the text
        (ids, tokens and attention stay what the decoder wrote)."""
        res = super()._result(raws, src_len)
        for h in res.hypotheses:
            n = len(h.tokens)
            while n and h.tokens[n - 1] in self._no_end:
                n -= 1
            h.text = detokenize(agree_articles(h.tokens[:n]))
        return res
