"""numpy-in / numpy-out wrappers around the PyTorch model, shaped like the ONNX graphs.

`runtime.reference_loop.decode(manifest, torch_encode_fn(model)(src, lengths),
torch_step_fn(model), search)` is "the PyTorch reference search": the same loop the runtime
checks itself against, driven by the trained PyTorch computation instead of ONNX Runtime.
The benchmark uses the same wrappers to time PyTorch eager with the bundle's weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...runtime import manifest as mf
from ...runtime.manifest import GraphSpec, Manifest, TokensSpec
from .step_contract import DecoderContract

StepFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _t(x: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def torch_step_fn(model: DecoderContract) -> StepFn:
    """feeds (step-graph inputs by name) -> step-graph outputs by name, with the torch model."""
    model.eval()
    names = model.step_input_names()
    device = next(model.parameters()).device

    def step(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            args = [_t(feeds[n], device) for n in names]
            out = model.step(*args)
        return {k: v.detach().cpu().numpy() for k, v in out.items()}

    return step


def torch_encode_fn(model: DecoderContract) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """(src int64 [B, S], src_lengths int64 [B]) -> encoder outputs by name, as numpy."""
    model.eval()
    names = model.encoder_output_names()
    device = next(model.parameters()).device

    def encode(src: np.ndarray, src_lengths: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = model.encode(_t(src.astype(np.int64), device), _t(src_lengths.astype(np.int64), device))
        return {n: out[n].detach().cpu().numpy() for n in names}

    return encode


def pad_ids(ids: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Id lists -> (src [B, S] padded, src_lengths [B]), as the runtime's Seq2Seq.encode does."""
    B, S = len(ids), max(len(x) for x in ids)
    src = np.full((B, S), pad_id, dtype=np.int64)
    for i, x in enumerate(ids):
        src[i, : len(x)] = x
    return src, np.array([len(x) for x in ids], dtype=np.int64)


def decode_manifest(model: DecoderContract, max_length: int) -> Manifest:
    """A manifest with what the search loop reads (tokens, memory, state, max_length).

    Lets `reference_loop.decode` run the PyTorch model before any graph is exported
    (validation BLEU during training); the graph specs are empty.
    """
    return Manifest(
        task="translate",
        tokens=TokensSpec(size=model.vocab_size),
        preprocessing={"type": "text", "lowercase": True},
        max_length=max_length,
        encoder=GraphSpec(mf.ENCODER_FILE, [], []),
        decoder_step=GraphSpec(mf.STEP_FILE, [], []),
        memory=model.memory_names,
        state=model.state_specs(),
        attention=model.attention,
        memory_length_from=model.memory_length_from,
    )
