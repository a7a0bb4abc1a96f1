"""Build train/caption/imagenet_names.tsv: a plain English name for each of the 1000 ImageNet classes.

The captioner reads the top-K labels of EfficientNet-Lite0's ImageNet head and copies a label's
NAME into its caption, so a name must be the word a person would write there: "cat" for all five
cat breeds, "dog" for the 118 dog breeds, "coffee" for espresso, never "tench" or "tabby". The
names are derived from WordNet 3.0, which ImageNet is built on (wnid n01440764 is the noun synset
at byte offset 01440764 of data.noun), in three tiers, each listed in this file and reviewed by hand:

1. OVERRIDES: a name chosen for one class, each with a one-line reason (a photo of ImageNet's
   "trilobite" is a fossil, its "nipple" is a baby bottle, ...).
2. The basic-level category walk: the class, then its first hypernym (`@`), and so on up, until a
   synset in CATEGORIES (basic-level words, Rosch's level people name things at: "dog", "snake",
   "car", "bottle") or in KEEP (classes whose own word is already that level: "goldfish" under
   "fish", "ambulance" under "car"). A category gives its word, a kept class its own lemma.
3. Otherwise the class's own most common lemma: WordNet's sense-tag count for this sense
   (cntlist.rev), ties to the first lemma, among lemmas that read as a name (at most two words of
   letters and hyphens; no Latin binomial, i.e. no genus name first), cleaned (underscores ->
   spaces, lower case, no parenthesised part).

Inputs, both from the package registries (this script downloads and installs nothing):

    sudo apt-get install -y wordnet-base            # WordNet 3.0 database: /usr/share/wordnet
    pip download --no-deps timm==1.0.31 -d /tmp/timm  # ships the 1000 class wnids in class order

    python scripts/build_imagenet_names.py --synsets /tmp/timm/timm-1.0.31-py3-none-any.whl \\
        --out train/caption/imagenet_names.tsv [--check]

`--synsets` takes the wheel (timm/data/_info/imagenet_synsets.txt is read from the zip; timm is
never imported) or that text file. The class order is checked to be the standard one (the sorted
wnids). `--check` runs EfficientNet-Lite0 (the `train` extra) on scikit-learn's two sample photos
and prints their top-5 names, a check that the head's outputs are in this order.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDNET_DIR = Path("/usr/share/wordnet")
OUT = ROOT / "train" / "caption" / "imagenet_names.tsv"
SYNSETS_IN_WHEEL = "timm/data/_info/imagenet_synsets.txt"
N_CLASSES = 1000
HEADER = ("index", "wnid", "wordnet", "name")
NAME_RE = re.compile(r"[a-z]+(?:-[a-z]+)*(?: [a-z]+(?:-[a-z]+)*)?")  # one or two words

# Basic-level categories, keyed by WordNet synset (first lemma.n.sense number, as NLTK names
# them), each with the word a caption uses. The first of these met walking up from a class
# names it. Chosen by reading all 1000 classes' hypernym chains: a category sits at the level
# people name a photo at ("snake", not "colubrid snake" below it or "reptile" above it). Kept
# small on purpose: classes with no category above keep their own word (most artifacts,
# whose WordNet lemma is already plain: "barn", "abacus", "teapot").
CATEGORIES: dict[str, str] = {
    # fish and sea life
    "fish.n.01": "fish",
    "shark.n.01": "shark",
    "ray.n.07": "ray",
    "salmon.n.01": "salmon",
    "coral.n.04": "coral",
    "worm.n.01": "worm",
    "crab.n.01": "crab",
    "lobster.n.02": "lobster",
    "whale.n.02": "whale",
    "sea_cow.n.01": "sea cow",
    # birds: the bird words people use; everything else is "bird"
    "bird.n.01": "bird",
    "game_bird.n.01": "bird",  # grouse, quail, partridge: not below bird.n.01 by first hypernyms
    "eagle.n.01": "eagle",
    "owl.n.01": "owl",
    "hawk.n.01": "hawk",
    "parrot.n.01": "parrot",
    "duck.n.01": "duck",
    "swan.n.01": "swan",
    "stork.n.01": "stork",
    "heron.n.02": "heron",
    "penguin.n.01": "penguin",
    # reptiles and amphibians
    "salamander.n.01": "salamander",
    "newt.n.01": "newt",
    "frog.n.01": "frog",
    "turtle.n.02": "turtle",
    "lizard.n.01": "lizard",
    "chameleon.n.03": "chameleon",
    "crocodile.n.01": "crocodile",
    "alligator.n.02": "alligator",
    "dinosaur.n.01": "dinosaur",
    "snake.n.01": "snake",
    # invertebrates
    "spider.n.01": "spider",
    "beetle.n.01": "beetle",
    "butterfly.n.01": "butterfly",
    # mammals
    "kangaroo.n.01": "kangaroo",
    "dog.n.01": "dog",
    "wolf.n.01": "wolf",
    "wild_dog.n.01": "wild dog",
    "fox.n.01": "fox",
    "domestic_cat.n.01": "cat",
    "bear.n.01": "bear",
    "rabbit.n.01": "rabbit",
    "squirrel.n.01": "squirrel",
    "horse.n.01": "horse",
    "sheep.n.01": "sheep",
    "wild_sheep.n.01": "sheep",
    "goat.n.01": "goat",
    "antelope.n.01": "antelope",
    "camel.n.01": "camel",
    "sloth.n.02": "sloth",
    "lesser_ape.n.01": "monkey",
    "monkey.n.01": "monkey",
    "lemur.n.01": "lemur",
    "elephant.n.01": "elephant",
    # vehicles
    "car.n.01": "car",
    "car.n.02": "train",  # a railway car
    "train.n.01": "train",
    "locomotive.n.01": "train",
    "truck.n.01": "truck",
    "van.n.05": "van",
    "bus.n.01": "bus",
    "bicycle.n.01": "bicycle",
    "motorcycle.n.01": "motorcycle",
    "cart.n.01": "cart",
    "sled.n.01": "sled",
    "boat.n.01": "boat",
    "ship.n.01": "ship",
    "sailing_vessel.n.01": "sailboat",
    "heavier-than-air_craft.n.01": "plane",
    # household things, clothes, tools
    "clock.n.01": "clock",
    "watch.n.01": "watch",
    "telephone.n.01": "phone",
    "computer.n.01": "computer",
    "keyboard.n.01": "keyboard",
    "camera.n.01": "camera",
    "guitar.n.01": "guitar",
    "piano.n.01": "piano",
    "ball.n.01": "ball",
    "chair.n.01": "chair",
    "table.n.02": "table",
    "sofa.n.01": "couch",
    "bed.n.01": "bed",
    "cabinet.n.01": "cabinet",
    "chest_of_drawers.n.01": "dresser",
    "bottle.n.01": "bottle",
    "jug.n.01": "jug",
    "glass.n.02": "glass",
    "mug.n.04": "cup",
    "bowl.n.03": "bowl",
    "pan.n.01": "pan",
    "spoon.n.01": "spoon",
    "knife.n.01": "knife",
    "pen.n.01": "pen",
    "lock.n.01": "lock",
    "mirror.n.01": "mirror",
    "fan.n.01": "fan",
    "basket.n.01": "basket",
    "towel.n.01": "towel",
    "curtain.n.01": "curtain",
    "rug.n.01": "rug",
    "door.n.01": "door",
    "fence.n.01": "fence",
    "bridge.n.01": "bridge",
    "roof.n.01": "roof",
    "tent.n.01": "tent",
    "shop.n.01": "shop",
    "compass.n.01": "compass",
    "coffee_maker.n.01": "coffee maker",
    "hat.n.01": "hat",
    "cap.n.01": "cap",
    "helmet.n.01": "helmet",
    "helmet.n.02": "helmet",
    "necktie.n.01": "tie",
    "scarf.n.01": "scarf",
    "shoe.n.01": "shoe",
    "boot.n.01": "boot",
    "shirt.n.01": "shirt",
    "sweater.n.01": "sweater",
    "coat.n.01": "coat",
    "robe.n.01": "robe",
    "gown.n.05": "robe",
    "skirt.n.02": "skirt",
    "swimsuit.n.01": "swimsuit",
    "body_armor.n.01": "armor",
    # food and nature
    "loaf_of_bread.n.01": "bread",
    "hamburger.n.01": "hamburger",
    "cabbage.n.01": "cabbage",
    "squash.n.02": "squash",
    "apple.n.01": "apple",
    "soup.n.01": "soup",
    "wine.n.01": "wine",
    "coffee.n.01": "coffee",
    "mountain.n.01": "mountain",
    "orchid.n.01": "orchid",
    "fungus.n.01": "mushroom",
}

# Classes below a category whose own lemma is already the word people say: the walk stops
# there and keeps it ("goldfish", not "fish"; "desk", not "table").
KEEP: frozenset[str] = frozenset({
    "goldfish.n.01", "stingray.n.01", "eel.n.02",
    "ostrich.n.02", "robin.n.02", "magpie.n.01", "vulture.n.01", "peacock.n.02", "hummingbird.n.01",
    "toucan.n.01", "crane.n.05", "flamingo.n.01", "pelican.n.01", "albatross.n.02", "goose.n.01",
    "coyote.n.01", "baboon.n.01",
    "ladybug.n.01",
    "ambulance.n.01", "canoe.n.01", "gondola.n.02", "submarine.n.01",
    "laptop.n.01", "slide_rule.n.01",
    "desk.n.01", "pool_table.n.01", "throne.n.01", "stone_wall.n.01", "dome.n.04",
    "teapot.n.01", "wok.n.01", "sandal.n.01", "bikini.n.02", "kimono.n.01",
    "bagel.n.01", "zucchini.n.02", "volcano.n.02",
})

# One class at a time, where neither rule gives a plain name: (name, reason).
OVERRIDES: dict[str, tuple[str, str]] = {
    "cock.n.05": ("rooster", "the word people use (and 'cock' is not one for a caption)"),
    "hen.n.02": ("chicken", "ImageNet's hen photos are chickens"),
    "tusker.n.01": ("elephant", "a tusker is an elephant (its first hypernym is just 'mammal')"),
    "trilobite.n.01": ("fossil", "ImageNet's trilobite photos are fossils"),
    "harvestman.n.01": ("spider", "people call a daddy longlegs a spider"),
    "chiton.n.02": ("shell", "a rare mollusc, seen as a shell on a rock"),
    "chambered_nautilus.n.01": ("shell", "the photos are mostly its spiral shell"),
    "isopod.n.01": ("bug", "woodlice and pill bugs: people say bug"),
    "ox.n.01": ("cow", "ImageNet's ox photos are cattle"),
    "jaguar.n.01": ("jaguar", "the sense counts prefer 'panther'"),
    "polecat.n.02": ("ferret", "a polecat looks like, and is called, a ferret"),
    "black-footed_ferret.n.01": ("ferret", "its other lemmas are longer or Latin"),
    "lesser_panda.n.01": ("red panda", "the current common name"),
    "giant_panda.n.01": ("panda", "the word people use"),
    "walking_stick.n.02": ("stick insect", "'walking stick' reads as a cane"),
    "leafhopper.n.01": ("insect", "a rare insect word"),
    "lacewing.n.01": ("insect", "a rare insect word"),
    "damselfly.n.01": ("dragonfly", "people call it a dragonfly"),
    "anemone_fish.n.01": ("clownfish", "the word people use"),
    "amphibian.n.01": ("vehicle", "'amphibian' reads as the animal; the photos are amphibious vehicles"),
    "apiary.n.01": ("beehive", "the word people use"),
    "assault_rifle.n.01": ("rifle", "its first hypernyms are technical (automatic rifle, autoloader)"),
    "backpack.n.01": ("backpack", "the sense counts prefer 'knapsack'"),
    "bannister.n.02": ("railing", "the sense counts prefer 'balustrade'"),
    "barrow.n.03": ("wheelbarrow", "'barrow' is the first lemma; people say wheelbarrow"),
    "bathtub.n.01": ("bathtub", "the sense counts prefer 'tub', another class's word"),
    "beacon.n.03": ("lighthouse", "the sense counts prefer 'beacon light'"),
    "bell_cote.n.01": ("bell tower", "the word people use"),
    "brassiere.n.01": ("bra", "the word people use"),
    "breastplate.n.01": ("armor", "as chain mail and cuirass"),
    "bucket.n.01": ("bucket", "the sense counts prefer 'pail'"),
    "caldron.n.01": ("pot", "the word people use"),
    "cornet.n.01": ("trumpet", "the sense counts prefer 'horn'; the photos are trumpets"),
    "file.n.03": ("cabinet", "'file' reads as a document or a tool"),
    "fire_engine.n.01": ("fire truck", "the word people use, more telling than 'truck'"),
    "grocery_store.n.01": ("grocery store", "the sense counts prefer 'market'"),
    "hand_blower.n.01": ("hair dryer", "the word people use"),
    "hook.n.04": ("hook", "the sense counts prefer 'claw'"),
    "jack-o'-lantern.n.02": ("pumpkin", "a carved pumpkin; lemmas have an apostrophe"),
    "jean.n.01": ("jeans", "people say jeans"),
    "jinrikisha.n.01": ("rickshaw", "the word people use"),
    "loupe.n.01": ("magnifying glass", "the word people use"),
    "lumbermill.n.01": ("sawmill", "the word people use"),
    "maillot.n.02": ("leotard", "this maillot is tights/leotard, not the swimsuit class"),
    "megalith.n.01": ("monument", "standing stones"),
    "motor_scooter.n.01": ("scooter", "the word people use"),
    "nipple.n.02": ("bottle", "the photos are baby bottles"),
    "notebook.n.02": ("laptop", "'notebook' reads as paper"),
    "pajama.n.02": ("pajamas", "people say pajamas"),
    "patio.n.01": ("patio", "the sense counts prefer 'terrace'"),
    "pick.n.05": ("guitar pick", "'pick' alone reads as the tool"),
    "plane.n.05": ("hand plane", "'plane' is the airplane's name"),
    "pot.n.04": ("flowerpot", "the sense counts prefer 'pot' (a cooking pot)"),
    "potter's_wheel.n.01": ("pottery wheel", "its lemma has an apostrophe"),
    "punching_bag.n.02": ("punching bag", "its first hypernym is 'ball'"),
    "refrigerator.n.01": ("refrigerator", "the sense counts prefer 'icebox'"),
    "shoji.n.01": ("screen", "a Japanese word; a paper screen"),
    "slot.n.07": ("slot machine", "'slot' alone is not the machine"),
    "stupa.n.01": ("temple", "the word people use"),
    "sunglass.n.01": ("sunglasses", "the photos are sunglasses"),
    "swab.n.02": ("mop", "the word people use"),
    "teddy.n.01": ("teddy bear", "the word people use"),
    "typewriter_keyboard.n.01": ("typewriter", "the photos are typewriters"),
    "vault.n.03": ("ceiling", "a vaulted ceiling"),
    "washbasin.n.02": ("sink", "the word people use"),
    "washer.n.03": ("washing machine", "'washer' reads as a ring"),
    "web_site.n.01": ("website", "its first hypernym is 'computer'"),
    "book_jacket.n.01": ("book", "the photos are book covers"),
    "carbonara.n.01": ("pasta", "the word people use"),
    "cardoon.n.02": ("vegetable", "a rare vegetable"),
    "lakeside.n.01": ("lake", "the photos are lakes"),
    "promontory.n.01": ("coast", "the sense counts prefer 'headland'"),
    "seashore.n.01": ("beach", "the sense counts prefer 'coast'; the photos are beaches"),
    "ballplayer.n.01": ("baseball player", "'ballplayer' is dated"),
    "rapeseed.n.01": ("flower", "the photos are fields of yellow flowers"),
    "hip.n.05": ("berry", "'hip' reads as the body part"),
    "buckeye.n.01": ("chestnut", "the word people use"),
    "ear.n.05": ("corn", "an ear of corn"),
    "toilet_tissue.n.01": ("toilet paper", "the word people use"),
}


@dataclass(frozen=True)
class Synset:
    """One line of data.noun: offset, lexicographer file, words with their lex ids, hypernyms."""

    offset: str
    lex_filenum: int
    words: tuple[tuple[str, int], ...]  # (word as written, lex_id)
    hypernyms: tuple[str, ...]  # offsets of `@` pointers (then `@i`), in file order
    gloss: str

    @property
    def first_lemma(self) -> str:
        return self.words[0][0]


def parse_data_line(line: str) -> Synset | None:
    """One data.noun line -> Synset (wndb(5)); None for the licence header (lines starting '  ')."""
    if line.startswith(" ") or not line.strip():
        return None
    head, _, gloss = line.partition(" | ")
    f = head.split()
    n_words = int(f[3], 16)
    words = tuple((f[4 + 2 * i], int(f[5 + 2 * i], 16)) for i in range(n_words))
    at = 4 + 2 * n_words
    n_ptrs = int(f[at])
    ptrs = [f[at + 1 + 4 * j: at + 5 + 4 * j] for j in range(n_ptrs)]
    hyper = [p[1] for p in ptrs if p[0] == "@" and p[2] == "n"] + [p[1] for p in ptrs if p[0] == "@i" and p[2] == "n"]
    return Synset(f[0], int(f[1]), words, tuple(hyper), gloss.strip())


def read_data_noun(path: Path) -> dict[str, Synset]:
    """All noun synsets of data.noun, by offset."""
    out = {}
    with path.open(encoding="latin-1") as f:
        for line in f:
            if (s := parse_data_line(line)) is not None:
                out[s.offset] = s
    return out


def read_index_noun(path: Path) -> dict[str, list[str]]:
    """index.noun: lemma (lower case) -> its synset offsets in sense-number order."""
    out = {}
    with path.open(encoding="latin-1") as f:
        for line in f:
            if line.startswith(" "):
                continue
            fields = line.split()
            n_synsets, n_ptrs = int(fields[2]), int(fields[3])
            out[fields[0]] = fields[4 + n_ptrs + 2:][:n_synsets]
    return out


def read_sense_counts(path: Path) -> dict[str, int]:
    """cntlist.rev: sense key (lemma%1:lex_filenum:lex_id::) -> semantic-concordance tag count."""
    out = {}
    if path.is_file():
        with path.open(encoding="latin-1") as f:
            for line in f:
                key, _, count = line.split()
                out[key] = int(count)
    return out


def read_wnids(path: Path) -> list[str]:
    """The 1000 class wnids in class order, from timm's wheel or the text file inside it."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            text = z.read(SYNSETS_IN_WHEEL).decode("ascii")
    else:
        text = path.read_text(encoding="ascii")
    wnids = text.split()
    bad = [w for w in wnids if not re.fullmatch(r"n\d{8}", w)]
    if len(wnids) != N_CLASSES or bad or len(set(wnids)) != N_CLASSES:
        raise ValueError(f"{path}: expected {N_CLASSES} distinct wnids, got {len(wnids)} ({bad[:3]} malformed)")
    if wnids != sorted(wnids):
        raise ValueError(f"{path}: wnids are not in the standard (sorted) ImageNet-1k class order")
    return wnids


