"""The Neural Turing Machine (Graves et al. 2014, arXiv:1410.5401) as a one-step cell with
all state explicit, ready for the bundle's step graph (runtime/manifest.py).

One step, `NTMCell.forward(x [N, in], state) -> (output [N, C + R*W], new_state)`:

    1. controller   u = [x; r_{t-1} (the R previous read vectors, flattened)]
                    LSTM:        [i, f, g, o] = Linear([u; h]); c' = s(f) c + s(i) tanh(g);
                                 h' = s(o) tanh(c')          (forget bias starts at 1)
                    feedforward: h' = tanh(Linear(u))        (no controller state)
    2. head params  one Linear per head on h' (Section 3.1-3.3 symbols):
                    key k = tanh, strength beta = softplus (>= 0), gate g = sigmoid,
                    shift s = softmax over the K = 2r + 1 shifts -r..r,
                    gamma = 1 + softplus (>= 1); write heads also erase e = sigmoid,
                    add a = tanh
    3. write heads  address on M_{t-1} from their previous weights, then
                    M_t = M_{t-1} prod_h (1 - w_h e_h) + sum_h w_h a_h   (Section 3.2)
    4. read heads   address on M_t from their previous weights, r_t = w M_t (Section 3.1)
    5. output       [h'; r_t flattened]

Design decision: reads see the memory AFTER this step's write (step 4 after step 3), as
in the lecture notes (new memory first, then the new attention and the weighted sum),
so what is written at step t can be read at step t. Every head addresses from its own
previous weighting (Section 3.3.2's w_{t-1}).

State (every tensor row axis first; the keys become `state.<key>` in a bundle manifest):

    ntm_memory  [N, S, W]   memory matrix M
    read_w      [N, R, S]   read weightings
    write_w     [N, Wh, S]  write weightings
    read_vec    [N, R, W]   read vectors r (fed to the controller at the next step)
    ctrl_h      [N, C]      LSTM controller hidden state   (controller "lstm" only)
    ctrl_c      [N, C]      LSTM controller cell state     (controller "lstm" only)

`initial_state(batch)`:
  * memory: "constant" = every element `memory_init_value` (1e-6, so no slot has a zero
    norm; all slots are alike, so the first content look-ups are uniform and the heads
    start by location); "learned" = one [S, W] parameter shared by every row (Xavier
    uniform), which training moves;
  * weightings: "onehot" = all mass on slot 0 (a definite starting point for location
    addressing); "learned" = softmax of a learned [heads, S] logit parameter (zeros at
    init, i.e. uniform until trained);
  * read vectors = read(M_0, read_w_0), consistent with the initial memory and weights;
  * controller h, c = zeros.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...runtime.manifest import StateSpec
from . import addressing as na

CONTROLLERS = ("lstm", "feedforward")
MEMORY_INITS = ("learned", "constant")
WEIGHT_INITS = ("onehot", "learned")

MEMORY = "ntm_memory"
READ_W = "read_w"
WRITE_W = "write_w"
READ_VEC = "read_vec"
CTRL_H = "ctrl_h"
CTRL_C = "ctrl_c"
# what pictures call each state (the manifest's display names; runtime/pictures/trace_map.py)
TITLES = {MEMORY: "memory", READ_W: "read weighting", WRITE_W: "write weighting", READ_VEC: "read vector",
          CTRL_H: "controller h", CTRL_C: "controller c"}


@dataclass
class NTMConfig:
    """controller: "lstm" or "feedforward"; controller_size: C (its output width).
    memory_slots: S (the paper's N); memory_width: W (the paper's M).
    read_heads: R >= 1; write_heads: Wh >= 1.
    shift_range: r, the head may move by -r..r slots per step (K = 2r + 1 <= S).
    memory_init: "constant" (every element memory_init_value) or "learned".
    weight_init: "onehot" (slot 0) or "learned" (softmax of learned logits).
    """

    controller: str = "lstm"
    controller_size: int = 100
    memory_slots: int = 128
    memory_width: int = 20
    read_heads: int = 1
    write_heads: int = 1
    shift_range: int = 1
    memory_init: str = "constant"
    memory_init_value: float = 1e-6
    weight_init: str = "onehot"

    def __post_init__(self) -> None:
        if self.controller not in CONTROLLERS:
            raise ValueError(f"NTMConfig.controller must be one of {', '.join(CONTROLLERS)}, got {self.controller!r}")
        if self.memory_init not in MEMORY_INITS:
            raise ValueError(f"NTMConfig.memory_init must be one of {', '.join(MEMORY_INITS)}, got {self.memory_init!r}")
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"NTMConfig.weight_init must be one of {', '.join(WEIGHT_INITS)}, got {self.weight_init!r}")
        for name in ("controller_size", "memory_slots", "memory_width", "read_heads", "write_heads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"NTMConfig.{name} must be a positive integer, got {v!r}")
        r = self.shift_range
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"NTMConfig.shift_range must be an integer >= 0, got {r!r}")
        if 2 * r + 1 > self.memory_slots:
            raise ValueError(f"NTMConfig.shift_range={r} allows {2 * r + 1} shifts but memory has only "
                             f"{self.memory_slots} slots: need 2 * shift_range + 1 <= memory_slots")
        if not math.isfinite(self.memory_init_value):
            raise ValueError(f"NTMConfig.memory_init_value must be finite, got {self.memory_init_value!r}")

    @property
    def n_shifts(self) -> int:
        """K = 2r + 1: the shift distribution's size."""
        return 2 * self.shift_range + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split(v: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    return list(torch.split(v, sizes, dim=-1))


class NTMCell(nn.Module):
    """One NTM time step with explicit state (see the module docstring for the order)."""

    def __init__(self, cfg: NTMConfig, input_size: int):
        super().__init__()
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"NTMCell input_size must be a positive integer, got {input_size!r}")
        self.cfg = cfg
        self.input_size = input_size
        C, S, W, R, Wh, K = (cfg.controller_size, cfg.memory_slots, cfg.memory_width, cfg.read_heads,
                             cfg.write_heads, cfg.n_shifts)
        ctrl_in = input_size + R * W
        if cfg.controller == "lstm":
            self.ctrl = nn.Linear(ctrl_in + C, 4 * C)
            with torch.no_grad():
                self.ctrl.bias[C : 2 * C].fill_(1.0)  # forget gate starts open
        else:
            self.ctrl = nn.Linear(ctrl_in, C)
        # key W, beta 1, g 1, s K, gamma 1 (+ erase W, add W for a write head)
        self.read_sizes = [W, 1, 1, K, 1]
        self.write_sizes = [W, 1, 1, K, 1, W, W]
        self.read_heads = nn.ModuleList(nn.Linear(C, sum(self.read_sizes)) for _ in range(R))
        self.write_heads = nn.ModuleList(nn.Linear(C, sum(self.write_sizes)) for _ in range(Wh))
        if cfg.memory_init == "learned":
            bound = math.sqrt(6.0 / (S + W))
            self.memory0 = nn.Parameter(torch.empty(S, W).uniform_(-bound, bound))
        else:
            self.register_buffer("memory0", torch.full((S, W), float(cfg.memory_init_value)))
        if cfg.weight_init == "learned":
            self.read_w0_logits = nn.Parameter(torch.zeros(R, S))
            self.write_w0_logits = nn.Parameter(torch.zeros(Wh, S))

    # --- state ---------------------------------------------------------------------------

    @property
    def output_size(self) -> int:
        """C + R * W: the controller output and the read vectors."""
        return self.cfg.controller_size + self.cfg.read_heads * self.cfg.memory_width

    def state_names(self) -> list[str]:
        """State keys in a fixed order (the order of the exported step's state inputs)."""
        names = [MEMORY, READ_W, WRITE_W, READ_VEC]
        if self.cfg.controller == "lstm":
            names += [CTRL_H, CTRL_C]
        return names

    def state_specs(self, slots: int | str | None = None, slot_name: str = "memory slot") -> list[StateSpec]:
        """Bundle-manifest specs, `state_names()` order; h, c start at 0, the rest come from
        `initial_state` (an encoder output). slots: the memory's row count in the manifest (default
        memory_slots; "L" when the memory is the encoder's output), slot_name what a row is called."""
        c = self.cfg
        M = c.memory_slots if slots is None else slots
        shapes = {MEMORY: ["N", M, c.memory_width], READ_W: ["N", c.read_heads, M],
                  WRITE_W: ["N", c.write_heads, M], READ_VEC: ["N", c.read_heads, c.memory_width],
                  CTRL_H: ["N", c.controller_size], CTRL_C: ["N", c.controller_size]}
        axes = {MEMORY: ["row", slot_name, "column"], READ_W: ["row", "read head", slot_name],
                WRITE_W: ["row", "write head", slot_name], READ_VEC: ["row", "read head", "column"],
                CTRL_H: ["row", "unit"], CTRL_C: ["row", "unit"]}
        return [StateSpec(n, shapes[n], init=0.0 if n in (CTRL_H, CTRL_C) else "encoder", title=TITLES[n],
                          axes=axes[n]) for n in self.state_names()]

    def _initial_weights(self, heads: int, logits: str, batch: int) -> torch.Tensor:
        S = self.cfg.memory_slots
        if self.cfg.weight_init == "learned":
            return torch.softmax(getattr(self, logits), dim=-1).unsqueeze(0).expand(batch, heads, S)
        onehot = torch.arange(S, device=self.memory0.device) == 0
        w = onehot.to(self.memory0.dtype).expand(heads, S)
        return w.unsqueeze(0).expand(batch, heads, S)

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        """The state before step 0 for `batch` rows (see the module docstring)."""
        if batch < 1:
            raise ValueError(f"initial_state needs batch >= 1, got {batch}")
        c = self.cfg
        memory = self.memory0.unsqueeze(0).expand(batch, c.memory_slots, c.memory_width)
        read_w = self._initial_weights(c.read_heads, "read_w0_logits", batch)
        write_w = self._initial_weights(c.write_heads, "write_w0_logits", batch)
        state = {MEMORY: memory, READ_W: read_w, WRITE_W: write_w, READ_VEC: na.read(memory, read_w)}
        if c.controller == "lstm":
            state[CTRL_H] = memory.new_zeros(batch, c.controller_size)
            state[CTRL_C] = memory.new_zeros(batch, c.controller_size)
        return state

    # --- one step --------------------------------------------------------------------------

    def controller(self, x: torch.Tensor, read_vec: torch.Tensor, state: dict[str, torch.Tensor]
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """[x; previous reads] -> (controller output [N, C], new controller state)."""
        u = torch.cat([x, read_vec.flatten(1)], dim=-1)
        if self.cfg.controller == "feedforward":
            return torch.tanh(self.ctrl(u)), {}
        gates = self.ctrl(torch.cat([u, state[CTRL_H]], dim=-1))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[CTRL_C] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, {CTRL_H: h, CTRL_C: c}

    @staticmethod
    def head_params(linear: nn.Linear, sizes: list[int], h: torch.Tensor) -> dict[str, torch.Tensor]:
        """One head's parameters from the controller output h [N, C] (Section 3 symbols)."""
        parts = _split(linear(h), sizes)
        p = {"key": torch.tanh(parts[0]), "beta": F.softplus(parts[1]), "g": torch.sigmoid(parts[2]),
             "s": torch.softmax(parts[3], dim=-1), "gamma": 1.0 + F.softplus(parts[4])}
        if len(parts) == 7:
            p["erase"] = torch.sigmoid(parts[5])
            p["add"] = torch.tanh(parts[6])
        return p

    def forward(self, x: torch.Tensor, state: dict[str, torch.Tensor], mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x [N, input_size], state (keys `state_names()`) -> (output [N, C + R*W], new state).

        mask [N, S] (bool, optional): the memory slots that exist (na.content_weights)."""
        memory = state[MEMORY]
        h, ctrl_state = self.controller(x, state[READ_VEC], state)

        write_w, erase, add = [], [], []
        for k, head in enumerate(self.write_heads):
            p = self.head_params(head, self.write_sizes, h)
            write_w.append(na.address(memory, p["key"], p["beta"], p["g"], p["s"], p["gamma"], state[WRITE_W][:, k],
                                      mask=mask))
            erase.append(p["erase"])
            add.append(p["add"])
        write_w_t = torch.stack(write_w, 1)
        memory = na.write_heads(memory, write_w_t, torch.stack(erase, 1), torch.stack(add, 1))

        read_w = []
        for k, head in enumerate(self.read_heads):
            p = self.head_params(head, self.read_sizes, h)
            read_w.append(na.address(memory, p["key"], p["beta"], p["g"], p["s"], p["gamma"], state[READ_W][:, k],
                                     mask=mask))
        read_w_t = torch.stack(read_w, 1)
        read_vec = na.read(memory, read_w_t)

        new = {MEMORY: memory, READ_W: read_w_t, WRITE_W: write_w_t, READ_VEC: read_vec, **ctrl_state}
        return torch.cat([h, read_vec.flatten(1)], dim=-1), new
