"""scripts/train_default_translator.py keeps its word on resume: a model flag that differs from the saved
run is one clear error (it used to keep the run's silently), and nothing is trained or written."""

import importlib
import json
import sys

from paths import REPO

from edge_s2s.train import ModelConfig, TrainConfig

sys.path.insert(0, str(REPO / "scripts"))
script = importlib.import_module("train_default_translator")


def test_resuming_with_another_match_function_or_width_is_one_clear_error(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.tsv", "valid.tsv", "test.tsv"):
        (data / name).write_text("Hallo Welt.\tHello world.\n", encoding="utf-8")
    run = tmp_path / "work" / "run"
    run.mkdir(parents=True)
    saved = TrainConfig(data=str(data / "train.tsv"), out_dir=str(run),
                        model=ModelConfig(emb_dim=256, enc_hidden=192, dec_hidden=384, attention="general"))
    (run / "config.json").write_text(json.dumps({"train": saved.to_dict(), "task": "translate"}))
    (run / "last.pt").write_bytes(b"not read: the flags are checked first")
    before = sorted(p.name for p in run.iterdir())
    common = ["--data", str(data), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--no-ship"]
    rc = script.main(common + ["--emb", "256", "--enc", "192", "--dec", "384", "--attention", "additive"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert "--attention additive (the run has general)" in err[0] and "--work DIR" in err[0]
    rc = script.main(common + ["--emb", "128", "--enc", "192", "--dec", "384"])
    err = capsys.readouterr().err
    assert rc == 1 and "--emb 128 (the run has 256)" in err and "--attention" not in err
    assert sorted(p.name for p in run.iterdir()) == before and not (tmp_path / "out").exists()