def clean(lemma: str) -> str:
    """WordNet lemma -> caption words: underscores to spaces, lower case, no parenthesised part."""
    return re.sub(r"\s+", " ", re.sub(r"\(.*?\)", "", lemma.replace("_", " "))).strip().lower()


def is_plain(lemma: str, genera: frozenset[str] = frozenset()) -> bool:
    """Whether a lemma reads as a caption name: one or two words once cleaned, and no Latin
    binomial (its first word a genus: Tinca_tinca; "French_horn" is fine)."""
    parts = lemma.split("_")
    return NAME_RE.fullmatch(clean(lemma)) is not None and not (len(parts) > 1 and parts[0] in genera)


class WordNet:
    """The parts of WordNet 3.0's noun database the names need."""

    def __init__(self, directory: Path):
        self.synsets = read_data_noun(directory / "data.noun")
        self.index = read_index_noun(directory / "index.noun")
        self.counts = read_sense_counts(directory / "cntlist.rev")
        # genus synsets have a lemma "genus_Tinca": "Tinca" starts a binomial
        self.genera = frozenset(w[len("genus_"):] for s in self.synsets.values() for w, _ in s.words
                                if w.startswith("genus_"))

    def name(self, offset: str) -> str:
        """NLTK-style synset name: first lemma (lower case) . n . sense number of that lemma."""
        lemma = self.synsets[offset].first_lemma.lower()
        return f"{lemma}.n.{self.index[lemma].index(offset) + 1:02d}"

    def chain(self, offset: str) -> list[str]:
        """The synset and its first-hypernym ancestors, nearest first."""
        out = [offset]
        while (up := self.synsets[out[-1]].hypernyms) and up[0] not in out:
            out.append(up[0])
        return out

    def count(self, synset: Synset, word: str, lex_id: int) -> int:
        return self.counts.get(f"{word.lower()}%1:{synset.lex_filenum:02d}:{lex_id:02d}::", 0)

    def own_lemma(self, offset: str) -> str:
        """The most tagged lemma of this sense, ties to the first, among those that read as names."""
        s = self.synsets[offset]
        plain = [(w, i) for w, i in s.words if is_plain(w, self.genera)] or list(s.words)
        best = max(plain, key=lambda wi: self.count(s, *wi))  # max keeps the first of equals
        return clean(best[0])


