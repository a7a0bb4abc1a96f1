"""Listen, Attend and Spell (Chan et al. 2016): the notes' speech recognition with attention.

The exported graphs are exactly two methods, as for the translator and the captioner:

* `encode(features, lengths)` -> memory [B, L, D], memory_key [B, L, A], memory_mask [B, L],
  state.h [B, H] (and state.prev_att [B, L] with location-aware attention);
* `step(...)` -> one character for N rows (`DecoderContract`).

Listener: a BLSTM over the log-mel frames, then `pyramid_layers` pyramidal BLSTMs, each
reading the concatenation of consecutive frame pairs (an odd length gets one zero frame),
so L = ceil(T / 8) for three layers. Outputs past each item's length are zeroed before
pairing, so an utterance is encoded the same alone or padded in a batch.

Speller step, with z the decoder state before the step:
    alpha   = masked_softmax(v . tanh(W_h h_i + W_z z [+ W_f (F * alpha_prev)_i]))
    context = sum_i alpha_i h_i
    z', c'  = LSTM([embedding(previous char); context], (z, c))
    logits  = V tanh(W [z'; context])
The bracketed term is location-aware attention (Chorowski et al. 2015): a 1-D convolution F
over the previous step's attention, which the step carries as `state.prev_att` [N, L] like
any other state (gathered by `row`), starting uniform over the real frames.
"""

from __future__ import annotations

import torch
from torch import nn

from ...runtime import manifest as mf
from ...runtime.manifest import StateSpec
from ..core.attention import AdditiveMatch, masked_softmax
from ..core.sequences import gather_time, reverse_index
from ..core.step_contract import DecoderContract
from .config import SpeechModelConfig


