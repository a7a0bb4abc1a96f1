"""The emoji converter: names -> captions and skips, grouping, face cap, determinism, and output
that load_captions reads (on the real Noto Color Emoji font when installed, else skipped)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from paths import REPO
from PIL import Image

from edge_s2s.train.caption import emoji as em
from edge_s2s.train.caption.data import load_captions, load_coco, load_karpathy

SCRIPT = REPO / "scripts" / "emoji_to_coco.py"
NEED_FONT = pytest.mark.skipif(not em.FONT.is_file(), reason=f"no Noto Color Emoji font: {em.APT_INSTALL}")
NEED_NAMES = pytest.mark.skipif(not em.EMOJI_TEST.is_file(), reason=f"no emoji-test.txt: {em.APT_INSTALL}")

# (CLDR name, group, subgroup, code points, status) -> caption, or "skip:<reason>"
TABLE = [
    ("red apple", "Food & Drink", "food-fruit", "1f34e", "fully-qualified", "a red apple"),
    ("cat face", "Animals & Nature", "animal-mammal", "1f431", "fully-qualified", "a cat"),
    ("motorcycle", "Travel & Places", "transport-ground", "1f3cd-fe0f", "fully-qualified", "a motorcycle"),
    ("two hearts", "Smileys & Emotion", "heart", "1f495", "fully-qualified", "two hearts"),
    ("automobile", "Travel & Places", "transport-ground", "1f697", "fully-qualified", "a car"),
    ("oncoming automobile", "Travel & Places", "transport-ground", "1f698", "fully-qualified", "a car"),
    ("oncoming bus", "Travel & Places", "transport-ground", "1f68d", "fully-qualified", "a bus"),
    ("octopus", "Animals & Nature", "animal-marine", "1f419", "fully-qualified", "an octopus"),
    ("unicorn", "Animals & Nature", "animal-mammal", "1f984", "fully-qualified", "a unicorn"),
    ("ewe", "Animals & Nature", "animal-mammal", "1f411", "fully-qualified", "a ewe"),
    ("french fries", "Food & Drink", "food-prepared", "1f35f", "fully-qualified", "french fries"),
    ("bacon", "Food & Drink", "food-prepared", "1f953", "fully-qualified", "bacon"),
    ("popcorn", "Food & Drink", "food-prepared", "1f37f", "fully-qualified", "a box of popcorn"),
    ("eyes", "People & Body", "body-parts", "1f440", "fully-qualified", "eyes"),
    ("person rowing boat", "People & Body", "person-sport", "1f6a3", "fully-qualified", "a person rowing a boat"),
    ("people wrestling", "People & Body", "person-sport", "1f93c", "fully-qualified", "people wrestling"),
    ("woman: red hair", "People & Body", "person", "1f469-200d-1f9b0", "fully-qualified", "a woman with red hair"),
    ("man: bald", "People & Body", "person", "1f468-200d-1f9b2", "fully-qualified", "a bald man"),
    ("person: beard", "People & Body", "person", "1f9d4", "fully-qualified", "a person with a beard"),
    ("man firefighter", "People & Body", "person-role", "1f468-200d-1f692", "fully-qualified", "a male firefighter"),
    ("man in tuxedo", "People & Body", "person-role", "1f935-200d-2642-fe0f", "fully-qualified",
     "a man in a tuxedo"),
    ("face with tears of joy", "Smileys & Emotion", "face-smiling", "1f602", "fully-qualified",
     "a face with tears of joy"),
    ("face with open mouth", "Smileys & Emotion", "face-concerned", "1f62e", "fully-qualified",
     "a face with an open mouth"),
    ("hand with fingers splayed", "People & Body", "hand-fingers-open", "1f590-fe0f", "fully-qualified",
     "a hand with fingers splayed"),
    ("sun behind small cloud", "Travel & Places", "sky & weather", "1f324-fe0f", "fully-qualified",
     "the sun behind a small cloud"),
    ("full moon face", "Travel & Places", "sky & weather", "1f31d", "fully-qualified", "a full moon with a face"),
    ("woman’s hat", "Objects", "clothing", "1f452", "fully-qualified", "a woman's hat"),
    ("T-Rex", "Animals & Nature", "animal-reptile", "1f996", "fully-qualified", "a t-rex"),
    ("flag: Germany", "Flags", "country-flag", "1f1e9-1f1ea", "fully-qualified", "skip:flag"),
    ("chequered flag", "Flags", "flag", "1f3c1", "fully-qualified", "skip:flag"),
    ("keycap: #", "Symbols", "keycap", "23-fe0f-20e3", "fully-qualified", "skip:keycap"),
    ("A button (blood type)", "Symbols", "alphanum", "1f170-fe0f", "fully-qualified", "skip:letters"),
    ("up arrow", "Symbols", "arrow", "2b06-fe0f", "fully-qualified", "skip:symbol"),
    ("anger symbol", "Smileys & Emotion", "emotion", "1f4a2", "fully-qualified", "skip:symbol"),
    ("spade suit", "Activities", "game", "2660-fe0f", "fully-qualified", "skip:symbol"),
    ("one o’clock", "Travel & Places", "time", "1f550", "fully-qualified", "skip:clock_face"),
    ("eleven-thirty", "Travel & Places", "time", "1f566", "fully-qualified", "skip:clock_face"),
    ("waving hand: medium skin tone", "People & Body", "hand-fingers-open", "1f44b-1f3fd", "fully-qualified",
     "skip:skin_tone"),
    ("family: man, woman, boy", "People & Body", "family", "1f468-200d-1f469-200d-1f466", "fully-qualified",
     "skip:people_combination"),
    ("kiss: woman, man", "People & Body", "family", "1f469-200d-2764-fe0f-200d-1f48b-200d-1f468",
     "fully-qualified", "skip:people_combination"),
    ("light skin tone", "Component", "skin-tone", "1f3fb", "component", "skip:component"),
    ("middle finger", "People & Body", "hand-single-finger", "1f595", "fully-qualified", "skip:offensive"),
    ("red heart", "Smileys & Emotion", "heart", "2764", "unqualified", "skip:not_fully_qualified"),
]


def _emoji(name, group, subgroup, cps, status):
    text = "".join(chr(int(c, 16)) for c in cps.split("-"))
    return em.Emoji(text, cps, name, group, subgroup, status)


@pytest.mark.parametrize("name,group,subgroup,cps,status,want", TABLE, ids=[t[0] for t in TABLE])
def test_names_become_captions_or_are_skipped(name, group, subgroup, cps, status, want):
    e = _emoji(name, group, subgroup, cps, status)
    reason = em.skip_reason(e)
    if want.startswith("skip:"):
        assert reason == want[5:]
    else:
        assert reason == ""
        assert em.caption_for(e) == want


def test_articles_and_base_names():
    assert em.with_articles("person getting massage") == "a person getting a massage"
    assert em.with_articles("cloud with lightning and rain") == "a cloud with lightning and rain"
    assert em.with_articles("sheaf of rice") == "a sheaf of rice"
    assert em.with_articles("ear with hearing aid") == "an ear with a hearing aid"
    assert em.with_articles("woman with headscarf") == "a woman with a headscarf"
    assert em.base_name("woman running") == em.base_name("man running") == em.base_name("person running") == "running"
    assert em.base_name("man: beard") == em.base_name("man") == "man"
    assert em.base_name("woman and man holding hands") == em.base_name("men holding hands") == "holding hands"


# A small emoji-test.txt in Unicode's format: real code points, so the real font draws them.
MINI = """# group: Smileys & Emotion
# subgroup: face-smiling
1F600 ; fully-qualified # \U0001F600 E1.0 grinning face
1F602 ; fully-qualified # \U0001F602 E0.6 face with tears of joy
1F642 ; fully-qualified # \U0001F642 E1.0 slightly smiling face
1F609 ; fully-qualified # \U0001F609 E0.6 winking face
# subgroup: heart
1F495 ; fully-qualified # \U0001F495 E0.6 two hearts
2764 FE0F ; fully-qualified # \u2764\ufe0f E0.6 red heart
2764 ; unqualified # \u2764 E0.6 red heart
# subgroup: emotion
1F4A2 ; fully-qualified # \U0001F4A2 E0.6 anger symbol
# group: People & Body
# subgroup: hand-single-finger
1F595 ; fully-qualified # \U0001F595 E1.0 middle finger
# subgroup: person-activity
1F3C3 ; fully-qualified # \U0001F3C3 E0.6 person running
1F3C3 1F3FD ; fully-qualified # \U0001F3C3\U0001F3FD E1.0 person running: medium skin tone
1F3C3 200D 2642 FE0F ; fully-qualified # \U0001F3C3\u200d\u2642\ufe0f E4.0 man running
1F3C3 200D 2640 FE0F ; fully-qualified # \U0001F3C3\u200d\u2640\ufe0f E4.0 woman running
# subgroup: person-role
1F9D1 200D 1F692 ; fully-qualified # \U0001F9D1\u200d\U0001F692 E12.1 firefighter
1F468 200D 1F692 ; fully-qualified # \U0001F468\u200d\U0001F692 E4.0 man firefighter
1F469 200D 1F692 ; fully-qualified # \U0001F469\u200d\U0001F692 E4.0 woman firefighter
# subgroup: family
1F468 200D 1F469 200D 1F466 ; fully-qualified # \U0001F468\u200d\U0001F469\u200d\U0001F466 E2.0 family: man, woman, boy
# group: Component
# subgroup: skin-tone
1F3FB ; component # \U0001F3FB E1.0 light skin tone
# group: Animals & Nature
# subgroup: animal-mammal
1F431 ; fully-qualified # \U0001F431 E0.6 cat face
1F408 ; fully-qualified # \U0001F408 E0.7 cat
1F408 200D 2B1B ; fully-qualified # \U0001F408\u200d\u2b1b E13.0 black cat
1F43B ; fully-qualified # \U0001F43B E0.6 bear
1F43B 200D 2744 FE0F ; fully-qualified # \U0001F43B\u200d\u2744\ufe0f E13.0 polar bear
1F98C ; fully-qualified # \U0001F98C E3.0 deer
1FAF9 ; fully-qualified # \U0001FAF9 E99.0 made-up animal
# group: Food & Drink
# subgroup: food-fruit
1F34E ; fully-qualified # \U0001F34E E0.6 red apple
1F347 ; fully-qualified # \U0001F347 E0.6 grapes
1F34C ; fully-qualified # \U0001F34C E0.6 banana
# subgroup: food-prepared
1F37F ; fully-qualified # \U0001F37F E0.6 popcorn
1F35F ; fully-qualified # \U0001F35F E0.6 french fries
# group: Travel & Places
# subgroup: transport-ground
1F697 ; fully-qualified # \U0001F697 E0.6 automobile
1F698 ; fully-qualified # \U0001F698 E0.7 oncoming automobile
1F3CD FE0F ; fully-qualified # \U0001F3CD\ufe0f E0.7 motorcycle
1F68C ; fully-qualified # \U0001F68C E0.6 bus
1F6B2 ; fully-qualified # \U0001F6B2 E0.6 bicycle
# subgroup: time
1F550 ; fully-qualified # \U0001F550 E0.6 one o\u2019clock
231A ; fully-qualified # \u231a E0.6 watch
# group: Symbols
# subgroup: arrow
2B06 FE0F ; fully-qualified # \u2b06\ufe0f E0.6 up arrow
# subgroup: keycap
0023 FE0F 20E3 ; fully-qualified # #\ufe0f\u20e3 E0.6 keycap: #
# group: Flags
# subgroup: country-flag
1F1E9 1F1EA ; fully-qualified # \U0001F1E9\U0001F1EA E0.6 flag: Germany
"""
N_FACES, N_OTHER = 4, 25  # kept candidates in MINI: the smiley faces, and everything else


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    path = tmp_path_factory.mktemp("names") / "emoji-test.txt"
    path.write_text(MINI, encoding="utf-8")
    return path


def test_read_emoji_test_keeps_groups_and_statuses(mini):
    rows = em.read_emoji_test(mini)
    assert len(rows) == MINI.count(" ; ")
    cat = next(e for e in rows if e.name == "black cat")
    assert (cat.text, cat.codepoints, cat.group, cat.subgroup) == ("\U0001F408\u200d\u2b1b", "1f408-200d-2b1b",
                                                                  "Animals & Nature", "animal-mammal")
    assert [e.status for e in rows if e.name == "red heart"] == ["fully-qualified", "unqualified"]
    with pytest.raises(em.ConvertError, match="apt-get install -y fonts-noto-color-emoji unicode-data"):
        em.read_emoji_test(mini.parent / "nope.txt")


@pytest.fixture(scope="module")
def built(mini, tmp_path_factory):
    if not em.FONT.is_file():
        pytest.skip(f"no Noto Color Emoji font: {em.APT_INSTALL}")
    out = tmp_path_factory.mktemp("emoji")
    cfg = em.EmojiConfig(seed=5, train_variants=3, size=64, max_face_share=0.1)
    return out, em.convert(out, cfg, emoji_test=mini)


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@NEED_FONT
def test_scan_skips_and_groups(built):
    _, report = built
    scan = report.scan
    assert {k: len(v) for k, v in scan.skipped.items()} == {
        "clock_face": 1, "component": 1, "face_share": N_FACES - int(0.1 / 0.9 * N_OTHER), "flag": 1, "keycap": 1,
        "not_in_font": 1, "offensive": 1, "people_combination": 1, "skin_tone": 1, "symbol": 2}
    assert scan.skipped["not_in_font"] == ["made-up animal"] and scan.not_fully_qualified == 1
    group = {e.name: e.split_group for e in scan.kept}
    assert group["cat face"] == group["cat"] == group["black cat"] == "cat face"
    assert group["bear"] == group["polar bear"]
    assert group["person running"] == group["man running"] == group["woman running"]
    assert group["firefighter"] == group["man firefighter"] == group["woman firefighter"]
    assert group["automobile"] == group["oncoming automobile"]  # both "a car"
    assert group["firefighter"] != group["person running"] and group["deer"] == "deer"
    caption = {e.name: e.caption for e in scan.kept}
    assert caption["woman firefighter"] == "a female firefighter" and caption["two hearts"] == "two hearts"


@NEED_FONT
def test_split_by_group_variants_only_in_train(built):
    out, report = built
    split_of_group: dict[str, str] = {}
    for split in ("train", "val", "test"):
        d = _json(out / f"captions_{split}.json")
        per_emoji: dict[str, list[int]] = {}
        for im in d["images"]:
            assert split_of_group.setdefault(im["group"], split) == split
            per_emoji.setdefault(im["name"], []).append(im["variant"])
        want = [0, 1, 2] if split == "train" else [0]
        assert per_emoji and all(sorted(v) == want for v in per_emoji.values())
    record = _json(out / "split.json")
    assert record["counts"]["train"]["images"] == 3 * record["counts"]["train"]["emoji"]
    assert sum(c["emoji"] for c in record["counts"].values()) == len(report.scan.kept)
    assert "Open Font License" in (out / "README.md").read_text() and "Unicode" in record["licence"]


@NEED_FONT
def test_output_reads_back_with_load_captions(built):
    out, report = built
    karpathy = load_captions(out / "dataset_emoji.json", out)
    coco = [it for s in ("train", "val", "test") for it in load_coco(out / f"captions_{s}.json", out / "images", s)]
    assert sorted((it.image_id, it.split, it.image, tuple(it.captions)) for it in karpathy) == \
        sorted((it.image_id, it.split, it.image, tuple(it.captions)) for it in coco)
    assert {c for it in karpathy for c in it.captions} == {e.caption for e in report.scan.kept}
    assert all(it.group for it in load_karpathy(out / "dataset_emoji.json", out))
    for it in karpathy[:6]:
        with Image.open(it.image) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
            assert np.asarray(im).std() > 5  # a picture, not a blank frame


@NEED_FONT
def test_same_seed_same_bytes_other_seed_differs(built, mini, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    em.convert(again, em.EmojiConfig(seed=5, train_variants=3, size=64, max_face_share=0.1), emoji_test=mini)
    for name in ("captions_train.json", "captions_val.json", "captions_test.json", "dataset_emoji.json", "split.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    jpgs = sorted(p.name for p in (out / "images").glob("*.jpg"))
    assert jpgs == sorted(p.name for p in (again / "images").glob("*.jpg"))
    assert all((again / "images" / n).read_bytes() == (out / "images" / n).read_bytes() for n in jpgs)
    other = tmp_path / "other"
    em.convert(other, em.EmojiConfig(seed=6, train_variants=3, size=64, max_face_share=0.1), emoji_test=mini)
    assert (other / "dataset_emoji.json").read_bytes() != (out / "dataset_emoji.json").read_bytes()


@NEED_FONT
@NEED_NAMES
def test_real_names_file_scan():
    scan = em.scan_emoji()
    assert 1000 < len(scan.kept) < 1500
    assert {"flag", "keycap", "letters", "symbol", "skin_tone", "clock_face"} <= set(scan.skipped)
    assert not scan.skipped.get("not_in_font"), "the Debian font should draw every Emoji 15.0 emoji"
    faces = sum(e.subgroup.startswith("face-") for e in scan.kept)
    assert faces <= 0.05 * len(scan.kept) + 1
    for e in scan.kept:
        assert e.caption == e.caption.lower().strip() and ":" not in e.caption and "  " not in e.caption
    by_name = {e.name: e.caption for e in scan.kept}
    assert by_name["red apple"] == "a red apple" and by_name["polar bear"] == "a polar bear"


def test_script_prints_the_apt_hint_when_not_root(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("emoji_to_coco", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script.os, "geteuid", lambda: 1000)
    args = ["--font", str(tmp_path / "no.ttf"), "--emoji-test", str(tmp_path / "no.txt"), "--out", str(tmp_path / "o")]
    assert script.main(args) == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install -y fonts-noto-color-emoji unicode-data" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_config_is_checked():
    with pytest.raises(em.ConvertError, match="train_variants"):
        em.EmojiConfig(train_variants=0)
    with pytest.raises(em.ConvertError, match="max_face_share"):
        em.EmojiConfig(max_face_share=1.0)
    assert Path(em.FONT).name == "NotoColorEmoji.ttf"
