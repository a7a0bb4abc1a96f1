"""Every attention type trains (loss falls); the training step is the exported step."""

import json

import pytest
import torch
from toy import tiny_config

from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.tools.run_logs import read_metrics
from edge_s2s.train.translate.config import ModelConfig
from edge_s2s.train.translate.loop import train_translator
from edge_s2s.train.translate.model import Translator

ATTENTIONS = ["dot", "general", "additive", "cosine", "none"]


@pytest.mark.slow
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_each_attention_trains(toy_tsv, tmp_path, attention):
    run = train_translator(tiny_config(toy_tsv, tmp_path / attention, attention=attention, epochs=3), progress=False)
    m = read_metrics(run)
    assert len(m) == 3
    assert m[-1]["train_loss"] < m[0]["train_loss"] - 0.3
    assert m[-1]["val_loss"] < m[0]["val_loss"]
    assert m[-1]["val_bleu"] is not None
    for f in ("tokens.txt", "config.json", "val.tsv", "last.pt", "best.pt", "metrics.jsonl"):
        assert (run / f).is_file(), f
    assert json.loads((run / "config.json").read_text())["train"]["model"]["attention"] == attention


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_teacher_forcing_equals_stepwise_graph_calls(attention):
    """forward() (training) and step() (the exported graph) compute the same log-probs."""
    torch.manual_seed(0)
    model = Translator(ModelConfig(16, 16, 32, attention, 16), 20).eval()
    src = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0], [9, 10, 3, 0]])
    lengths = torch.tensor([4, 2, 3])
    tgt_in = torch.tensor([[2, 11, 12], [2, 13, 0], [2, 14, 15]])
    with torch.no_grad():
        lp, att = model(src, lengths, tgt_in)
        enc = model.encode(src, lengths)
        assert list(enc) == model.encoder_output_names()
        states = model.initial_states(enc)
        rows = torch.arange(3)
        for t in range(3):
            out = model.step(tgt_in[:, t], rows, rows, torch.tensor([4]), *(enc[n] for n in model.memory_names),
                             *(states[s.name] for s in model.state_specs()))
            assert list(out) == model.step_output_names()
            assert torch.allclose(out["logprobs"], lp[:, t], atol=1e-6)
            assert torch.allclose(out["topk_logprobs"], lp[:, t].topk(4).values, atol=1e-6)
            if att is not None:
                a = out["attention"]
                assert torch.allclose(a, att[:, t]) and torch.allclose(a.sum(1), torch.ones(3))
                assert float(a[1, 2:].abs().max()) == 0.0  # padding gets no attention
            states = {s.name: out[f"state.{s.name}.next"] for s in model.state_specs()}


def test_contract_names_match_manifest():
    for attention in ATTENTIONS:
        model = Translator(ModelConfig(16, 16, 32, attention, 16), 20)
        from edge_s2s.train.core.torch_step import decode_manifest

        man: Manifest = decode_manifest(model, 10)
        assert man.encoder_output_names() == model.encoder_output_names()
        assert man.step_input_names() == model.step_input_names()
        assert man.step_output_names() == model.step_output_names()
        assert man.attention == (attention != "none")


def test_reverse_index_is_its_own_inverse():
    from edge_s2s.train.core.sequences import gather_time, reverse_index

    lengths = torch.tensor([4, 1, 3])
    idx = reverse_index(lengths, 4)
    assert idx.tolist() == [[3, 2, 1, 0], [0, 1, 2, 3], [2, 1, 0, 3]]
    x = torch.randn(3, 4, 2)
    assert torch.equal(gather_time(gather_time(x, idx), idx), x)
