"""What every trainable decoder shares: the step graph's names, initial states, `step`.

A model mixes in `DecoderContract` and provides `memory_names`, `state_specs()`,
`attention` (bool) and `step_core(token, row, batch_of_row, memory, states)` returning
(logprobs [N, V], attention [N, L] or None, new states by name). The mixin turns that
into the exact input/output lists of `decoder_step.onnx` (runtime/manifest.py), so the
translator, the captioner and later models export through the same code.
"""

from __future__ import annotations

import torch
from torch import nn

from ...runtime import manifest as mf


class _TopK(torch.autograd.Function):
    """TopK with k read from a tensor, so the exported graph's K stays an input."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: torch.Tensor):
        return torch.topk(x, int(k.reshape(-1)[0]), dim=1, largest=True, sorted=True)

    @staticmethod
    def symbolic(g, x, k):
        return g.op("TopK", x, k, axis_i=1, largest_i=1, sorted_i=1, outputs=2)


def topk(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, ids) of the k largest entries of each row of x [N, V]; k int64 [1]."""
    return _TopK.apply(x, k)


class DecoderContract:
    """Mixin: bundle-contract names and the `step` wrapper around a model's `step_core`."""

    memory_length_from: str = "memory"  # the memory tensor whose axis 1 is the length L

    def encoder_output_names(self) -> list[str]:
        return [*self.memory_names, *(mf.state_input(s.name) for s in self.state_specs() if s.init == "encoder")]

    def step_input_names(self) -> list[str]:
        return [mf.TOKEN, mf.ROW, mf.BATCH_OF_ROW, mf.TOPK, *self.memory_names,
                *(mf.state_input(s.name) for s in self.state_specs())]

    def step_output_names(self) -> list[str]:
        names = [mf.LOGPROBS, mf.TOPK_LOGPROBS, mf.TOPK_IDS]
        if self.attention:
            names.append(mf.ATTENTION)
        return names + [mf.state_output(s.name) for s in self.state_specs()]

    def initial_states(self, enc: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """state name -> [B, ...] before step 0, as the runtime builds it from the manifest."""
        first = enc[self.encoder_output_names()[0]]
        B, device = first.size(0), first.device
        out = {}
        for s in self.state_specs():
            if s.init == "encoder":
                out[s.name] = enc[mf.state_input(s.name)]
            else:
                dims = [B if d == "N" else d for d in s.shape]
                dtype = getattr(torch, s.dtype)
                out[s.name] = torch.full(dims, float(s.init), dtype=dtype, device=device)
        return out

    def decode_logprobs(self, logprobs: torch.Tensor, token: torch.Tensor | None = None) -> torch.Tensor:
        """Hook: what decoding (and the exported step) sees instead of the training log-probs;
        `token` is each row's previous token (the step's input)."""
        return logprobs

    def step(self, token, row, batch_of_row, topk_k, *tensors) -> dict[str, torch.Tensor]:
        """The step graph: inputs in `step_input_names()` order after topk, outputs by name."""
        n_mem = len(self.memory_names)
        memory = dict(zip(self.memory_names, tensors[:n_mem]))
        states = {s.name: t for s, t in zip(self.state_specs(), tensors[n_mem:])}
        logprobs, alpha, new = self.step_core(token, row, batch_of_row, memory, states)
        logprobs = self.decode_logprobs(logprobs, token)
        top_lp, top_ids = topk(logprobs, topk_k)
        out = {mf.LOGPROBS: logprobs, mf.TOPK_LOGPROBS: top_lp, mf.TOPK_IDS: top_ids}
        if self.attention:
            out[mf.ATTENTION] = alpha
        for s in self.state_specs():
            out[mf.state_output(s.name)] = new[s.name]
        return out


class StepGraph(nn.Module):
    """`step` with positional inputs/outputs in manifest order (what torch.onnx.export traces)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, token, row, batch_of_row, topk_k, *tensors):
        out = self.model.step(token, row, batch_of_row, topk_k, *tensors)
        return tuple(out[n] for n in self.model.step_output_names())


class EncoderGraph(nn.Module):
    """`encode` with positional outputs in manifest order (what torch.onnx.export traces)."""

    def __init__(self, model: DecoderContract):
        super().__init__()
        self.model = model

    def forward(self, src, src_lengths):
        out = self.model.encode(src, src_lengths)
        return tuple(out[n] for n in self.model.encoder_output_names())