@dataclass(frozen=True)
class Named:
    """One class's row, with where its name came from (for the printed summary and review)."""

    index: int
    wnid: str
    wordnet: str
    name: str
    source: str  # "override", "category", "kept", "own"
    via: str  # the synset that gave the name


def choose_names(wn: WordNet, wnids: list[str]) -> list[Named]:
    """Each class's plain name (tiers in the module docstring)."""
    names = {wn.name(s.offset): s.offset for s in (wn.synsets[w[1:]] for w in wnids)}
    ancestors = {wn.name(o): o for w in wnids for o in wn.chain(w[1:])}
    unknown = sorted(k for k in [*CATEGORIES, *KEEP] if k not in ancestors)
    unknown += sorted(k for k in OVERRIDES if k not in names)
    if unknown:
        raise ValueError(f"curated synsets that are no class or ancestor: {unknown}")
    out = []
    for i, wnid in enumerate(wnids):
        offset = wnid[1:]
        key = wn.name(offset)
        if key in OVERRIDES:
            name, source, via = OVERRIDES[key][0], "override", key
        else:
            name, source, via = wn.own_lemma(offset), "own", key
            for up in wn.chain(offset):
                up_key = wn.name(up)
                if up_key in KEEP:
                    name, source, via = wn.own_lemma(up), "kept", up_key
                    break
                if up_key in CATEGORIES:
                    name, source, via = CATEGORIES[up_key], "category", up_key
                    break
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"class {i} ({key}): {name!r} is not one or two lower-case words")
        out.append(Named(i, wnid, wn.synsets[offset].first_lemma, name, source, via))
    return out


