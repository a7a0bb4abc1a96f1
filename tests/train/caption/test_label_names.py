"""The ImageNet class names the captioner copies into captions: the committed TSV's shape and
plainness, a few classes whose name is known, and the builder's WordNet parser on a fixture."""

import ast
import csv
import importlib.util
import re
import sys
import zipfile
from pathlib import Path

import pytest
from paths import REPO

from edge_s2s.train.caption import label_names
from edge_s2s.train.caption.label_names import NAMES_TSV, label_vocabulary, load_label_names
from edge_s2s.train.core.errors import DataError

SCRIPT = REPO / "scripts" / "build_imagenet_names.py"
WORDNET = Path("/usr/share/wordnet")


def _script():
    """scripts/build_imagenet_names.py as a module (registered, as its dataclasses need)."""
    if "build_imagenet_names" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_imagenet_names", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["build_imagenet_names"]


def _rows() -> list[dict[str, str]]:
    with NAMES_TSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


NAMES = load_label_names()
BY_LEMMA = {r["wordnet"]: (int(r["index"]), r["name"]) for r in _rows()}


def test_a_thousand_plain_names_in_class_order():
    rows = _rows()
    assert len(NAMES) == 1000 and [r["name"] for r in rows] == NAMES
    wnids = [r["wnid"] for r in rows]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000  # the standard ImageNet-1k order
    assert (wnids[0], wnids[-1]) == ("n01440764", "n15075141")
    for name in NAMES:
        assert name == name.lower() and 1 <= len(name.split(" ")) <= 2, name
        assert re.fullmatch(r"[a-z]+(?:[ -][a-z]+)*", name), name


def test_breeds_and_kinds_get_the_everyday_word():
    assert NAMES[281:286] == ["cat"] * 5  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    for breed in ("Chihuahua", "golden_retriever", "Siberian_husky", "Pembroke", "standard_poodle", "pug"):
        assert BY_LEMMA[breed][1] == "dog", breed
    assert NAMES[967] == "coffee" and BY_LEMMA["espresso"] == (967, "coffee")
    assert NAMES[665] in ("motorcycle", "scooter") and BY_LEMMA["moped"][0] == 665
    assert BY_LEMMA["coffee_mug"][1] in ("cup", "mug")
    for car in ("sports_car", "convertible", "cab", "racer"):
        assert BY_LEMMA[car][1] == "car", car
    assert {BY_LEMMA[b][1] for b in ("bald_eagle", "great_grey_owl", "king_penguin", "macaw")} == \
        {"eagle", "owl", "penguin", "parrot"}
    assert {BY_LEMMA[s][1] for s in ("Indian_cobra", "green_mamba", "rock_python", "sidewinder")} == {"snake"}
    assert BY_LEMMA["tench"][1] == "fish" and BY_LEMMA["goldfish"][1] == "goldfish"


def test_no_name_is_a_word_people_would_not_write():
    rare = {"tench", "tabby", "egyptian", "egyptian cat", "brambling", "junco", "coucal", "jacamar", "limpkin",
            "dowitcher", "bulbul", "eft", "agama", "guenon", "patas", "titi", "indri", "siamang", "dhole",
            "hartebeest", "barracouta", "gar", "lycaenid", "ringlet", "admiral", "chiton", "isopod", "chiffonier",
            "jinrikisha", "maillot", "cuirass", "stupa", "shoji", "loupe", "cardoon", "agaric", "bolete",
            "gyromitra", "earthstar", "stinkhorn", "rapeseed", "icebox", "knapsack", "panther", "cock", "tusker"}
    assert rare.isdisjoint(NAMES), sorted(rare & set(NAMES))


def test_the_vocabulary_is_the_names_words():
    vocab = label_vocabulary()
    assert vocab == sorted(set(vocab))
    assert {"cat", "dog", "fire", "truck", "go-kart"} <= set(vocab) and "fire truck" not in vocab
    assert set(vocab) == {w for n in NAMES for w in n.split()}


def test_a_broken_table_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_label_names(tmp_path / "missing.tsv")
    lines = NAMES_TSV.read_text(encoding="utf-8").splitlines(keepends=True)
    short = tmp_path / "short.tsv"
    short.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(DataError, match="999 classes"):
        load_label_names(short)
    bad = tmp_path / "bad.tsv"
    bad.write_text("".join(lines[:3] + ["2\tn01484850\tgreat_white_shark\tGreat White\n"] + lines[4:]),
                   encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:4: 'Great White'"):
        load_label_names(bad)


def _top_level_imports(nodes) -> set[str]:
    out = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module.split(".")[0])
    return out


def test_neither_the_module_nor_the_builder_imports_torch_at_load():
    module = ast.parse(Path(label_names.__file__).read_text(encoding="utf-8"))
    assert "torch" not in _top_level_imports(ast.walk(module))  # nowhere in the module
    script = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    assert "torch" not in _top_level_imports(script.body)  # only --check, inside a function, needs it
    assert "torch" in _top_level_imports(ast.walk(script))


