"""A captioner with label slots, trained, exported and run end to end: manifest-declared memory,
parity, golden cases, labels on every result, clean text, attention over regions and labels."""

import json
import re

import pytest
from PIL import Image

from edge_s2s.cli.app import run
from edge_s2s.runtime import Captioner
from edge_s2s.train.caption.caption_text import NO_END_WORDS
from edge_s2s.train.caption.label_names import load_label_names
from tests.helpers.caption_toy import tiny_caption_config

CLEAN = re.compile(r"[a-z0-9]+(?:[ -][a-z0-9]+)*")


@pytest.fixture(scope="module", params=[False, True], ids=["generate-or-copy", "copy-names"])
def label_bundle(request, tmp_path_factory, shapes_data, caption_cache):
    from edge_s2s.export.caption import export_caption_bundle
    from edge_s2s.train.caption.loop import train_captioner

    root = tmp_path_factory.mktemp("caption-labels")
    # every label name is a word: a 640-word vocabulary needs wider embeddings than the shapes' 13 words
    cfg = tiny_caption_config(shapes_data, root / "run", labels=3, label_inject=0.5, no_end_words=True,
                              copy_names=request.param, doubly_stochastic=0.1, emb_dim=64, dec_hidden=96)
    cfg.text = "clean"
    cfg.epochs = 10
    run_dir = train_captioner(cfg, progress=False, cache_dir=caption_cache)
    report = export_caption_bundle(run_dir, root / "bundle")
    return root / "bundle", report, run_dir


def test_manifest_declares_the_label_slots_and_parity_holds(label_bundle):
    bundle, report, _ = label_bundle
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["model"]["label_slots"] == {"count": 3, "tokens": "label_tokens"}
    assert m["memory"] == ["memory", "memory_key", "label_tokens", "label_key"]
    assert report.parity["enforced"] and report.parity["search"]
    tokens = (bundle / "tokens.txt").read_text().split("\n")
    assert set(load_label_names()) <= set(tokens)
    assert not any(t in tokens for t in (".", ",", '"'))  # clean targets: no punctuation words
    assert set(m["model"]["no_end"]) == NO_END_WORDS & set(tokens) and "a" in m["model"]["no_end"]
    assert run(["verify", str(bundle)]) == 0


def test_results_carry_labels_and_clean_text(label_bundle, shapes_data):
    bundle, _, _ = label_bundle
    cap = Captioner.load(bundle)
    images = sorted(shapes_data["images"].glob("*.jpg"))[:5]
    names = set(load_label_names())
    for r in cap.caption(images) + cap.caption(images, search=__import__("edge_s2s.runtime", fromlist=["Beam"]).Beam(3)):
        assert r.labels is not None and len(r.labels) == 3 and set(r.labels) <= names
        assert CLEAN.fullmatch(r.text), r.text
        assert not r.text or r.text.split()[-1] not in ("a", "an", "the", "and", "of")
        assert len(r.hypotheses[0].tokens) == len(r.hypotheses[0].ids) == r.attention.shape[0]
        assert r.attention.shape == (len(r.hypotheses[0].ids), 49 + 3)
        # regions: attention (at most 1 in all); labels: copy probabilities (at most 1 in all)
        assert (r.attention >= 0).all() and (r.attention[:, :49].sum(1) <= 1 + 1e-4).all()
        assert (r.attention[:, 49:].sum(1) <= 1 + 1e-4).all()


def test_cli_json_and_attention_picture_show_the_labels(label_bundle, shapes_data, tmp_path, capsys):
    bundle, _, _ = label_bundle
    image = sorted(shapes_data["images"].glob("*.jpg"))[0]
    picture = tmp_path / "att.png"
    assert run(["caption", str(image), "--bundle", str(bundle), "--json", "--attention", str(picture)]) == 0
    obj = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(obj["labels"]) == 3
    words = len(obj["hypotheses"][0]["tokens"])
    with Image.open(picture) as im:
        w, h = im.size
    from edge_s2s.runtime.pictures.attention_map import BAR_ROW, figure_size

    assert (w, h) == figure_size(1 + words, 5, 224, labels=3)
    assert BAR_ROW * 3 < h


def test_int8_label_bundle_runs(label_bundle, tmp_path):
    from edge_s2s.export.caption import export_caption_bundle

    _, _, run_dir = label_bundle
    export_caption_bundle(run_dir, tmp_path / "int8", int8="linear", parity=False)
    cap = Captioner.load(tmp_path / "int8")
    assert cap.label_slots == 3
    assert run(["verify", str(tmp_path / "int8")]) == 0