def write_tsv(rows: list[Named], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(HEADER)
        w.writerows((r.index, r.wnid, r.wordnet, r.name) for r in rows)


def check_with_classifier(rows: list[Named]) -> None:
    """EfficientNet-Lite0's top-5 names on scikit-learn's two sample photos (a temple, a flower)."""
    import numpy as np
    import torch
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from edge_s2s.train.caption.image_encoder import load_lite0

    net = load_lite0()
    if net._fc.out_features != N_CLASSES:
        raise ValueError(f"the classifier head has {net._fc.out_features} outputs, not {N_CLASSES}")
    data = load_sample_images()
    for file, image in zip(data.filenames, data.images):
        x = np.asarray(Image.fromarray(image).resize((224, 224), Image.BICUBIC), dtype=np.float32)
        x = torch.from_numpy((x - 127.0) / 128.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            probs = net(x).softmax(-1)[0]
        top = probs.topk(5)
        print(f"{Path(file).name}: " + ", ".join(f"{rows[int(i)].wordnet} -> {rows[int(i)].name} ({float(p):.2f})"
                                                for p, i in zip(top.values, top.indices)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synsets", type=Path, required=True,
                    help="timm's wheel (pip download --no-deps timm) or its imagenet_synsets.txt")
    ap.add_argument("--wordnet", type=Path, default=WORDNET_DIR,
                    help="WordNet 3.0 database folder (data.noun, index.noun, cntlist.rev)")
    ap.add_argument("--out", type=Path, default=OUT, help="the TSV to write")
    ap.add_argument("--check", action="store_true", help="classify two sample photos and print the top names")
    args = ap.parse_args(argv)

    if not (args.wordnet / "data.noun").is_file():
        print(f"error: {args.wordnet / 'data.noun'} not found: sudo apt-get install -y wordnet-base",
              file=sys.stderr)
        return 1
    try:
        wnids = read_wnids(args.synsets)
        wn = WordNet(args.wordnet)
        missing = [w for w in wnids if w[1:] not in wn.synsets]
        if missing:
            raise ValueError(f"wnids not in {args.wordnet}/data.noun (not WordNet 3.0?): {missing[:5]}")
        rows = choose_names(wn, wnids)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    write_tsv(rows, args.out)
    by_source = Counter(r.source for r in rows)
    print(f"wrote {args.out}: {len(rows)} classes, {len({r.name for r in rows})} distinct names; "
          + ", ".join(f"{k} {by_source[k]}" for k in ("category", "kept", "own", "override")))
    if args.check:
        check_with_classifier(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
