"""The trace picture: one heat map per weighting and head, time along x, brightness = weight."""


import numpy as np
import pytest
from ntm_copy import SLOTS, VOCAB, copy_bundle  # noqa: E402
from PIL import Image

from edge_s2s.runtime.errors import InputError  # noqa: E402
from edge_s2s.runtime.pictures.canvas import hot_colormap
from edge_s2s.runtime.pictures.trace_map import (
    BOUNDARY,
    MAX_CELL,
    MAX_MAP_WIDTH,
    draw_trace,
    save_trace_figure,
    trace_panels,
)
from edge_s2s.runtime.search import Greedy  # noqa: E402
from edge_s2s.runtime.tasks.generator import Generator  # noqa: E402
from edge_s2s.runtime.tools.trace import Trace, replay  # noqa: E402
from edge_s2s.train.ntm.tasks import copy_example  # noqa: E402

# what an NTM bundle's state schema calls its states (train/ntm/cell.py), as a trace's info carries it
NTM_TITLES = {"write_w": "write weighting", "read_w": "read weighting", "ntm_memory": "memory",
              "ctrl_h": "controller h"}
NTM_AXES = {"write_w": ["row", "write head", "memory slot"], "ntm_memory": ["row", "memory slot", "column"]}


def _diagonal(T: int, S: int, heads: int = 1, forced: int = 0, name: str = "write_w", info=None) -> Trace:
    """A trace whose head h puts all its weight on slot (t + h) % S at step t."""
    w = np.zeros((T, heads, S), np.float32)
    for t in range(T):
        for h in range(heads):
            w[t, h, (t + h) % S] = 1.0
    tokens = [f"{t:02x}" for t in range(T)]
    return Trace({name: w}, list(range(4, 4 + T)), tokens, [t < forced for t in range(T)], [-0.5] * T,
                 {"task": "generate", "weightings": [name], "states": {name: ["N", heads, S]},
                  "state_titles": NTM_TITLES, "state_axes": NTM_AXES, **(info or {})})


def _cell(fig, panel: int, t: int, row: int) -> np.ndarray:
    b = fig.boxes[panel]
    x, y = b.x + t * b.cell_w + b.cell_w // 2, b.y + row * b.cell_h + b.cell_h // 2
    return np.asarray(fig.image)[y, x].astype(int)


def test_colormap_brightness_grows_with_the_weight():
    rgb = hot_colormap(np.linspace(0, 1, 11)).astype(int)
    assert tuple(rgb[0]) == (0, 0, 0) and tuple(rgb[-1]) == (255, 255, 255)
    assert (np.diff(rgb.sum(axis=1)) > 0).all()


def test_one_panel_per_head_and_the_weights_where_they_are():
    tr = _diagonal(30, 16, heads=2, forced=10)
    fig = draw_trace(tr)
    assert [p.title for p in fig.panels] == ["write weighting, head 1", "write weighting, head 2"]
    assert all(p.values.shape == (16, 30) for p in fig.panels)
    for panel, shift in ((0, 0), (1, 1)):
        for t in (0, 7, 20):
            assert tuple(_cell(fig, panel, t, (t + shift) % 16)) == (255, 255, 255)  # the weight: white
            assert tuple(_cell(fig, panel, t, (t + shift + 5) % 16)) == (0, 0, 0)  # elsewhere: black
    b = fig.boxes[0]
    bx = b.x + 10 * b.cell_w - 1  # the end of the forced prefix
    assert tuple(np.asarray(fig.image)[b.y + 3, bx]) == BOUNDARY


@pytest.mark.parametrize("T, S", [(20, 16), (100, 128), (60, 64)])
def test_cells_stay_readable_and_the_size_is_capped(T, S):
    fig = draw_trace(_diagonal(T, S, heads=2))
    b = fig.boxes[0]
    assert b.cell_w >= 4 and b.cell_h >= 4 and b.cell_w <= MAX_CELL and b.cell_h <= MAX_CELL
    assert (b.rows, b.cols) == (S, T)
    w, h = fig.image.size
    assert w <= MAX_MAP_WIDTH + 200 and h <= 3000
    assert tuple(_cell(fig, 1, T - 1, T % S)) == (255, 255, 255)


def test_long_traces_shrink_the_cells():
    fig = draw_trace(_diagonal(800, 16))
    assert fig.boxes[0].cell_w == MAX_MAP_WIDTH // 800 and fig.image.size[0] <= MAX_MAP_WIDTH + 200


