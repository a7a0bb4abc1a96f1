"""The Captioner API: any image kind in, captions with 7x7 attention out, bad images named."""


import numpy as np
import pytest
from PIL import Image

from edge_s2s.runtime import Beam, Greedy
from edge_s2s.runtime.errors import EdgeS2SError, InputError
from edge_s2s.runtime.tasks.captioner import Captioner, default_model_path
from edge_s2s.runtime.tasks.seq2seq import Seq2Seq


@pytest.fixture(scope="module")
def cap(caption_bundle):
    return Captioner.load(caption_bundle)


@pytest.fixture(scope="module")
def photo(shapes_data):
    return shapes_data["images"] / "red_circle_2.jpg"


def test_every_input_kind_gives_the_same_caption(cap, photo):
    pil = Image.open(photo)
    arr = np.asarray(pil.convert("RGB"))
    data = photo.read_bytes()
    rs = cap.caption([str(photo), photo, pil, arr, data])
    texts = {r.text for r in rs}
    assert len(texts) == 1 and rs[0].text
    scores = [r.score for r in rs]
    assert max(scores) - min(scores) < 1e-4


def test_attention_is_words_by_49_regions(cap, photo):
    r = cap.caption([photo])[0]
    h = r.hypotheses[0]
    assert r.attention.shape == (len(h.tokens), 49)
    np.testing.assert_allclose(r.attention.sum(1), 1.0, atol=1e-4)
    assert cap.grid == (7, 7)


def test_beam_n_best_sorted_and_compiled_equals_reference(cap, caption_bundle, shapes_data):
    imgs = sorted(shapes_data["images"].glob("*_2.jpg"))[:4]
    rs = cap.caption(imgs, search=Beam(4, n_best=3))
    for r in rs:
        assert len(r.hypotheses) == 3
        s = [h.score for h in r.hypotheses]
        assert s == sorted(s, reverse=True)
    ref = Captioner.load(caption_bundle, loop="reference")
    for search in (Greedy(), Beam(4, n_best=2)):
        a, b = cap.caption(imgs, search=search), ref.caption(imgs, search=search)
        assert [[h.ids for h in r.hypotheses] for r in a] == [[h.ids for h in r.hypotheses] for r in b]


def test_batch_size_does_not_change_results(cap, shapes_data):
    imgs = sorted(shapes_data["images"].glob("*.jpg"))[:7]
    a = cap.caption(imgs, batch_size=16)
    b = cap.caption(imgs, batch_size=3)
    assert [r.text for r in a] == [r.text for r in b]


def test_bad_image_raises_or_is_kept(cap, photo, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    with pytest.raises(InputError, match="notes.jpg"):
        cap.caption([photo, bad])
    rs = cap.caption([photo, bad, photo], errors="keep")
    assert rs[0].ok and rs[2].ok and rs[0].text == rs[2].text
    assert not rs[1].ok and "notes.jpg" in rs[1].error and rs[1].hypotheses == [] and rs[1].text == ""


@pytest.mark.parametrize("arg", ["a.jpg", [], None])
def test_caption_wants_a_non_empty_list(cap, arg):
    with pytest.raises(InputError):
        cap.caption(arg)


def test_wrong_bundle_kinds_are_refused(caption_bundle, model_bundle):
    with pytest.raises(EdgeS2SError, match="a 'translate' bundle, not a 'caption' one: run it with `edge-s2s translate`"):
        Captioner.load(model_bundle)
    with pytest.raises(EdgeS2SError, match="Captioner"):
        Seq2Seq.load(caption_bundle)
    from edge_s2s.runtime.bundle import shipped_bundle

    with pytest.raises(EdgeS2SError, match="run it with `edge-s2s transcribe`"):  # it once advised translate
        Captioner.load(shipped_bundle("transcriber"))


def test_the_default_model_ships_and_captions(shapes_data):
    if not (default_model_path() / "manifest.json").is_file():
        pytest.fail(f"the default captioner is missing from {default_model_path()}")
    cap = Captioner.load()
    assert cap.manifest.task == "caption"
    assert "test" in cap.manifest.metrics  # its test-split scores travel with it
    r = cap.caption([shapes_data["images"] / "blue_square_0.jpg"], search=Beam(3))[0]
    k = cap.label_slots  # the default attends over 49 regions and its label slots
    assert k == 5 and r.labels is not None and len(r.labels) == k
    assert r.text and r.attention.shape[1] == 49 + k


def test_reading_ahead_in_threads_changes_no_result(caption_bundle, shapes_data, tmp_path):
    """The pipelined path (images of the next batch read by worker threads while the CNN runs) gives
    exactly the serial path's captions, errors in place, for any batch size."""
    imgs = sorted(shapes_data["images"].glob("*.jpg"))[:11]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    inputs = [*imgs[:4], bad, *imgs[4:]]
    cap = Captioner.load(caption_bundle)
    serial = cap.caption(inputs, batch_size=4, workers=1, errors="keep")
    seen = []
    for batch, workers in ((3, 2), (4, 4), (16, 3), (0, 0)):
        got = cap.caption(inputs, batch_size=batch, workers=workers, errors="keep",
                          on_batch=lambda start, rs: seen.append((start, len(rs))))
        assert [r.error for r in got] == [r.error for r in serial]
        assert [r.text for r in got if r.ok] == [r.text for r in serial if r.ok]
    assert serial[4].error and "bad.jpg" in serial[4].error and sum(not r.ok for r in serial) == 1
    assert seen[:4] == [(0, 3), (3, 3), (6, 3), (9, 3)]  # on_batch: each batch as it finishes, in order
