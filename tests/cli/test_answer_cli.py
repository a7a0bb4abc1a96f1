"""`edge-s2s answer` and `edge-s2s train babi`: answers with per-hop attention, JSON, warnings
said once, and one `error:` line (nothing else printed, exit 1) for each bad input."""

import json

import pytest
from memory_stories import long_story, write_babi_root
from paths import REPO

from edge_s2s.cli.app import run

pytestmark = pytest.mark.slow

STORY = "Mary moved to the bathroom.\nJohn went to the hallway.\nMary travelled to the office.\n"


@pytest.fixture
def story(tmp_path):
    p = tmp_path / "story.txt"
    p.write_text(STORY, encoding="utf-8")
    return p


def _error(capsys) -> str:
    out = capsys.readouterr()
    assert out.out == "", out.out  # nothing printed before the error
    err = out.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_answer_prints_answers_and_top_sentences_per_hop(memn2n_bundle, story, capsys):
    assert run(["answer", "--bundle", str(memn2n_bundle), "--story", str(story), "Where is Mary?",
                "Where is John?", "--top", "2"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    blocks = out.out.strip().split("\n\n")
    assert len(blocks) == 2
    mary, john = (b.splitlines() for b in blocks)
    assert mary[0] == "Where is Mary?" and mary[1].startswith("answer: office  (p = ")
    assert john[1].startswith("answer: hallway")
    assert len(mary) == 2 + 2 * 2  # question, answer, 2 hops x top 2
    assert mary[2].startswith("  hop 1") and mary[4].startswith("  hop 2")
    assert mary[4].endswith("Mary travelled to the office.")  # the last hop finds the supporting fact
    weights = [float(line[9:15]) for line in mary[2:4]]  # "  hop 1  0.506  Mary ..." / "         0.437  ..."
    assert weights == sorted(weights, reverse=True)


def test_answer_json(memn2n_bundle, story, capsys):
    assert run(["answer", "-b", str(memn2n_bundle), "-s", str(story), "--json", "--top", "3", "Where is Mary?"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    r = rows[0]
    assert r["answer"] == "office" and 0 < r["probability"] <= 1
    assert [h["hop"] for h in r["hops"]] == [1, 2]
    for h in r["hops"]:
        assert len(h["top"]) == 3
        assert [t["attention"] for t in h["top"]] == sorted((t["attention"] for t in h["top"]), reverse=True)
        assert {t["sentence"] for t in h["top"]} == {1, 2, 3}
    assert r["notes"] == [] and r["dropped_sentences"] == 0


def test_warnings_are_said_once_and_exit_0(memn2n_bundle, tmp_path, capsys):
    sentences, _ = long_story(25, seed=5)
    p = tmp_path / "long.txt"
    p.write_text("\n".join(sentences + ["Bob went to the attic."]) + "\n", encoding="utf-8")
    assert run(["answer", "-b", str(memn2n_bundle), "-s", str(p), "Where is Bob?", "Where is Mary?"]) == 0
    out = capsys.readouterr()
    warnings = out.err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
    assert "'bob', 'attic'" in warnings[0] and "<unk>" in warnings[0]
    assert "26 sentences" in warnings[1] and "the 16 oldest were dropped" in warnings[1]
    assert out.out.count("answer: ") == 2


def test_bad_inputs(memn2n_bundle, story, tmp_path, capsys):
    b = str(memn2n_bundle)
    cases = []
    cases.append((["-b", b, "-s", str(tmp_path / "nope.txt"), "Where is Mary?"], "nope.txt does not exist"))
    cases.append((["-b", b, "-s", str(tmp_path), "Where is Mary?"], "is a directory, not a story file"))
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Mary moved to the caf\u00e9.\n".encode("latin-1"))
    cases.append((["-b", b, "-s", str(latin), "Where is Mary?"], "is not UTF-8 text (invalid byte at line 1)"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    cases.append((["-b", b, "-s", str(empty), "Where is Mary?"], "empty.txt is empty"))
    q = tmp_path / "q.txt"
    q.write_text("1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n", encoding="utf-8")
    cases.append((["-b", b, "-s", str(q), "Where is Mary?"], "q.txt:2: 'Where is Mary?' is a question"))
    cases.append((["-b", b, "-s", str(story), ""], "the question is empty"))
    cases.append((["-b", b, "-s", str(story), "Where is Mary?", " ? "], "question 2 is empty"))
    cases.append((["-b", b, "Where is Mary?"], "--story is required"))
    cases.append((["-s", str(story), "Where is Mary?"], "--bundle is required"))
    cases.append((["-b", str(tmp_path / "nobundle"), "-s", str(story), "Q?"], "does not exist"))
    cases.append((["-b", str(tmp_path), "-s", str(story), "Q?"], "has no manifest.json"))
    cases.append((["-b", b, "-s", str(story), "--top", "0", "Q?"], "--top must be >= 1"))
    for args, message in cases:
        assert run(["answer", *args]) == 1, args
        assert message in _error(capsys), args


def test_wrong_bundle_task_both_ways(memn2n_bundle, story, capsys):

    captioner = REPO / "models" / "captioner"
    assert run(["answer", "-b", str(captioner), "-s", str(story), "Where is Mary?"]) == 1
    assert "'caption' bundle, not a memory network" in _error(capsys)
    b = str(memn2n_bundle)
    for args in (["translate", "--bundle", b, "hallo"], ["caption", "--bundle", b, str(story)],
                 ["generate", "--bundle", b], ["profile", b]):
        assert run(args) == 1, args
        assert "memory network (task 'answer')" in _error(capsys), args


def test_info_shows_the_memory_network(memn2n_bundle, capsys):
    assert run(["info", str(memn2n_bundle)]) == 0
    out = capsys.readouterr().out
    assert "task        answer (memory network: 2 hops, d=20, memory 10 sentences" in out
    assert "out  attention" in out and "test error" in out and "parity" in out
    assert run(["info", str(memn2n_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "answer"


def test_train_babi_writes_a_run(tmp_path, capsys):
    root = write_babi_root(tmp_path / "babi", n_train=60, n_test=20, seed=4)
    out = tmp_path / "run"
    assert run(["train", "babi", "--tasks", "1", "--data-root", str(root), "--out", str(out), "--hops", "1",
                "--epochs", "2", "--memory-size", "10", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "task  1 test error" in text and f"edge-s2s export {out}" in text
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "answer" and cfg["tasks"] == [1] and cfg["train"]["model"]["hops"] == 1
    assert cfg["tokens"][:4] == ["<pad>", "<unk>", "<s>", "</s>"] and "bathroom" in cfg["answers"]
    assert (out / "last.pt").is_file() and not list(out.glob(".*tmp"))
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["phase"] == "softmax" and [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert set(json.loads((out / "results.json").read_text())["test_error"]) == {"1"}
    # a second run into the same directory is refused, not overwritten
    assert run(["train", "babi", "--tasks", "1", "--data-root", str(root), "--out", str(out)]) == 1
    assert "already holds a training run" in _error(capsys)


@pytest.mark.parametrize("args, message", [
    (["--tasks", "21"], "unknown bAbI task 21"),
    (["--tasks", "one"], "use task numbers like 1"),
    (["--tasks", "1,2"], "qa2_two-supporting-facts_train.txt is missing"),
    (["--size", "5k"], "unknown bAbI size '5k'"),
    (["--hops", "4"], "hops must be 1, 2 or 3"),
])
def test_train_babi_bad_options(tmp_path, capsys, args, message):
    root = write_babi_root(tmp_path / "babi", n_train=10, n_test=5)
    assert run(["train", "babi", "--data-root", str(root), "--out", str(tmp_path / "run"), *args]) == 1
    assert message in _error(capsys)
    assert not (tmp_path / "run").exists()


def test_train_babi_missing_data_root(tmp_path, capsys):
    assert run(["train", "babi", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 1
    assert "bAbI data not found at" in _error(capsys)