def test_attention_rows_are_labelled_with_the_source():
    tr = _diagonal(6, 5, name="attention", info={"source_tokens": ["ein", "kleiner", "test", ".", "</s>"]})
    tr.tensors["attention"] = tr.tensors["attention"][:, 0]  # [T, L]
    (panel,) = trace_panels(tr)
    assert panel.title == "attention" and panel.axes == "y = source position"
    assert panel.row_labels == ["ein", "kleiner", "test", ".", "</s>"]


def test_choosing_tensors_and_unknown_names(tmp_path):
    tr = _diagonal(12, 8)
    tr.tensors["ntm_memory"] = np.random.default_rng(0).normal(size=(12, 8, 5)).astype(np.float32)
    tr.tensors["ctrl_h"] = np.zeros((12, 7), np.float32)
    assert [p.title for p in trace_panels(tr)] == ["write weighting, head 1"]  # default: the weightings
    mem, ctrl = trace_panels(tr, ["ntm_memory", "ctrl_h"])
    assert mem.values.shape == (8, 5) and not mem.over_time and mem.title == "memory after the last step"
    assert ctrl.values.shape == (7, 12) and ctrl.over_time
    with pytest.raises(InputError, match="no tensor 'nope'"):
        trace_panels(tr, ["nope"])


def test_a_real_trace_as_png(tmp_path_factory, tmp_path):
    _, d, _ = copy_bundle(tmp_path_factory)
    rt = Generator.load(d)
    enc = rt.encode_conditions([0])
    p = copy_example(np.random.default_rng(2), 6, VOCAB).prefix
    h = rt.decode_encoded(enc, Greedy(), 20, 14, prefix=[p])[0][0]
    tr = replay(rt.bundle, enc, h.ids, h.finished, forced=len(p), memory=True)
    fig = save_trace_figure(tmp_path / "memory.png", tr)
    assert [p.title for p in fig.panels] == ["read weighting, head 1", "write weighting, head 1"]
    with Image.open(tmp_path / "memory.png") as im:
        assert im.format == "PNG" and im.size == fig.image.size
    assert fig.boxes[0].rows == SLOTS and fig.boxes[0].cols == tr.steps
    assert len(save_trace_figure(tmp_path / "all.png", tr, list(tr.tensors)).panels) == len(tr.tensors)
    with pytest.raises(InputError, match="does not exist"):
        save_trace_figure(tmp_path / "missing" / "m.png", tr)
    with pytest.raises(InputError, match="cannot save"):
        save_trace_figure(tmp_path / "m.pdf2", tr)


def test_titles_and_axis_names_come_from_the_bundle_manifest(tmp_path_factory, tmp_path):
    """The picture names nothing itself: rename a state's title and axes in manifest.json and the
    panels follow; a manifest without display names (older bundles) loads and keeps none."""
    import json
    import shutil

    from edge_s2s.runtime.manifest import Manifest

    _, d, _ = copy_bundle(tmp_path_factory)
    specs = {s.name: s for s in Manifest.load(d).state}
    assert specs["write_w"].title == "write weighting" and specs["write_w"].axes == ["row", "write head", "memory slot"]
    renamed = tmp_path / "renamed"
    shutil.copytree(d, renamed)
    doc = json.loads((renamed / "manifest.json").read_text())
    for s in doc["state"]:
        if s["name"] == "write_w":
            s["title"], s["axes"] = "Schreibgewichtung", ["Zeile", "Kopf", "Speicherplatz"]
        if s["name"] == "read_w":
            del s["title"], s["axes"]
    (renamed / "manifest.json").write_text(json.dumps(doc))
    rt = Generator.load(renamed)
    enc = rt.encode_conditions([0])
    p = copy_example(np.random.default_rng(2), 4, VOCAB).prefix
    h = rt.decode_encoded(enc, Greedy(), 12, 10, prefix=[p])[0][0]
    panels = trace_panels(replay(rt.bundle, enc, h.ids, h.finished, forced=len(p)))
    assert [(q.title, q.axes) for q in panels] == [("read_w, head 1", "y = position"),
                                                  ("Schreibgewichtung, head 1", "y = Speicherplatz")]
    plain = {s.name: s for s in rt.manifest.state}["read_w"]
    assert plain.title == "" and plain.axes == [] and "title" not in json.loads(rt.manifest.to_json())["state"][1]
