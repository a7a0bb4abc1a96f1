"""A bundle is untrusted input: it can never make the runtime read outside its folder, a damaged
manifest is one error line (never a traceback) for `info`, `translate` and `verify`, and absurd
options are refused before any work. Each case here was a defect (a traceback, a file read from
elsewhere, a 183 GiB allocation, exit 0 on a damaged bundle) before the schema check."""

import hashlib
import json
import shutil

import pytest

from edge_s2s.cli.app import run


def _copy(bundle, tmp_path, edit=None):
    d = tmp_path / "b"
    shutil.copytree(bundle, d)
    if edit is not None:
        m = json.loads((d / "manifest.json").read_text())
        edit(m, d)
        (d / "manifest.json").write_text(json.dumps(m))
    return d


def _error(capsys) -> str:
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), cap.err
    assert "Traceback" not in cap.err + cap.out
    return err[0]


def _outside(tmp_path, name="secret.txt"):
    p = tmp_path / "outside" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text("not part of any bundle\n")
    return p


def _set(path: str, value):
    def edit(m, d):
        *keys, last = path.split(".")
        node = m
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value
    return edit


def _state_dtype(m, d):
    m["state"][0]["dtype"] = "float16"


def _outside_encoder(m, d):
    shutil.copy(d / m["encoder"]["file"], d.parent / "x.onnx")
    m["encoder"]["file"] = "../x.onnx"
    m["files"]["../x.onnx"] = m["files"].pop("encoder.onnx")


def _files_entry_outside(m, d):
    m["files"]["../../etc/hostname"] = "0" * 64


def _symlinked_tokens(m, d):
    outside = d.parent / "tokens-elsewhere.txt"
    shutil.copy(d / "tokens.txt", outside)
    (d / "tokens.txt").unlink()
    (d / "tokens.txt").symlink_to(outside)


CASES = {
    "encoder outside": (_outside_encoder, "plain file name inside the bundle"),
    "encoder absolute": (_set("encoder.file", "/etc/hostname"), "plain file name inside the bundle"),
    "files entry outside": (_files_entry_outside, "plain file name inside the bundle"),
    "symlink out": (_symlinked_tokens, "leads outside the bundle"),
    "eos outside vocab": (lambda m, d: m["tokens"].update(eos_id=m["tokens"]["size"] + 5), "tokens.eos_id"),
    "state float16": (_state_dtype, "float16 but the graphs"),
    "max_length string": (_set("max_length", "10"), "max_length must be an integer"),
    "max_length huge": (_set("max_length", 10**9), "max_length must be an integer from 1 to 4096"),
    "files list": (_set("files", ["encoder.onnx"]), "files must be a JSON object"),
    "preprocessing list": (_set("preprocessing", ["text"]), "preprocessing must be a JSON object"),
    "model string": (_set("model", "lstm"), "model must be a JSON object"),
    "size string": (lambda m, d: m["tokens"].update(size=str(m["tokens"]["size"])), "tokens.size must be an integer"),
    "no checksums": (_set("files", {}), "lists no files with checksums"),
    "checksum missing for a graph": (lambda m, d: m["files"].pop("decoder_step.onnx"), "lacks the checksum"),
    "bad sha": (lambda m, d: m["files"].update({"tokens.txt": "abc"}), "sha256"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_manifest_is_one_line_for_info_translate_and_verify(cli_bundle, tmp_path, capsys, case):
    edit, needle = CASES[case]
    d = _copy(cli_bundle, tmp_path, edit)
    capsys.readouterr()
    for args in (["info", str(d)], ["translate", "--bundle", str(d), "a b c"], ["verify", str(d)]):
        assert run(args) == 1, args
        assert needle in _error(capsys), args


def test_golden_files_are_read_from_the_bundle_only(cli_bundle, tmp_path, capsys):
    d = _copy(cli_bundle, tmp_path)
    _outside(tmp_path)
    golden = json.loads((d / "golden.json").read_text())
    golden["cases"][0]["image"] = "../outside/secret.txt"
    (d / "golden.json").write_text(json.dumps(golden))
    assert run(["verify", str(d)]) == 1
    assert "golden.json does not match its sha256" in _error(capsys)  # the checksum catches it first
    m = json.loads((d / "manifest.json").read_text())  # a hostile bundle updates the checksum too
    m["files"]["golden.json"] = hashlib.sha256((d / "golden.json").read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m))
    assert run(["verify", str(d)]) == 1
    assert "golden.json: cases[0].image must be a plain file name inside the bundle" in _error(capsys)


@pytest.mark.parametrize("args,needle", [
    (["--max-length", "1000000000"], "max_length must be an integer from 1 to 4096"),
    (["--beam", "30000"], "Beam size must be >= 1 and at most 256"),
    (["--beam", "4", "--n-best", "9"], "--n-best 9 needs a beam at least as wide"),
    (["--n-best", "3"], "--n-best 3 needs a beam at least as wide"),
])
def test_absurd_options_are_refused_before_any_work(cli_bundle, capsys, args, needle):
    assert run(["translate", "--bundle", str(cli_bundle), *args, "a b c"]) == 1
    assert needle in _error(capsys)


def test_a_decode_that_cannot_fit_in_memory_is_refused(cli_bundle, monkeypatch, capsys):
    monkeypatch.setenv("EDGE_S2S_MAX_DECODE_BYTES", "100000")
    assert run(["translate", "--bundle", str(cli_bundle), "--beam", "200", "a b c"]) == 1
    assert "GiB for the decoder state" in _error(capsys)


def test_the_intact_bundle_passes(cli_bundle, capsys):
    assert run(["info", str(cli_bundle)]) == 0 and run(["verify", str(cli_bundle)]) == 0
