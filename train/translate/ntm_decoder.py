"""The translator with a Neural Turing Machine decoder (`ModelConfig.decoder = "ntm"`).

The encoder is the translator's bidirectional LSTM (train/translate/model.py). Its outputs become
the NTM's memory, one slot per source word, and the decoder is an `NTMCell` that reads
that memory by content addressing (the notes' attention: cosine match, key strength,
softmax) and may also erase and write it while it translates:

    M_0        = tanh(W_m [fwd_i; bwd_i])          [B, L, ntm_width], 0 on padding
    read_w_0   = write_w_0 = uniform over the real words;  r_0 = read(M_0, read_w_0)
    ctrl_h_0   = tanh(W_h [fwd_last; bwd_first])    the encoder's final states; ctrl_c_0 = 0
    step:      out, state' = NTMCell(E[previous token], state, mask)
               p(y)        = softmax(V tanh(W_o out))
    attention  = the read weighting, averaged over read heads [N, L] (what `translate`
                 shows and `--attention` draws for the attention decoder)

Design decisions:

* No convolutional shift (shift_range 0): a source sentence is not a tape the head walks
  along slot by slot, and without a shift the padded slots keep exactly zero weight (see
  ntm.addressing.address), so a translation never depends on what else is in its batch.
* The mask is a read-only memory input (`memory_mask` [B, L], like the attention
  decoder's); everything the NTM changes is `state.*`, gathered by `row` in beam search.
* L is the source length, so the state shapes carry "L" and the manifest reads B and L
  from `memory_mask`.
* Training, scheduled sampling and input_feed="distribution" are the translator's
  (`Translator.forward` -> exposure.unroll over this `step_core`; `state.prev_dist`).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ...runtime.manifest import StateSpec
from ..ntm import addressing as na
from ..ntm.cell import CTRL_H, MEMORY, READ_VEC, READ_W, WRITE_W, NTMCell, NTMConfig
from .config import ModelConfig
from .model import Translator


class NTMTranslator(Translator):
    """Bidirectional LSTM encoder -> NTM memory -> NTM decoder (module docstring)."""

    memory_length_from = "memory_mask"

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        nn.Module.__init__(self)
        self._build_encoder(cfg, vocab_size)
        D, H, W = cfg.memory_dim, cfg.dec_hidden, cfg.ntm_width
        self.ntm_cfg = NTMConfig(controller="lstm", controller_size=H, memory_slots=1, memory_width=W,
                                 read_heads=cfg.ntm_read_heads, write_heads=cfg.ntm_write_heads, shift_range=0)
        self.to_memory = nn.Linear(D, W)
        self.init_h = nn.Linear(D, H)
        self.cell = NTMCell(self.ntm_cfg, cfg.emb_dim)
        self.W_out = nn.Linear(self.cell.output_size, H)
        self.proj = nn.Linear(H, vocab_size)
        self.attention = True  # the read weighting is reported as the step's attention

    @property
    def memory_names(self) -> list[str]:
        return ["memory_mask"]

    def state_specs(self) -> list[StateSpec]:
        # the memory starts as the encoder's outputs (one row per source position), and so does the
        # controller's h (the encoder's final states)
        specs = self.cell.state_specs(slots="L", slot_name="source position")
        return [replace(s, init="encoder") if s.name == CTRL_H else s for s in specs] + self.feed_specs()

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """src [B, S], src_lengths [B] -> memory_mask and the NTM's initial states."""
        fwd, bwd, mask = self.run_encoder(src, src_lengths)
        maskf = mask.to(fwd.dtype)
        memory = torch.tanh(self.to_memory(torch.cat([fwd, bwd], dim=2))) * maskf.unsqueeze(2)
        uniform = (maskf / maskf.sum(1, keepdim=True)).unsqueeze(1)  # [B, 1, L]
        c = self.ntm_cfg
        read_w = uniform.expand(-1, c.read_heads, -1)
        write_w = uniform.expand(-1, c.write_heads, -1)
        h0 = torch.tanh(self.init_h(self.final_states(fwd, bwd, src_lengths)[:, 0]))
        out = {"memory_mask": mask, f"state.{MEMORY}": memory, f"state.{READ_W}": read_w,
               f"state.{WRITE_W}": write_w, f"state.{READ_VEC}": na.read(memory, read_w), f"state.{CTRL_H}": h0}
        return self.feed_init(out, src_lengths)

    def step_core(self, token: torch.Tensor, row: torch.Tensor, batch_of_row: torch.Tensor,
                  memory: dict[str, torch.Tensor], states: dict[str, torch.Tensor]):
        """One step; returns (logprobs [N, V], read weighting [N, L], new states by name)."""
        x = self.drop(self.input_embedding(token, states, row))
        st = {name: t.index_select(0, row) for name, t in states.items() if name != "prev_dist"}
        mask = memory["memory_mask"].index_select(0, batch_of_row)
        out, new = self.cell(x, st, mask=mask)
        hidden = self.drop(torch.tanh(self.W_out(out)))
        logprobs = torch.log_softmax(self.proj(hidden), dim=1)
        return self.feed_outputs(logprobs, token, new), new[READ_W].mean(1), new


def build_translator(cfg: ModelConfig, vocab_size: int) -> Translator:
    """The translator `cfg.decoder` names: the attention LSTM decoder or the NTM decoder."""
    if cfg.decoder == "ntm":
        return NTMTranslator(cfg, vocab_size)
    return Translator(cfg, vocab_size)
