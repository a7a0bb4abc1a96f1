"""Per-stage latency of a bundle on this device: what `edge-s2s profile` prints.

Stages of one `generate` call: preprocess (tokenize + ids; for a captioner: image decode,
resize, normalise; for a transcriber: read, resample, log-mel), encoder (ORT), decoder step
(each ORT step run), search bookkeeping (the loop's time outside the step graph) and
postprocess (ids -> text, attention trimming). Percentiles over repeated runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..loop_common import Timings
from ..search import Beam, Greedy, SearchConfig
from ..tasks.seq2seq import Seq2Seq

STAGES = ("preprocess", "encoder", "decoder step", "search bookkeeping", "postprocess", "total")


@dataclass
class StageSamples:
    """Raw samples in nanoseconds per stage; 'decoder step' has one sample per step run."""

    samples: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in STAGES})
    tokens: int = 0
    decodes: int = 0

    def percentiles(self, q: tuple[int, ...] = (50, 90, 99)) -> dict[str, list[float]]:
        """Stage -> percentiles in milliseconds."""
        return {s: [float(np.percentile(v, p)) / 1e6 for p in q] if v else [float("nan")] * len(q)
                for s, v in self.samples.items()}


def profile_generate(model: Seq2Seq, sources: list[str], search: SearchConfig, runs: int, warmup: int = 2) -> StageSamples:
    """Decode `sources` as one batch `runs` times and record every stage."""
    out = StageSamples()
    captioner = hasattr(model, "decode_pixels")  # images: preprocess = decode + resize + normalise
    transcriber = hasattr(model, "decode_features")  # audio: preprocess = read + resample + log-mel
    if hasattr(model, "encode_conditions"):
        return _profile_generator(model, sources, search, runs, warmup, out)
    for i in range(warmup + runs):
        t0 = time.perf_counter_ns()
        if captioner:
            batch, bad = model.pixels(sources)[::2]
            if bad:
                raise InputError(bad[min(bad)])
            lengths = [model.grid[0] * model.grid[1]] * len(sources)
        elif transcriber:
            frames = [model.log_mel(s, k) for k, s in enumerate(sources)]
            lengths = [model.memory_length(f.shape[0]) for f in frames]
            feats = np.zeros((len(frames), max(f.shape[0] for f in frames), frames[0].shape[1]), np.float32)
            for b, f in enumerate(frames):
                feats[b, : f.shape[0]] = f
        else:
            batch = model.encode_sources(sources)
            lengths = [len(x) for x in batch]
        t1 = time.perf_counter_ns()
        timings = Timings()
        if captioner:
            raws = model.decode_pixels(batch, search, timings=timings)
        elif transcriber:
            raws = model.decode_features(feats, np.array([f.shape[0] for f in frames]), search, timings=timings)
        else:
            raws = model.decode_ids(batch, search, timings=timings)
        t2 = time.perf_counter_ns()
        results = [model._result(r, n) for r, n in zip(raws, lengths)]
        t3 = time.perf_counter_ns()
        if i >= warmup:
            _record(out, (t0, t1, t2, t3), timings, sum(len(r.hypotheses[0].ids) + 1 for r in results))
    return out


def _record(out: StageSamples, marks: tuple[int, int, int, int], timings: Timings, tokens: int) -> None:
    """One timed run: marks = (start, preprocessed, decoded, postprocessed) in ns."""
    t0, t1, t2, t3 = marks
    s = out.samples
    s["preprocess"].append(t1 - t0)
    s["encoder"].append(sum(timings.encoder_ns))
    s["decoder step"].extend(timings.step_ns)
    s["search bookkeeping"].append(timings.loop_overhead_ns)
    s["postprocess"].append(t3 - t2)
    s["total"].append(t3 - t0)
    out.tokens += tokens
    out.decodes += 1


def _profile_generator(model, sources: list[str], search: SearchConfig, runs: int, warmup: int,
                       out: StageSamples) -> StageSamples:
    """Generators: sources are prompts (text models) or condition names/ids (image models)."""
    perf = time.perf_counter_ns
    for i in range(warmup + runs):
        t0 = perf()
        if model.is_image:
            conds = [model.condition_id(s if s else None) for s in sources]
            prefixes = [[] for _ in sources]
        else:
            conds = [model.condition_id(None)] * len(sources)
            prefixes = [model.prompt_ids(s) for s in sources]
        t1 = perf()
        timings = Timings()
        enc = model.encode_conditions(conds)
        timings.encoder_ns.append(perf() - t1)
        raws = model.decode_encoded(enc, search, timings=timings, prefix=prefixes)
        t2 = perf()
        if model.is_image:
            model._images(raws)
        else:
            [model._text_result(r, 0) for r in raws]
        t3 = perf()
        if i >= warmup:
            _record(out, (t0, t1, t2, t3), timings, sum(len(r[0].ids) + 1 for r in raws))
    return out


def search_for(beam: int) -> SearchConfig:
    return Greedy() if beam <= 1 else Beam(size=beam)