# Five data.noun lines (wndb(5)): the licence header, then cat <- domestic cat <- tabby, Siamese cat
# (real WordNet 3.0 lines, ending in two spaces as there; cut to stay inside the fixture: cat loses its
# hypernym, domestic cat all but one of its hyponyms, and their pointer counts match).
DATA_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by  
02121620 05 n 02 cat 0 true_cat 0 002 ~ 02121808 n 0000 ~ 02124623 n 0000 | feline mammal usually having thick soft fur and no ability to roar: domestic cats; wildcats  
02121808 05 n 04 domestic_cat 0 house_cat 0 Felis_domesticus 0 Felis_catus 0 004 @ 02121620 n 0000 @ 01317541 n 0000 #m 02121234 n 0000 ~ 02123045 n 0000 | any domesticated member of the genus Felis  
02123045 05 n 02 tabby 1 tabby_cat 0 001 @ 02121808 n 0000 | a cat with a grey or tawny coat mottled with black  
02123597 05 n 02 Siamese_cat 0 Siamese 0 002 @ 02121808 n 0000 ~ 02123785 n 0000 | a slender short-haired blue-eyed breed of cat having a pale coat with dark ears paws face and tail tip  
"""
INDEX_NOUN = """\
  1 This software and database is being provided to you, the LICENSEE, by  
cat n 8 5 @ ~ #m + ; 8 1 02121620 10153414 09900153 03608870 02985606 02983507 02127808 00901476  
domestic_cat n 1 3 @ ~ #m 1 0 02121808  
siamese_cat n 1 2 @ ~ 1 1 02123597  
tabby n 2 1 @ 2 0 02123045 02122878  
"""
CNTLIST = "cat%1:05:00:: 1 18\nsiamese_cat%1:05:00:: 1 2\n"


def test_the_builder_parses_data_noun_lines():
    b = _script()
    lines = DATA_NOUN.splitlines(keepends=True)
    assert b.parse_data_line(lines[0]) is None  # licence header
    cat, domestic, tabby, siamese = (b.parse_data_line(line) for line in lines[1:])
    assert (cat.offset, cat.lex_filenum, cat.words, cat.hypernyms) == ("02121620", 5, (("cat", 0), ("true_cat", 0)), ())
    assert cat.gloss.startswith("feline mammal") and cat.gloss.endswith("wildcats")
    assert domestic.first_lemma == "domestic_cat" and len(domestic.words) == 4
    assert domestic.hypernyms == ("02121620", "01317541")  # both @ pointers, in order; #m and ~ are not
    assert tabby.words == (("tabby", 1), ("tabby_cat", 0)) and tabby.hypernyms == ("02121808",)  # hex lex_id
    assert siamese.hypernyms == ("02121808",)


def test_the_builder_walks_a_tiny_wordnet(tmp_path):
    b = _script()
    (tmp_path / "data.noun").write_text(DATA_NOUN, encoding="latin-1")
    (tmp_path / "index.noun").write_text(INDEX_NOUN, encoding="latin-1")
    (tmp_path / "cntlist.rev").write_text(CNTLIST, encoding="latin-1")
    wn = b.WordNet(tmp_path)
    assert wn.name("02123045") == "tabby.n.01" and wn.name("02121620") == "cat.n.01"
    assert wn.chain("02123045") == ["02123045", "02121808", "02121620"]  # up to the root
    assert wn.own_lemma("02123045") == "tabby"  # no counts: the first lemma
    assert wn.own_lemma("02123597") == "siamese cat"
    assert b.clean("Persian_cat") == "persian cat" and b.clean("tank_(army)") == "tank"
    assert not b.is_plain("Tinca_tinca", frozenset({"Tinca"})) and b.is_plain("French_horn", frozenset({"Tinca"}))
    assert not b.is_plain("jack-o'-lantern") and not b.is_plain("black_and_gold_garden_spider")


def test_the_builder_reads_the_class_order_from_the_wheel(tmp_path):
    b = _script()
    wnids = [r["wnid"] for r in _rows()]
    wheel = tmp_path / "timm-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(b.SYNSETS_IN_WHEEL, "\n".join(wnids) + "\n")
    assert b.read_wnids(wheel) == wnids
    shuffled = tmp_path / "synsets.txt"
    shuffled.write_text("\n".join(wnids[1:] + wnids[:1]), encoding="ascii")
    with pytest.raises(ValueError, match="not in the standard"):
        b.read_wnids(shuffled)
    assert b.main(["--synsets", str(wheel), "--wordnet", str(tmp_path / "none")]) == 1


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(),
                    reason="WordNet 3.0 is not installed (apt-get install wordnet-base)")
def test_the_committed_table_is_what_the_builder_writes(tmp_path):
    synsets = tmp_path / "imagenet_synsets.txt"
    synsets.write_text("\n".join(r["wnid"] for r in _rows()) + "\n", encoding="ascii")
    out = tmp_path / "names.tsv"
    assert _script().main(["--synsets", str(synsets), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == NAMES_TSV.read_text(encoding="utf-8")
