"""Show, Attend and Tell (Xu et al. 2015): an LSTM that attends over image regions.

The exported graphs are exactly two methods, as for the translator:

* `encode(pixels)` -> memory [B, 49, R] (projected region vectors a_i),
  memory_key [B, 49, A] (their attention keys), state.h / state.c [B, H]
  (h0, c0 = tanh(f_init(mean_i a_i)), the paper's initialisation);
* `step(...)` -> one word for N rows (`DecoderContract`).

Decoder step, with h the LSTM state before the step (the notes' image-caption slides):
    alpha   = softmax_i(v . tanh(W_a a_i + W_h h))          soft attention over the 49 regions
    beta    = sigmoid(f_beta(h))                            gating scalar
    z       = beta * sum_i alpha_i a_i                      the context
    h', c'  = LSTM([E y_prev; z], (h, c))
    p(y)    = softmax(L_o tanh(E y_prev + L_h h' + L_z z))  deep output layer
With attention="none" (the notes' first caption slide) the mean region vector is the
only memory and is fed, ungated, at every step.

Training on cached features: `forward_regions(regions, tgt_in)` starts after the CNN,
so a frozen CNN runs once per image (train/caption/features.py), not once per epoch. It
unrolls through `exposure.unroll` (teacher forcing or scheduled sampling). With
input_feed="distribution" E y_prev is the expected embedding sum_v p_prev(v) E[v], the
previous softmax carried as `state.prev_dist` (one-hot <s> from the encoder), as in the
translator (train/translate/model.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ...runtime import manifest as mf
from ...runtime.manifest import StateSpec
from ...runtime.text import Vocab
from ..core.attention import make_match
from ..core.step_contract import DecoderContract
from ..methods.exposure import FeedConfig, expected_embedding, keep_token_input, start_distribution, unroll
from .config import CaptionModelConfig
from .image_encoder import FEATURE_DIM, RegionEncoder, freeze

UNK_ID = Vocab.unk_id


class CaptionModel(DecoderContract, nn.Module):
    """CNN regions -> attention LSTM decoder over a vocabulary of size V."""

    def __init__(self, cfg: CaptionModelConfig, vocab_size: int, pretrained: bool = True):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        E, H, R = cfg.emb_dim, cfg.dec_hidden, cfg.region_dim
        self.cnn = RegionEncoder(pretrained=pretrained)
        if not cfg.finetune_cnn:
            freeze(self.cnn)
        self.region_proj = nn.Linear(FEATURE_DIM, R)
        self.attention = cfg.attention == "soft"
        if self.attention:
            self.match = make_match("additive", R, H, cfg.att_dim)
            self.f_beta = nn.Linear(H, 1)
        self.init_h = nn.Linear(R, H)
        self.init_c = nn.Linear(R, H)
        self.emb = nn.Embedding(vocab_size, E, padding_idx=0)
        self.W_x = nn.Linear(E + R, 4 * H)
        self.W_h = nn.Linear(H, 4 * H, bias=False)
        with torch.no_grad():
            self.W_x.bias.zero_()
            self.W_x.bias[H : 2 * H].fill_(1.0)  # forget gate starts open
        self.L_h = nn.Linear(H, E)
        self.L_z = nn.Linear(R, E, bias=False)
        self.L_o = nn.Linear(E, vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        tau = torch.tensor(float(cfg.tau_init if cfg.tau == "learned" else 1.0))
        if cfg.tau == "learned":
            self.tau = nn.Parameter(tau)
        else:
            self.register_buffer("tau", tau)

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.cfg.finetune_cnn:
            self.cnn.eval()  # frozen: batch-norm statistics stay ImageNet's
        return self

    # --- the bundle contract -------------------------------------------------------------

    @property
    def memory_names(self) -> list[str]:
        return ["memory", "memory_key"] if self.attention else ["memory"]

    def state_specs(self) -> list[StateSpec]:
        H = self.cfg.dec_hidden
        specs = [StateSpec("h", ["N", H], "float32", "encoder"), StateSpec("c", ["N", H], "float32", "encoder")]
        if self.fed_distribution:
            specs.append(StateSpec("prev_dist", ["N", self.vocab_size]))
        return specs

    @property
    def fed_distribution(self) -> bool:
        return self.cfg.input_feed == "distribution"

    # --- encoder ---------------------------------------------------------------------------

    def regions(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, 224, 224] (runtime.image.preprocess) -> CNN regions [B, 49, 1280]."""
        return self.cnn(pixels)

    def encode_regions(self, regions: torch.Tensor) -> dict[str, torch.Tensor]:
        """CNN regions [B, 49, 1280] -> encoder outputs by name."""
        a = self.region_proj(regions)  # [B, 49, R]
        mean = a.mean(dim=1)
        out: dict[str, torch.Tensor] = {}
        if self.attention:
            out["memory"] = a
            out["memory_key"] = self.match.key(a)
        else:
            out["memory"] = mean.unsqueeze(1)  # [B, 1, R]
        out[mf.state_input("h")] = torch.tanh(self.init_h(mean))
        out[mf.state_input("c")] = torch.tanh(self.init_c(mean))
        if self.fed_distribution:
            out[mf.state_input("prev_dist")] = start_distribution(mean[:, :1], self.vocab_size, Vocab.bos_id)
        return out

    def encode(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encode_regions(self.regions(pixels))

    # --- decoder step ------------------------------------------------------------------------

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One word; returns (logprobs [N, V], attention [N, 49] or None, new states)."""
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        mem = memory["memory"].index_select(0, batch_of_row)
        if self.attention:
            key = memory["memory_key"].index_select(0, batch_of_row)
            alpha = torch.softmax(self.match.score(h, key), dim=1)
            beta = torch.sigmoid(self.f_beta(h))
            z = beta * torch.bmm(alpha.unsqueeze(1), mem).squeeze(1)
        else:
            alpha = None
            z = mem[:, 0]
        if self.fed_distribution:
            e = self.drop(expected_embedding(states["prev_dist"].index_select(0, row), self.emb.weight))
        else:
            e = self.drop(self.emb(token))
        z = self.drop(z)
        gates = self.W_x(torch.cat([e, z], dim=1)) + self.W_h(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        out = self.drop(torch.tanh(e + self.L_h(h_new) + self.L_z(z)))
        logprobs = torch.log_softmax(self.L_o(out), dim=1)
        new = {"h": h_new, "c": c_new}
        if self.fed_distribution:
            logprobs = keep_token_input(logprobs, token)
            new["prev_dist"] = logprobs.exp()
        return logprobs, alpha, new

    def decode_logprobs(self, logprobs: torch.Tensor) -> torch.Tensor:
        """With block_unk, decoding never says <unk>: its probability is given to the other
        words (renormalised). Training still learns <unk> for rare words."""
        if not self.cfg.block_unk:
            return logprobs
        unk = torch.zeros_like(logprobs[:1], dtype=torch.bool)
        unk[0, UNK_ID] = True
        out = torch.log_softmax(logprobs.masked_fill(unk, float("-inf")), dim=1)
        # a finite constant (not -inf: beam arithmetic stays finite; exact: no float drift)
        return out.masked_fill(unk, -1e4)

    # --- training ----------------------------------------------------------------------------

    def forward_regions(self, regions: torch.Tensor, tgt_in: torch.Tensor, feed: FeedConfig | None = None,
                        step: int = 0):
        """From CNN regions: log-probs [B, T, V], attention [B, T, 49] or None; teacher forcing,
        or scheduled sampling at optimizer step `step` when `feed` says so (exposure.unroll)."""
        enc = self.encode_regions(regions)
        memory = {n: enc[n] for n in self.memory_names}
        rows = torch.arange(regions.size(0), device=regions.device)

        def step_fn(token, states):
            return self.step_core(token, rows, rows, memory, states)

        return unroll(step_fn, tgt_in, self.initial_states(enc), feed, step)

    def loss(self, regions: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor, feed: FeedConfig | None = None,
             step: int = 0) -> tuple[torch.Tensor, int, float]:
        """(training loss, target token count, mean token NLL).

        loss = mean token NLL + lambda * mean over images of sum_i (tau - sum_t alpha_t,i)^2,
        the notes' doubly stochastic regulariser; padded steps carry no attention.
        """
        lp, att = self.forward_regions(regions, tgt_in, feed, step)
        nll = nn.functional.nll_loss(lp.reshape(-1, lp.size(2)), tgt_out.reshape(-1), ignore_index=0, reduction="sum")
        n = int((tgt_out != 0).sum())
        token_nll = nll / max(n, 1)
        loss = token_nll
        if self.cfg.doubly_stochastic and att is not None:
            real = (tgt_out != 0).to(att.dtype).unsqueeze(2)  # [B, T, 1]
            per_region = (att * real).sum(dim=1)  # [B, 49]
            loss = loss + self.cfg.doubly_stochastic * ((self.tau - per_region) ** 2).sum(dim=1).mean()
        return loss, n, float(token_nll.detach())


class PixelEncoderGraph(nn.Module):
    """`encode(pixels)` with positional outputs in manifest order (what the exporter traces)."""

    def __init__(self, model: CaptionModel):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        out = self.model.encode(pixels)
        return tuple(out[n] for n in self.model.encoder_output_names())


