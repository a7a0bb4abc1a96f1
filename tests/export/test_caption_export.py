"""Exporting a captioner: pixels-in encoder with the whole CNN, parity, golden images, int8."""

import json

import numpy as np
import pytest

from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.tools.verify import verify_bundle


def test_bundle_contract_and_parity(caption_bundle):
    m = Manifest.load(caption_bundle)
    assert m.task == "caption"
    assert m.preprocessing["type"] == "image" and m.preprocessing["size"] == 224
    assert [t.name for t in m.encoder.inputs] == ["pixels"]
    assert m.encoder.inputs[0].shape == ["B", 3, 224, 224]
    assert m.memory == ["memory", "memory_key"] and m.attention
    assert [s.init for s in m.state] == ["encoder", "encoder"]
    assert m.model["grid"] == [7, 7]
    par = m.metrics["parity"]
    assert par["enforced"] and par["step"]["max_abs_diff"] <= 1e-4
    for name, r in par["search"]["searches"].items():
        assert r["identical"] == r["of"] >= 3, name
    # the whole CNN is in the encoder graph: it carries EfficientNet-Lite0's ~3.4M weights
    assert (caption_bundle / "encoder.onnx").stat().st_size > 12e6


def test_golden_images_ship_and_verify(caption_bundle):
    golden = json.loads((caption_bundle / "golden.json").read_text())["cases"]
    assert golden and all((caption_bundle / c["image"]).is_file() for c in golden)
    results = verify_bundle(caption_bundle)
    assert results and all(r.passed for r in results), [r.description for r in results if not r.passed]