def length_mask(lengths: torch.Tensor, T: int | torch.Tensor) -> torch.Tensor:
    """[B, T] bool, True at the first lengths[b] positions."""
    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def pair_frames(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, T, D] (zero past each length) -> [B, ceil(T/2), 2D]: frames 2j and 2j+1 side by side.

    Strided slices rather than a reshape, so the exported graph needs no size arithmetic;
    an odd T is padded with one zero frame, and each length becomes ceil(length / 2).
    """
    even = x[:, 0::2]
    odd = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)[:, 1::2]
    return torch.cat([even, odd], dim=2), (lengths + 1) // 2


class BLSTM(nn.Module):
    """A bidirectional LSTM over padded sequences: two forward LSTMs, the second reading each
    item reversed within its own length (exports with dynamic B and T, no packing)."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.fwd = nn.LSTM(in_dim, hidden, batch_first=True)
        self.bwd = nn.LSTM(in_dim, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x [B, T, in] -> [B, T, 2 hidden], zero past each item's length."""
        T = x.size(1)
        fwd, _ = self.fwd(x)
        idx = reverse_index(lengths, T)
        bwd_rev, _ = self.bwd(gather_time(x, idx))
        out = torch.cat([fwd, gather_time(bwd_rev, idx)], dim=2)
        return out * length_mask(lengths, T).unsqueeze(2).to(out.dtype)


class Listener(nn.Module):
    """BLSTM + pyramidal BLSTMs: log-mel frames [B, T, F] -> memory [B, ceil(T / 2^p), 2H]."""

    def __init__(self, cfg: SpeechModelConfig):
        super().__init__()
        H = cfg.listener_hidden
        self.first = BLSTM(cfg.n_mels, H)
        self.pyramid = nn.ModuleList(BLSTM(4 * H, H) for _ in range(cfg.pyramid_layers))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(memory [B, L, 2H] zero past each length, memory lengths [B])."""
        x = self.first(features, lengths)
        for layer in self.pyramid:
            x, lengths = pair_frames(self.drop(x), lengths)
            x = layer(x, lengths)
        return x, lengths


class LocationMatch(AdditiveMatch):
    """Additive attention that also sees where it looked last step (Chorowski et al. 2015):
    score = v . tanh(W_h h_i + W_z z + W_f f_i), f = conv1d(alpha_prev) with `filters` channels."""

    def __init__(self, mem_dim: int, dec_dim: int, att_dim: int, filters: int, kernel: int):
        super().__init__(mem_dim, dec_dim, att_dim)
        self.conv = nn.Conv1d(1, filters, kernel, padding=kernel // 2, bias=False)
        self.W_f = nn.Linear(filters, att_dim, bias=False)

    def score(self, z: torch.Tensor, key: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """z [N, H], key [N, L, A], prev (previous attention) [N, L] -> scores [N, L]."""
        loc = self.W_f(self.conv(prev.unsqueeze(1)).transpose(1, 2))  # [N, L, A]
        return self.v(torch.tanh(key + self.W_z(z).unsqueeze(1) + loc)).squeeze(2)


class Speller(DecoderContract, nn.Module):
    """Listener over log-mel frames + attention LSTM speller over a character vocabulary of size V."""

    def __init__(self, cfg: SpeechModelConfig, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        D, H, E, A = cfg.memory_dim, cfg.dec_hidden, cfg.emb_dim, cfg.att_dim
        self.listener = Listener(cfg)
        self.location = cfg.attention == "location"
        if self.location:
            self.match = LocationMatch(D, H, A, cfg.location_filters, cfg.location_kernel)
        else:
            self.match = AdditiveMatch(D, H, A)
        self.attention = True
        self.init_h = nn.Linear(D, H)
        self.emb = nn.Embedding(vocab_size, E, padding_idx=0)
        # Decoder LSTM cell from plain Linear layers (the step graph stays plain ops).
        self.W_x = nn.Linear(E + D, 4 * H)
        self.W_h = nn.Linear(H, 4 * H, bias=False)
        with torch.no_grad():
            self.W_x.bias.zero_()
            self.W_x.bias[H : 2 * H].fill_(1.0)  # forget gate starts open
        self.W_out = nn.Linear(H + D, H)
        self.proj = nn.Linear(H, vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    # --- the bundle contract -------------------------------------------------------------

    @property
    def memory_names(self) -> list[str]:
        return ["memory", "memory_key", "memory_mask"]

    def state_specs(self) -> list[StateSpec]:
        H = self.cfg.dec_hidden
        specs = [StateSpec("h", ["N", H], "float32", "encoder"), StateSpec("c", ["N", H], "float32", 0.0)]
        if self.location:
            specs.append(StateSpec("prev_att", ["N", "L"], "float32", "encoder"))
        return specs

    # --- encoder ---------------------------------------------------------------------------

    def encode(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """features float32 [B, T, n_mels] (padded), lengths int64 [B] (frames) -> outputs by name."""
        memory, mem_lengths = self.listener(features, lengths)
        mask = length_mask(mem_lengths, memory.size(1))
        n_real = mem_lengths.to(memory.dtype).unsqueeze(1)  # [B, 1]
        out = {"memory": memory, "memory_key": self.match.key(memory), "memory_mask": mask,
               mf.state_input("h"): torch.tanh(self.init_h(memory.sum(dim=1) / n_real))}
        if self.location:
            out[mf.state_input("prev_att")] = mask.to(memory.dtype) / n_real  # uniform over real frames
        return out

    # --- decoder step ------------------------------------------------------------------------

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One character; returns (logprobs [N, V], attention [N, L], new states by name)."""
        h = states["h"].index_select(0, row)
        c = states["c"].index_select(0, row)
        mem = memory["memory"].index_select(0, batch_of_row)
        key = memory["memory_key"].index_select(0, batch_of_row)
        mask = memory["memory_mask"].index_select(0, batch_of_row)
        if self.location:
            scores = self.match.score(h, key, states["prev_att"].index_select(0, row))
        else:
            scores = self.match.score(h, key)
        alpha = masked_softmax(scores, mask)
        context = torch.bmm(alpha.unsqueeze(1), mem).squeeze(1)
        x = torch.cat([self.drop(self.emb(token)), context], dim=1)
        gates = self.W_x(x) + self.W_h(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        out = self.drop(torch.tanh(self.W_out(torch.cat([h_new, context], dim=1))))
        logprobs = torch.log_softmax(self.proj(out), dim=1)
        new = {"h": h_new, "c": c_new}
        if self.location:
            new["prev_att"] = alpha
        return logprobs, alpha, new

    # --- training ----------------------------------------------------------------------------

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor):
        """Teacher forcing: log-probs [B, T_out, V] and attention [B, T_out, L]."""
        enc = self.encode(features, lengths)
        memory = {n: enc[n] for n in self.memory_names}
        states = self.initial_states(enc)
        rows = torch.arange(features.size(0), device=features.device)
        lps, atts = [], []
        for t in range(tgt_in.size(1)):
            lp, alpha, states = self.step_core(tgt_in[:, t], rows, rows, memory, states)
            lps.append(lp)
            atts.append(alpha)
        return torch.stack(lps, 1), torch.stack(atts, 1)

    def loss(self, features: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor,
             tgt_out: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean character NLL over non-pad target positions, and the character count."""
        lp, _ = self(features, lengths, tgt_in)
        nll = nn.functional.nll_loss(lp.reshape(-1, lp.size(2)), tgt_out.reshape(-1), ignore_index=0, reduction="sum")
        n = int((tgt_out != 0).sum())
        return nll / max(n, 1), n
