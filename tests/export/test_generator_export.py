"""Generator export: parity with PyTorch (conditional, 2-D LSTM, distribution-fed), golden
cases, int8, and what a failed export leaves behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_s2s.export.bundle_writer import ExportError
from edge_s2s.export.generate import export_generator_bundle
from edge_s2s.runtime.manifest import Manifest
from edge_s2s.runtime.search import Sample
from edge_s2s.runtime.tasks.generator import Generator
from edge_s2s.runtime.tools.verify import verify_bundle


def _parity_ok(bundle):
    p = Manifest.load(bundle).metrics["parity"]
    assert p["enforced"] and p["step"]["max_abs_diff"] <= p["tolerance"]
    searches = p["search"]["searches"]
    assert set(searches) == {"greedy", "beam3", "sample"}
    for r in searches.values():
        assert r["identical"] == r["of"] == 3
    return p


@pytest.mark.parametrize("name", ["lm_bundle", "digits_bundle", "grid_bundle"])
def test_parity_and_golden_cases(name, request):
    bundle = request.getfixturevalue(name)
    _parity_ok(bundle)
    golden = json.loads((bundle / "golden.json").read_text())
    kinds = {c["search"]["type"] for c in golden["cases"]}
    assert kinds == {"greedy", "beam", "sample"}
    assert any(c["prefix"] for c in golden["cases"])  # a forced prefix is part of what verify re-runs
    results = verify_bundle(bundle)
    assert results and all(r.passed for r in results)


def test_conditional_bundle_declares_its_classes(digits_bundle):
    m = Manifest.load(digits_bundle)
    assert m.preprocessing["conditions"] == [str(i) for i in range(10)]
    assert m.preprocessing["image"] == {"height": 8, "width": 8, "levels": 4, "dataset": "digits"}
    assert m.max_length == 64


def test_distribution_fed_model_exports_its_softmax_as_state(tmp_path):
    from edge_s2s.train.generate.config import GeneratorConfig, GeneratorTrainConfig
    from edge_s2s.train.generate.loop import train_generator

    model = GeneratorConfig(unit="pixel", emb_dim=8, hidden=16, height=8, width=8, blocked_ids=[0, 1, 2, 3],
                            input_mode="distribution")
    cfg = GeneratorTrainConfig(data="digits", out_dir=str(tmp_path / "run"), model=model, levels=4, epochs=1,
                               max_train=128, lr=1e-2)
    run = train_generator(cfg, progress=False)
    bundle = tmp_path / "bundle"
    export_generator_bundle(run, bundle)
    _parity_ok(bundle)
    spec = {s.name: s for s in Manifest.load(bundle).state}
    assert spec["prev_dist"].shape == ["N", 8] and spec["prev_dist"].init == "encoder"
    g = Generator.load(bundle)
    a = g.sample_images(3, search=Sample(seed=4))
    b = Generator.load(bundle, loop="reference").sample_images(3, search=Sample(seed=4))
    assert np.array_equal(a, b)


def test_int8_export_reports_parity(lm_run, tmp_path):
    report = export_generator_bundle(lm_run, tmp_path / "int8", int8=True)
    assert report.int8 and not report.parity["enforced"]
    assert Generator.load(tmp_path / "int8").generate(["And "], search=Sample(seed=1), max_length=20)[0].text
    assert all(r.passed for r in verify_bundle(tmp_path / "int8"))


def test_failed_export_leaves_nothing(lm_run, tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_generator_bundle(tmp_path / "no-run", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    precious = tmp_path / "precious"  # an existing directory that is not a bundle: refused at the very end
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an edge-s2s bundle"):
        export_generator_bundle(lm_run, precious)
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_wrong_checkpoint_kind_is_refused(caption_run, tmp_path):
    with pytest.raises(ExportError, match="'caption' run, not a 'generate' run"):
        export_generator_bundle(caption_run, tmp_path / "out")
