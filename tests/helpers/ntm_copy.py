"""A tiny NTM trained for a few dozen steps on the copy task and exported as a generator bundle.

Shared by the trace tests (runtime and CLI): `copy_bundle(tmp_path_factory)` trains and
exports once per test session and hands back (model, bundle dir, training losses).
"""

from __future__ import annotations

import numpy as np
import torch

from edge_s2s.export.bundle_writer import bundle_manifest, write_manifest
from edge_s2s.export.generate import export_generator_graphs
from edge_s2s.train.ntm.cell import NTMConfig
from edge_s2s.train.ntm.model import NTMDecoder
from edge_s2s.train.ntm.tasks import copy_example, task_vocab

VOCAB = task_vocab()
SLOTS = 16
MAX_LENGTH = 24
_CACHE: dict[str, tuple] = {}


def train_copy(steps: int = 40, batch: int = 8, seed: int = 0) -> tuple[NTMDecoder, list[float]]:
    """Teacher-forced training on copy sequences of 1-4 patterns; the loss covers the target part only."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = NTMConfig(controller="lstm", controller_size=32, memory_slots=SLOTS, memory_width=8, shift_range=1,
                    memory_init="learned")
    model = NTMDecoder(cfg, len(VOCAB), emb_dim=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    with torch.enable_grad():
        for _ in range(steps):
            exs = [copy_example(rng, int(rng.integers(1, 5)), VOCAB) for _ in range(batch)]
            seqs = [e.prefix + e.target for e in exs]
            T = max(len(s) for s in seqs)
            targets = torch.zeros(batch, T, dtype=torch.long)
            mask = torch.zeros(batch, T, dtype=torch.bool)
            for i, (e, s) in enumerate(zip(exs, seqs)):
                targets[i, : len(s)] = torch.tensor(s)
                mask[i, len(e.prefix) : len(s)] = True
            lp = model(targets, torch.zeros(batch, dtype=torch.long))
            nll = -lp.gather(2, targets.unsqueeze(2)).squeeze(2)
            loss = nll[mask].mean()  # padding (id 0) is a blocked id with log-prob -inf: select, never multiply
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            losses.append(loss.item())
    return model.eval(), losses


def copy_bundle(tmp_path_factory):
    """(trained model, bundle directory, losses), built once per session."""
    if "bundle" not in _CACHE:
        torch.set_num_threads(1)
        model, losses = train_copy()
        d = tmp_path_factory.mktemp("ntm-copy-bundle")
        export_generator_graphs(model, d, 0)
        ck = d / "weights.pt"
        torch.save(model.state_dict(), ck)
        VOCAB.save(d / "tokens.txt")
        manifest = bundle_manifest(d, "generate", model, VOCAB,
                                   {"type": "generate", "unit": "word", "conditions": None}, MAX_LENGTH,
                                   {"architecture": "NTM", "task": "copy", **model.cfg.to_dict()}, ck)
        manifest.memory_length_from = ""
        ck.unlink()
        write_manifest(d, manifest, {"train_loss_first": losses[0], "train_loss_last": losses[-1]})
        _CACHE["bundle"] = (model, d, losses)
    return _CACHE["bundle"]