def test_encoder_runs_at_other_batch_sizes(caption_bundle):
    import onnxruntime as ort

    s = ort.InferenceSession(str(caption_bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
    for B in (1, 5):
        out = s.run(["memory", "state.h"], {"pixels": np.zeros((B, 3, 224, 224), np.float32)})
        assert out[0].shape[:2] == (B, 49) and out[1].shape[0] == B


@pytest.mark.slow
def test_int8_linear_keeps_the_cnn_convolutions_float(caption_run, caption_bundle, tmp_path):
    import onnx

    from edge_s2s.export.caption import export_caption_bundle

    rep = export_caption_bundle(caption_run, tmp_path / "q", int8="linear")
    m = Manifest.load(tmp_path / "q")
    assert m.model["int8"] == "linear" and not m.metrics["parity"]["enforced"]
    assert (tmp_path / "q" / "decoder_step.onnx").stat().st_size < (caption_bundle / "decoder_step.onnx").stat().st_size
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q" / "encoder.onnx")).graph.node}
    assert "Conv" in ops and "ConvInteger" not in ops and "MatMulInteger" in ops
    assert rep.parity["search"]["searches"]["greedy"]["of"] >= 3
    assert all(r.passed for r in verify_bundle(tmp_path / "q"))  # golden = the int8 graphs' own decodes


@pytest.mark.slow
def test_static_int8_quantises_the_cnn_and_keeps_its_answers(caption_run, caption_bundle, tmp_path):
    """int8 "static": the CNN's convolutions become QLinearConv (calibrated, no ConvInteger and no Pad
    left between them), the linear layers stay dynamic int8, and the features stay close to fp32."""
    import onnx
    import onnxruntime as ort

    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.runtime.media.image import ImageSpec, preprocess

    out = tmp_path / "s"
    rep = export_caption_bundle(caption_run, out, int8="static")
    m = Manifest.load(out)
    assert m.model["int8"] == "static" and not m.metrics["parity"]["enforced"]
    assert m.model["int8_calibration"]["split"] == "train" and 0 < m.model["int8_calibration"]["images"] <= 256
    ops = [n.op_type for n in onnx.load(str(out / "encoder.onnx")).graph.node]
    assert "Pad" not in ops and "ConvInteger" not in ops and "MatMulInteger" in ops
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 49  # one per conv weight at least
    assert (out / "encoder.onnx").stat().st_size < 0.5 * (caption_bundle / "encoder.onnx").stat().st_size
    assert all(r.passed for r in verify_bundle(out))

    so = ort.SessionOptions()
    so.log_severity_level = 3
    runs = {k: ort.InferenceSession(str(b / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
            for k, b in (("fp32", caption_bundle), ("static", out))}
    spec = ImageSpec.from_manifest(m.preprocessing)
    pixels = np.stack([preprocess(out / g, spec) for g in ("golden_0.jpg", "golden_1.jpg", "golden_2.jpg")])
    a, b = (s.run(["memory"], {"pixels": pixels})[0] for s in runs.values())
    rel = np.linalg.norm(a - b) / np.linalg.norm(a)
    # quantised, not broken: the shipped model's regions move by ~0.18 of their norm and its validation
    # CIDEr-D holds; a wrong scale, layout or calibration gives ~1 or more
    assert rel < 0.35, rel
    assert rep.parity["search"]["searches"]["greedy"]["of"] >= 3


def test_static_int8_needs_the_training_images(caption_run, tmp_path):
    """No training images to calibrate on: one line that says so and what to do, nothing written."""
    import shutil

    import torch

    from edge_s2s.export.bundle_writer import ExportError
    from edge_s2s.export.caption import export_caption_bundle

    run = tmp_path / "run"
    shutil.copytree(caption_run, run)
    ck = torch.load(run / "best.pt", weights_only=True)
    ck["train_config"]["captions"] = str(tmp_path / "gone.json")  # the training data moved away
    torch.save(ck, run / "best.pt")
    with pytest.raises(ExportError, match="training images.*int8 'linear'"):
        export_caption_bundle(run, tmp_path / "x", int8="static", parity=False)
    assert not (tmp_path / "x").exists()


def test_export_refuses_bad_int8_choice(caption_run, tmp_path):
    from edge_s2s.export.bundle_writer import ExportError
    from edge_s2s.export.caption import export_caption_bundle

    with pytest.raises(ExportError, match="int8"):
        export_caption_bundle(caption_run, tmp_path / "x", int8="half")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_distribution_fed_captioner_exports_with_parity(tmp_path, shapes_data, caption_cache):
    """input_feed="distribution": `state.prev_dist` starts one-hot <s> in the pixels-in encoder; the runtime
    loop runs the bundle unchanged and its greedy and beam captions equal PyTorch's token for token."""
    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.train.caption.config import CaptionModelConfig, CaptionTrainConfig
    from edge_s2s.train.caption.loop import train_captioner
    from edge_s2s.train.methods.exposure import FeedConfig

    model = CaptionModelConfig(emb_dim=32, dec_hidden=64, region_dim=64, att_dim=32, dropout=0.0,
                               input_feed="distribution")
    cfg = CaptionTrainConfig(captions=str(shapes_data["karpathy"]), images=str(shapes_data["images"]),
                             out_dir=str(tmp_path / "run"), model=model, epochs=3, batch_size=8, lr=5e-3,
                             vocab_min_count=1, max_caption_length=8, val_max=12, feed=FeedConfig(mode="distribution"))
    run = train_captioner(cfg, progress=False, cache_dir=caption_cache)
    export_caption_bundle(run, tmp_path / "bundle")
    m = Manifest.load(tmp_path / "bundle")
    assert [(s.name, s.init) for s in m.state] == [("h", "encoder"), ("c", "encoder"), ("prev_dist", "encoder")]
    assert m.state[-1].shape == ["N", m.tokens.size] and m.model["input_feed"] == "distribution"
    assert "token" in m.step_input_names()
    par = m.metrics["parity"]
    assert par["enforced"] and par["step"]["max_abs_diff"] <= 1e-4
    assert set(par["search"]["searches"]) == {"greedy", "beam5"}
    for name, r in par["search"]["searches"].items():
        assert r["identical"] == r["of"] >= 3, name
    assert all(r.passed for r in verify_bundle(tmp_path / "bundle"))
