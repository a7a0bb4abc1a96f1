"""The translator's NTM decoder: memory from the encoder, masked content addressing, and a
decoder that does not depend on batch padding."""

import pytest
import torch

from edge_s2s.train.ntm import addressing as na
from edge_s2s.train.translate.config import ModelConfig
from edge_s2s.train.translate.model import Translator
from edge_s2s.train.translate.ntm_decoder import NTMTranslator, build_translator


def _model(**kw):
    torch.manual_seed(0)
    cfg = ModelConfig(emb_dim=16, enc_hidden=16, dec_hidden=24, dropout=0.0, decoder="ntm", ntm_width=12, **kw)
    return NTMTranslator(cfg, 30)


SRC = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
LENGTHS = torch.tensor([4, 6])
TGT_IN = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 10]])
TGT_OUT = torch.tensor([[5, 6, 7, 3], [8, 9, 10, 3]])


def test_masked_content_weights_by_hand():
    """Slot 2 is padding: it gets exactly 0 and the others share the softmax among themselves."""
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    key, beta = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0]])
    w = na.content_weights(memory, key, beta, mask=torch.tensor([[True, True, False]]))
    e = torch.exp(torch.tensor(2.0))
    assert torch.allclose(w, torch.tensor([[e / (e + 1), 1 / (e + 1), 0.0]]), atol=1e-6)


def test_factory_picks_the_decoder():
    assert type(build_translator(ModelConfig(16, 16, 24), 30)) is Translator
    assert type(build_translator(ModelConfig(16, 16, 24, decoder="ntm"), 30)) is NTMTranslator
    with pytest.raises(ValueError, match="decoder must be one of"):
        ModelConfig(decoder="gru")


def test_memory_starts_from_the_encoder_and_padding_is_empty():
    model = _model().eval()
    with torch.no_grad():
        enc = model.encode(SRC, LENGTHS)
    mem = enc["state.ntm_memory"]
    assert mem.shape == (2, 6, 12)
    assert torch.all(mem[0, 4:] == 0) and mem[0, :4].abs().sum() > 0
    rw = enc["state.read_w"]
    assert torch.allclose(rw.sum(-1), torch.ones(2, 1)) and torch.all(rw[0, :, 4:] == 0)


def test_padding_does_not_change_the_decoder():
    model = _model(ntm_read_heads=2, ntm_write_heads=2).eval()
    with torch.no_grad():
        alone, att_alone = model(SRC[:1, :4], LENGTHS[:1], TGT_IN[:1])
        batched, att = model(SRC, LENGTHS, TGT_IN)
    assert torch.allclose(alone[0], batched[0], atol=1e-6)
    assert torch.all(att[0, :, 4:] == 0) and torch.allclose(att.sum(-1), torch.ones(2, 4), atol=1e-5)


def test_training_lowers_the_loss_with_finite_gradients():
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(40):
        loss, _ = model.loss(SRC, LENGTHS, TGT_IN, TGT_OUT)
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first
    assert model.cell.write_heads[0].weight.grad.abs().sum() > 0  # the write path is trained too
