"""The edge-s2s commands on a tiny model trained and exported through the CLI."""

import json

import pytest

from edge_s2s.cli.app import run
from edge_s2s.runtime import Beam, Seq2Seq

pytestmark = pytest.mark.slow


def test_translate_matches_api(cli_bundle, capsys):
    model = Seq2Seq.load(cli_bundle)
    expected = model.generate(["ka lu mi"])[0].text
    capsys.readouterr()
    assert run(["translate", "--bundle", str(cli_bundle), "ka lu mi"]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_translate_beam_nbest_json_from_stdin(cli_bundle, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("ka lu\nmi to ne\n".encode())))
    assert run(["translate", "--bundle", str(cli_bundle), "--beam", "4", "--n-best", "3", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    objs = [json.loads(ln) for ln in lines]
    assert [o["source"] for o in objs] == ["ka lu", "mi to ne"]
    model = Seq2Seq.load(cli_bundle)
    api = model.generate(["ka lu", "mi to ne"], search=Beam(size=4, n_best=3))
    for o, r in zip(objs, api):
        assert len(o["hypotheses"]) == 3
        assert [h["text"] for h in o["hypotheses"]] == [h.text for h in r.hypotheses]
        scores = [h["score"] for h in o["hypotheses"]]
        assert scores == sorted(scores, reverse=True)


def test_stream_prints_the_greedy_output(cli_bundle, capsys):
    model = Seq2Seq.load(cli_bundle)
    expected = model.generate(["to ne sa"])[0].text
    capsys.readouterr()
    assert run(["translate", "--bundle", str(cli_bundle), "--stream", "to ne sa"]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_sampling_is_reproducible_with_a_seed(cli_bundle, capsys):
    args = ["translate", "--bundle", str(cli_bundle), "--sample", "--temperature", "1.5", "--seed", "7", "ka lu mi to"]
    assert run(args) == 0
    first = capsys.readouterr().out
    assert run(args) == 0
    assert capsys.readouterr().out == first


def test_info_and_json(cli_bundle, capsys):
    assert run(["info", str(cli_bundle)]) == 0
    out = capsys.readouterr().out
    assert "state.h" in out and "decoder_step.onnx" in out and "attention" in out
    assert run(["info", str(cli_bundle), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["format"] == "edge-s2s-bundle"


def test_verify_passes_on_this_device(cli_bundle, capsys):
    assert run(["verify", str(cli_bundle)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "0 failed" in out


def test_profile_reports_every_stage(cli_bundle, capsys):
    assert run(["profile", str(cli_bundle), "--batch", "1,3", "--beam", "1,2", "--runs", "3", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert [(r["batch"], r["beam"]) for r in res] == [(1, 1), (1, 2), (3, 1), (3, 2)]
    for r in res:
        assert set(r["stages"]) == {"preprocess", "encoder", "decoder step", "search bookkeeping", "postprocess", "total"}
        assert all(v[0] > 0 for v in r["stages"].values())


def test_evaluate_scores_bleu(cli_bundle, toy_tsv, capsys):
    assert run(["evaluate", str(toy_tsv), "--bundle", str(cli_bundle), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["sentences"] == 240 and 0.0 <= scores["bleu"] <= 100.0


def test_resume_continues_a_run(cli_bundle, toy_tsv, tmp_path, capsys):
    run_dir = tmp_path / "run"
    base = ["train", "translate", "--data", str(toy_tsv), "--out", str(run_dir), "--emb-dim", "8", "--enc-hidden", "8",
            "--dec-hidden", "16", "--att-dim", "8", "--max-length", "8", "--no-progress", "--batch-size", "32"]
    assert run(base + ["--epochs", "1"]) == 0
    assert run(["train", "translate", "--out", str(run_dir), "--resume", "--extend", "--epochs", "2", "--no-progress"]) == 0
    metrics = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics if "epoch" in m][-2:] == [1, 2]


def test_ntm_decoder_through_the_cli(toy_tsv, tmp_path, capsys):
    """`train translate --decoder ntm`, export, translate with beam search: the NTM bundle is served
    by the ordinary commands (its read weighting is the reported attention)."""
    run_dir, bundle = tmp_path / "run", tmp_path / "bundle"
    assert run(["train", "translate", "--data", str(toy_tsv), "--out", str(run_dir), "--epochs", "2",
                "--batch-size", "16", "--lr", "0.01", "--emb-dim", "16", "--enc-hidden", "16", "--dec-hidden", "32",
                "--decoder", "ntm", "--ntm-width", "8", "--ntm-write-heads", "2", "--max-length", "8",
                "--vocab-min-count", "1", "--no-progress"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["train"]["model"]["decoder"] == "ntm"
    assert run(["export", str(run_dir), "--out", str(bundle)]) == 0
    capsys.readouterr()
    assert run(["translate", "--bundle", str(bundle), "--beam", "3", "--json", "ka lu mi"]) == 0
    obj = json.loads(capsys.readouterr().out)
    expected = Seq2Seq.load(bundle).generate(["ka lu mi"], search=Beam(size=3))[0]
    assert obj["hypotheses"][0]["text"] == expected.text
    assert run(["info", str(bundle)]) == 0
    assert "state.ntm_memory" in capsys.readouterr().out


def test_keep_epochs_and_export_of_their_average(toy_tsv, tmp_path, capsys):
    """`train translate --keep-epochs 2` keeps two epoch ends; `export --checkpoint average` averages them
    (parity with PyTorch proved on the averaged weights); without kept epochs it is one clear line."""
    run_dir = tmp_path / "run"
    base = ["train", "translate", "--data", str(toy_tsv), "--out", str(run_dir), "--emb-dim", "8", "--enc-hidden", "8",
            "--dec-hidden", "16", "--att-dim", "8", "--max-length", "8", "--no-progress", "--batch-size", "32",
            "--lr", "0.01", "--vocab-min-count", "1", "--epochs", "3"]
    assert run(base + ["--keep-epochs", "2"]) == 0
    assert sorted(p.name for p in run_dir.glob("epoch-*.pt")) == ["epoch-002.pt", "epoch-003.pt"]
    capsys.readouterr()
    assert run(["export", str(run_dir), "--out", str(tmp_path / "avg"), "--checkpoint", "average"]) == 0
    assert "average.pt" in capsys.readouterr().out
    assert run(["verify", str(tmp_path / "avg")]) == 0
    plain = tmp_path / "plain"
    assert run(base[:5] + [str(plain)] + base[6:]) == 0
    capsys.readouterr()
    assert run(["export", str(plain), "--out", str(tmp_path / "x"), "--checkpoint", "average"]) != 0
    err = capsys.readouterr().err
    assert "--keep-epochs" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