def test_int8_keeps_the_label_choice_of_fp32(label_bundle, shapes_data, tmp_path):
    """int8 "linear" leaves the class -> name sum in float32: quantising its input (the softmax)
    turned small probabilities into ties, and the top-K then filled slots with the vocabulary's
    first names ("abacus", "accordion") instead of the next likely ones."""
    import onnx

    from edge_s2s.export.caption import export_caption_bundle

    bundle, _, run_dir = label_bundle
    export_caption_bundle(run_dir, tmp_path / "int8", int8="linear", parity=False, golden=0)
    graph = onnx.load(str(tmp_path / "int8" / "encoder.onnx")).graph
    users = [n for n in graph.node if any(x.endswith("class_to_name") for x in n.input)]
    assert users and all(n.op_type == "MatMul" for n in users)  # float MatMul, not MatMulInteger
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)  # the rest is int8
    images = sorted(shapes_data["images"].glob("*.jpg"))[:12]
    fp32 = [r.labels for r in Captioner.load(bundle).caption(images)]
    int8 = [r.labels for r in Captioner.load(tmp_path / "int8").caption(images)]
    assert fp32 == int8


def test_the_no_end_rule_can_be_switched_at_export(label_bundle, tmp_path):
    """The run trained with the no-end rule, exported without it: the manifest says so and parity is
    proved on the rule-free step (the rule only masks the end token while decoding)."""
    from edge_s2s.export.caption import export_caption_bundle

    bundle, _, run_dir = label_bundle
    on = json.loads((bundle / "manifest.json").read_text())["model"]
    assert on["no_end_words"] is True and set(on["no_end"]) == NO_END_WORDS & set((bundle / "tokens.txt").read_text().split("\n"))
    off = export_caption_bundle(run_dir, tmp_path / "off", no_end_words=False, golden=1)
    m = json.loads((off.bundle / "manifest.json").read_text())["model"]
    assert m["no_end_words"] is False and "no_end" not in m and off.parity["enforced"]
    assert run(["verify", str(off.bundle)]) == 0


def test_a_caption_that_names_nothing_gets_its_top_label_as_noun(label_bundle):
    """ "a red" (a colour with no noun) becomes "a red" + the image's first label; captions that name
    something, and bundles without model.needs_noun, are left as the decoder wrote them."""
    from edge_s2s.runtime.results import Hypothesis, Result

    bundle, _, _ = label_bundle
    cap = Captioner.load(bundle)
    needs = json.loads((bundle / "manifest.json").read_text())["model"]["needs_noun"]
    assert "red" in needs and len(needs) >= 2
    other = next(w for w in needs if w != "red")

    def fix(text, labels=("apple", "cup")):
        r = Result([Hypothesis([], [], text, 0.0, 0.0)])
        cap._name_the_noun(r, list(labels))
        return r.text

    assert fix("a red") == "a red apple"
    assert fix(f"a {other} red") == f"a {other} red apple"
    assert fix(f"the {other}", ("bell tower",)) == f"the {other} bell tower"
    assert fix("a red", ("owl",)) == "a red owl"
    for fine in ("a red cup", "the car is red", "a cat", ""):
        assert fix(fine) == fine
    cap._needs_noun = frozenset()  # an older bundle: nothing changes
    assert fix("a red") == "a red"


def test_a_pointer_prior_export_declares_its_memory_and_keeps_parity(label_bundle, tmp_path, shapes_data):
    """The same run exported with a decoding prior toward the classifier's surer names: one more
    memory tensor, parity with PyTorch enforced, verify passes, the manifest says beta."""
    from edge_s2s.export.bundle_writer import ExportError
    from edge_s2s.export.caption import export_caption_bundle

    _, _, run_dir = label_bundle
    report = export_caption_bundle(run_dir, tmp_path / "prior", pointer_prior=2.0)
    m = json.loads((tmp_path / "prior" / "manifest.json").read_text())
    assert m["memory"] == ["memory", "memory_key", "label_tokens", "label_key", "label_prior"]
    assert m["model"]["pointer_prior"] == 2.0
    assert report.parity["enforced"] and report.parity["search"]
    assert run(["verify", str(tmp_path / "prior")]) == 0
    images = sorted(shapes_data["images"].glob("*.jpg"))[:3]
    for r in Captioner.load(tmp_path / "prior").caption(images):
        assert CLEAN.fullmatch(r.text), r.text
    with pytest.raises(ExportError, match="pointer_prior"):
        export_caption_bundle(run_dir, tmp_path / "bad", pointer_prior=-1.0)


def test_cli_export_takes_a_pointer_prior_and_refuses_a_bad_one(label_bundle, tmp_path, capsys):
    _, _, run_dir = label_bundle
    assert run(["export", str(run_dir), "--out", str(tmp_path / "b"), "--pointer-prior", "1", "--no-parity"]) == 0
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["model"]["pointer_prior"] == 1.0
    capsys.readouterr()
    assert run(["export", str(run_dir), "--out", str(tmp_path / "c"), "--pointer-prior", "-3"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pointer_prior" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "c").exists()
