"""Turn Noto Color Emoji into a captioning data set (COCO + Karpathy JSON, JPEG frames).

What and why: the Tux Paint stamps give ~1,000 captions; the emoji add ~1,200 more pictures
of everyday things (animals, food, vehicles, tools, clothes, buildings, people doing things)
with short captions a person would write ("a red apple", "a woman surfing", "two hearts"),
so the captioner sees the same sentence shapes over many more object names. Both sources
are Debian packages that install offline:

- pictures: `fonts-noto-color-emoji` (Noto Color Emoji, CBDT colour bitmaps, SIL Open Font
  Licence 1.1, (c) Google Inc.), drawn with Pillow at size 109, the only size CBDT bitmaps
  come in (136x128 px per emoji; raqm shapes ZWJ sequences into one glyph);
- names: `unicode-data`'s `emoji-test.txt` (Unicode 15.0, Unicode License, (c) Unicode, Inc.):
  the CLDR short names ("red apple", "man firefighter") with each emoji's group and subgroup
  and its qualification status. Python's `unicodedata.name()` was not used: it names single
  code points only (no "polar bear" = bear + ZWJ + snowflake), has no groups to filter by,
  and its formal names are further from speech ("RACING MOTORCYCLE", "AUTOMOBILE").

How: only fully-qualified emoji are read (the unqualified forms are the same pictures).
Each name becomes a caption by a small table of rewrites for names that do not describe the
picture ("cooking" -> "an egg in a frying pan", "automobile" -> "a car", "tennis" -> "a
tennis ball"), then rules: hair variants ("woman: red hair" -> "a woman with red hair"),
animal heads are the animal ("cat face" -> "a cat"), "oncoming" views drop the word, and
English articles go in front of singular countable nouns and their objects ("person rowing
boat" -> "a person rowing a boat"; plurals, mass nouns and number words take none:
"french fries", "popcorn", "two hearts"). Captions are lower case without a full stop.

Skipped, each counted by reason in split.json and the README:

- `flag`: the Flags group (258 country and 3 subdivision flags are a national-symbol task
  and would swamp the rest; the few others go with them);
- `keycap`, `letters`: keycaps and the alphanum subgroup (letters, "squared" and "circled"
  signs, Japanese buttons): text, not pictures;
- `symbol`: the rest of the Symbols group (arrows, zodiac, religion, signs, warnings,
  geometric shapes, punctuation, currency, av-symbols) and `SYMBOL_LIKE` names elsewhere
  (comic marks such as "anger symbol" and "ZZZ", card suits, speaker-volume icons);
- `clock_face`: "one o'clock" .. "twelve-thirty", 24 near-identical dials;
- `skin_tone`, `component`: the skin-tone variants (the base emoji, in the default yellow,
  is kept) and the bare skin-tone and hair swatches;
- `people_combination`: "family: man, woman, boy", "kiss: woman, man" and the like: lists
  of members, not captions (the base "family", "kiss", "couple with heart" are kept);
- `offensive`: the middle finger;
- `not_in_font`: a sequence the font does not draw as one picture;
- `not_fully_qualified`: counted only, never pictures of their own;
- `face_share`: smiley faces (the face-* subgroups) beyond `max_face_share` of the kept
  emoji (default 5%), dropped by a seeded draw: emotions are fine captions, but the 115
  near-identical yellow discs would otherwise be one emoji in eleven.

Splits are by group, never by image (`core.splits.assign_splits`): an emoji joins the group
of every emoji with the same caption ("cat face" and "cat" both say "a cat"), the same base
name with gender, person and "oncoming" words and qualifiers removed ("man running",
"woman running", "person running"; "man" and "man: beard"), or the same first code point of a
ZWJ sequence that does not start with a person ("black cat" and "cat", "polar bear" and
"bear"). Train emoji get `train_variants` composites, val/test emoji one, all on the Tux
Paint converter's backgrounds (`composite.py`). Everything random derives from the seed and
the emoji's code points, so a seed gives byte-identical JSON (and images, with one Pillow).

Licences: the composites are renderings of Noto Color Emoji; the OFL governs the font
software, not pictures made with it, and the README written beside the data says so and
credits Google. The captions derive from Unicode's data files, whose licence asks that
Unicode's copyright and permission notice go with copies: the README carries the pointer.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...runtime.errors import EdgeS2SError
from ...runtime.text import tokenize
from ..core.splits import FRACTIONS, assign_splits, group_roots
from .composite import (
    COVER,
    JPEG_QUALITY,
    Frame,
    composite,
    crop_to_alpha,
    dump_json,
    image_seed,
    package_version,
    remove_stale,
    render_all,
    write_caption_files,
)

FONT_PACKAGE = "fonts-noto-color-emoji"
NAMES_PACKAGE = "unicode-data"
PACKAGES = (FONT_PACKAGE, NAMES_PACKAGE)
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
APT_INSTALL = f"sudo apt-get install -y {' '.join(PACKAGES)}"
FONT_SIZE = 109  # CBDT bitmaps exist at this size only
LICENCE = ("Pictures rendered from Noto Color Emoji, (c) Google Inc., SIL Open Font License 1.1 "
           f"(/usr/share/doc/{FONT_PACKAGE}/copyright); captions derived from the CLDR short names in "
           "Unicode's emoji-test.txt, (c) Unicode, Inc., Unicode License "
           f"(/usr/share/doc/{NAMES_PACKAGE}/copyright, https://www.unicode.org/terms_of_use.html).")

SKIN_TONES = range(0x1F3FB, 0x1F400)
ZWJ = 0x200D
PERSON_BASES = {0x1F9D1, 0x1F468, 0x1F469}  # person, man, woman: ZWJ roles start with these
_LINE_RE = re.compile(r"^([0-9A-F ]+?)\s*;\s*([a-z-]+)\s*#\s*\S+\s+(E\d+\.\d+)\s+(.+?)\s*$")
_CLOCK_RE = re.compile(r"o['’]clock$|-thirty$")
_COMBINATION_RE = re.compile(r"^(family|kiss|couple with heart): ")
_HAIR_RE = re.compile(r"^(man|woman|person): (.+)$")
_ROLE_RE = re.compile(r"^(man|woman) (?!in |with |wearing |feeding )(.+)$")

SYMBOL_LIKE = frozenset({
    "hundred points", "anger symbol", "collision", "dizzy", "dashing away", "sweat droplets", "speech balloon",
    "eye in speech bubble", "left speech bubble", "right anger bubble", "thought balloon", "ZZZ",
    "heart exclamation", "heart decoration", "spade suit", "heart suit", "diamond suit", "club suit",
    "muted speaker", "speaker low volume", "speaker medium volume", "speaker high volume", "bell with slash",
    "musical note", "musical notes", "high voltage", "sparkles", "hot springs", "speaking head",
    "bust in silhouette", "busts in silhouette", "mobile phone with arrow", "envelope with arrow",
    "incoming envelope", "chart increasing with yen", "e-mail", "cyclone",
})
OFFENSIVE = frozenset({"middle finger"})

# Names that do not say what the picture shows, or read badly with the rules below.
OVERRIDES: dict[str, str] = {
    # people and body
    "rolling on the floor laughing": "a face rolling on the floor laughing",
    "star-struck": "a star-struck face",
    "face with tongue": "a face sticking out its tongue",
    "face with hand over mouth": "a face with a hand over its mouth",
    "face with open eyes and hand over mouth": "a face with open eyes and a hand over its mouth",
    "face with steam from nose": "a face with steam from its nose",
    "woman and man holding hands": "a woman and a man holding hands",
    "kiss": "two people kissing",
    "breast-feeding": "a woman breast-feeding a baby",
    "person in bed": "a person in bed",
    "person in lotus position": "a person in the lotus position",
    "man in lotus position": "a man in the lotus position",
    "woman in lotus position": "a woman in the lotus position",
    "horse racing": "a jockey on a racehorse",
    "Santa Claus": "santa claus",
    "Mrs. Claus": "mrs. claus",
    "mx claus": "a person dressed as santa claus",
    "thumbs up": "a thumbs up",
    "thumbs down": "a thumbs down",
    "OK hand": "a hand making the ok sign",
    "sign of the horns": "a hand making the sign of the horns",
    "love-you gesture": "a hand making the love-you gesture",
    "palms up together": "two palms up together",
    "heart hands": "hands making a heart",
    "raised back of hand": "a raised hand",
    "call me hand": "a hand making the call me sign",
    "biting lip": "a mouth biting its lip",
    "selfie": "a hand taking a selfie",
    "face with symbols on mouth": "a face with symbols over its mouth",
    "nail polish": "a hand with nail polish",
    "backhand index pointing left": "a hand pointing left",
    "backhand index pointing right": "a hand pointing right",
    "backhand index pointing up": "a hand pointing up",
    "backhand index pointing down": "a hand pointing down",
    "index pointing up": "a hand pointing up",
    "index pointing at the viewer": "a hand pointing at the viewer",
    "rightwards hand": "a hand facing right",
    "leftwards hand": "a hand facing left",
    "palm down hand": "a hand with the palm down",
    "palm up hand": "a hand with the palm up",
    "leftwards pushing hand": "a hand pushing left",
    "rightwards pushing hand": "a hand pushing right",
    # animals and plants
    "bug": "a caterpillar",
    "lady beetle": "a ladybug",
    "front-facing baby chick": "a baby chick",
    "T-Rex": "a t-rex",
    "leaf fluttering in wind": "leaves blowing in the wind",
    "four leaf clover": "a four leaf clover",
    "fallen leaf": "fallen leaves",
    # food and drink
    "bread": "a loaf of bread",
    "baguette bread": "a baguette",
    "cheese wedge": "a wedge of cheese",
    "pizza": "a slice of pizza",
    "popcorn": "a box of popcorn",
    "salt": "a salt shaker",
    "cooking": "an egg in a frying pan",
    "canned food": "a can of food",
    "steaming bowl": "a bowl of noodles",
    "spaghetti": "a plate of spaghetti",
    "garlic": "a garlic bulb",
    "leafy green": "a leafy green vegetable",
    "custard": "a custard pudding",
    "shaved ice": "a bowl of shaved ice",
    "sake": "a bottle of sake",
    "mate": "a cup of mate",
    "ice": "an ice cube",
    "oden": "oden on a skewer",
    "pouring liquid": "a glass pouring liquid",
    "fork and knife with plate": "a fork and knife with a plate",
    # places, sky and weather
    "building construction": "a building under construction",
    "wedding": "a wedding chapel",
    "Tokyo tower": "tokyo tower",
    "Statue of Liberty": "the statue of liberty",
    "mount fuji": "mount fuji",
    "kaaba": "the kaaba",
    "moai": "a moai statue",
    "camping": "a tent and a campfire",
    "foggy": "a bridge in the fog",
    "sunset": "a city at sunset",
    "globe showing Europe-Africa": "a globe showing europe and africa",
    "globe showing Americas": "a globe showing the americas",
    "globe showing Asia-Australia": "a globe showing asia and australia",
    "night with stars": "a city at night",
    "milky way": "the milky way",
    "wind face": "a face blowing wind",
    "water wave": "a wave",
    "umbrella on ground": "an umbrella on the ground",
    "brick": "a brick wall",
    "wood": "a log",
    "sun with face": "the sun with a face",
    # transport
    "automobile": "a car",
    "metro": "a metro train",
    "light rail": "a light rail train",
    "station": "a tram at a station",
    "construction": "a construction barrier",
    "airplane departure": "an airplane taking off",
    "airplane arrival": "an airplane landing",
    "hourglass done": "an hourglass",
    "hourglass not done": "an hourglass",
    # activities
    "1st place medal": "a gold medal",
    "2nd place medal": "a silver medal",
    "3rd place medal": "a bronze medal",
    "tennis": "a tennis ball",
    "bowling": "a bowling ball and pins",
    "cricket game": "a cricket bat and ball",
    "field hockey": "a field hockey stick and ball",
    "ice hockey": "an ice hockey stick and puck",
    "lacrosse": "a lacrosse stick and ball",
    "badminton": "a badminton racket and shuttlecock",
    "ping pong": "a ping pong paddle and ball",
    "flag in hole": "a golf flag in a hole",
    "bullseye": "a dart in a target",
    "pool 8 ball": "a pool ball",
    "video game": "a game controller",
    "game die": "a die",
    "joker": "a joker card",
    "mahjong red dragon": "a mahjong tile",
    "flower playing cards": "flower playing cards",
    "performing arts": "theatre masks",
    "thread": "a spool of thread",
    "yarn": "a ball of yarn",
    # objects
    "woman’s clothes": "a woman's blouse",
    "billed cap": "a cap",
    "headphone": "headphones",
    "locked": "a locked padlock",
    "unlocked": "an unlocked padlock",
    "locked with pen": "a padlock and a pen",
    "locked with key": "a padlock and a key",
    "black nib": "a pen nib",
    "magnifying glass tilted left": "a magnifying glass",
    "magnifying glass tilted right": "a magnifying glass",
    "page facing up": "a page",
    "roll of paper": "a roll of toilet paper",
    "film frames": "a film strip",
    "optical disk": "a cd",
    "link": "a chain link",
    "soap": "a bar of soap",
    "pick": "a pickaxe",
    "dna": "a dna double helix",
    "x-ray": "an x-ray",
    "satellite antenna": "a satellite dish",
}

NUMBERS = frozenset(["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])
PLURALS = frozenset(["people", "men", "women", "children", "feet", "teeth", "mice", "geese", "clothes", "fries"])
SINGULAR_S = frozenset(["bus", "trolleybus", "minibus", "rhinoceros", "lens"])
MASS = frozenset([
    "bread", "rice", "spaghetti", "sushi", "oden", "popcorn", "butter", "salt", "bacon", "falafel", "fondue", "meat",
    "steam", "sweat", "lightning", "rain", "snow", "fire", "fog", "ice", "luggage", "money", "wood", "night", "dusk",
    "food", "fear", "joy", "poo", "polish", "milk", "cream", "liquid", "water", "tea", "broccoli"
])
THE_NOUNS = frozenset({"sun"})
# words after which the object noun phrase takes an article ("a person in a tuxedo")
OBJECT_WORDS = frozenset([
    "with", "without", "in", "on", "behind", "over", "under", "getting", "feeding", "taking", "rowing", "bouncing",
    "wearing", "raising", "tipping"
])
STOP_WORDS = OBJECT_WORDS | {"of", "at", "from", "for", "and"}
NOT_PARTICIPLES = frozenset([
    "building", "ring", "wing", "king", "string", "ceiling", "wedding", "clothing", "evening", "pudding"
])
_A_BEFORE = ("uni", "use", "eu", "ewe", "one", "ufo")  # vowel letters said with a consonant sound
_GENDER_WORDS = re.compile(r"\b(man|woman|person|men|women|people|and|oncoming)\b")


class ConvertError(EdgeS2SError):
    """The font, the names file or a needed package is missing (message names the fix)."""


@dataclass
class Emoji:
    text: str  # the fully-qualified sequence, as drawn
    codepoints: str  # "1f408-200d-2b1b"
    name: str  # CLDR short name
    group: str  # emoji-test.txt group ("Animals & Nature")
    subgroup: str  # and subgroup ("animal-mammal")
    status: str = "fully-qualified"
    caption: str = ""
    split_group: str = ""  # emoji split together (see the module docstring)


@dataclass
class Scan:
    kept: list[Emoji]
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> names, in file order
    not_fully_qualified: int = 0


@dataclass
class EmojiConfig:
    """One conversion: seed for splits, draws and composites; composites per train emoji; frame side."""

    seed: int = 13
    train_variants: int = 4
    size: int = 256
    workers: int = 1
    max_face_share: float = 0.05  # smiley faces at most this fraction of the kept emoji
    fractions: dict[str, float] = field(default_factory=lambda: dict(FRACTIONS))

    def __post_init__(self) -> None:
        if self.train_variants < 1 or self.size < 32 or self.workers < 1:
            raise ConvertError(f"train_variants={self.train_variants}, size={self.size}, workers={self.workers}: "
                               "pass train_variants >= 1, size >= 32 and workers >= 1")
        if not 0.0 < self.max_face_share < 1.0:
            raise ConvertError(f"max_face_share={self.max_face_share}: pass a fraction between 0 and 1")


# ---------------------------------------------------------------- names -> captions


def read_emoji_test(path: str | Path = EMOJI_TEST) -> list[Emoji]:
    """Every emoji line of emoji-test.txt (all statuses), in file order, with group and subgroup."""
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: no emoji names file: {APT_INSTALL}")
    out: list[Emoji] = []
    group = subgroup = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif (m := _LINE_RE.match(line)) is not None:
            cps = [int(c, 16) for c in m[1].split()]
            out.append(Emoji("".join(map(chr, cps)), "-".join(f"{c:x}" for c in cps), m[4], group, subgroup, m[2]))
    if not out:
        raise ConvertError(f"{path}: no emoji lines: pass Unicode's emoji-test.txt ({APT_INSTALL})")
    return out


def skip_reason(e: Emoji) -> str:
    """Why `e` is not a caption pair ("" when it may be one); see the module docstring."""
    cps = [int(c, 16) for c in e.codepoints.split("-")]
    if e.status == "component" or e.group == "Component":
        return "component"
    if e.status != "fully-qualified":
        return "not_fully_qualified"
    if any(c in SKIN_TONES for c in cps):
        return "skin_tone"
    if e.group == "Flags":
        return "flag"
    if e.subgroup == "keycap":
        return "keycap"
    if e.subgroup == "alphanum":
        return "letters"
    if e.group == "Symbols" or e.name in SYMBOL_LIKE:
        return "symbol"
    if e.subgroup == "time" and _CLOCK_RE.search(e.name):
        return "clock_face"
    if _COMBINATION_RE.match(e.name):
        return "people_combination"
    if e.name in OFFENSIVE:
        return "offensive"
    return ""


def article_for(word: str) -> str:
    """ "an" before a vowel sound, else "a" (by the first letter, with "a unicorn", "a one-piece" kept)."""
    w = word.lower()
    return "an" if w[:1] in ("a", "e", "i", "o", "u") and not w.startswith(_A_BEFORE) else "a"


def _is_plural(word: str) -> bool:
    w = word.rsplit("-", 1)[-1]
    if w in PLURALS:
        return True
    return w.endswith("s") and not w.endswith(("ss", "us")) and w not in SINGULAR_S


def _determiner(words: list[str]) -> str:
    """The article a noun phrase takes: "", "the", "a" or "an"."""
    if not words or words[0] in NUMBERS or words[0] in ("a", "an", "the", "its", "their"):
        return ""
    head = words[-1]
    if len(words) > 1 and head.endswith("ed"):  # "fingers splayed": the noun is before the participle
        head = words[-2]
    for i, w in enumerate(words[1:], start=1):  # "person running": the noun is before the participle
        if w.endswith("ing") and w not in NOT_PARTICIPLES:
            head = words[i - 1]
            break
    if head in THE_NOUNS:
        return "the"
    if _is_plural(head) or head in MASS:
        return ""
    return article_for(words[0])


def with_articles(phrase: str) -> str:
    """Articles in front of the phrase's noun and after "with", "in", "getting"... ("person rowing boat" ->
    "a person rowing a boat"); plural and mass nouns and numbers take none."""
    words = phrase.split()
    out: list[str] = []
    i, need = 0, True  # need: a noun phrase starts at words[i]
    while i < len(words):
        if need:
            j = i
            while j < len(words) and words[j] not in STOP_WORDS:
                j += 1
            det = _determiner(words[i:j])
            out += ([det] if det else []) + words[i:j]
            i, need = j, False
        else:  # a stop word, or what follows "of", "at", "and": copied as is
            out.append(words[i])
            need = words[i] in OBJECT_WORDS
            i += 1
    return " ".join(out)


def caption_for(e: Emoji) -> str:
    """The caption for a kept emoji's CLDR name (lower case, no full stop)."""
    name = re.sub(r"^oncoming ", "", e.name)  # the same thing seen head-on
    if name in OVERRIDES:
        return OVERRIDES[name]
    if m := _HAIR_RE.match(name):
        who, what = m[1], m[2]
        if what == "bald":
            return f"a bald {who}"
        return f"{article_for(who)} {who} with {'a beard' if what == 'beard' else what}"
    name = name.replace("’", "'")
    if e.subgroup.startswith("animal-") or e.subgroup == "monkey-face":
        name = re.sub(r"^(\S+) face$", r"\1", name)  # "cat face" -> "cat": the animal, seen head-on
    elif e.subgroup.startswith("sky") and name.endswith(" face"):
        name = name[: -len(" face")] + " with a face"
    if (m := _ROLE_RE.match(name)) and e.subgroup in ("person-role", "person-fantasy"):
        name = f"{'male' if m[1] == 'man' else 'female'} {m[2]}"  # "man cook" -> "a male cook"
    return with_articles(name.lower())


def base_name(name: str) -> str:
    """The name without qualifiers and gender words: variants of one emoji share it."""
    core = name.split(":", 1)[0].lower()
    return " ".join(_GENDER_WORDS.sub(" ", core).split()) or core


# ---------------------------------------------------------------- scan


def load_font(path: str | Path = FONT) -> ImageFont.FreeTypeFont:
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: no emoji font: {APT_INSTALL}")
    try:
        return ImageFont.truetype(str(path), FONT_SIZE)
    except OSError as e:
        raise ConvertError(f"{path}: cannot load it at size {FONT_SIZE} ({e}): pass Noto Color Emoji, "
                           f"a CBDT font ({APT_INSTALL})") from None


def render_emoji(font: ImageFont.FreeTypeFont, text: str) -> Image.Image | None:
    """The emoji as an RGBA cut-out cropped to its visible pixels; None when the font draws
    nothing or more than one picture for it."""
    if font.getlength(text) > 1.5 * font.getlength("\U0001F600"):  # shaped as several glyphs
        return None
    w, h = font.getbbox(text)[2:]
    im = Image.new("RGBA", (w + 8, h + 8), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((4, 4), text, font=font, embedded_color=True)
    return crop_to_alpha(im)


def _union_groups(kept: list[Emoji]) -> None:
    """Union emoji that share a caption, a base name or a non-person ZWJ base; the group is its first name."""
    keys = []
    for e in kept:
        cps = [int(c, 16) for c in e.codepoints.split("-")]
        keys.append(["c:" + e.caption, "n:" + base_name(e.name)]
                    + ([] if ZWJ in cps and cps[0] in PERSON_BASES else [f"b:{cps[0]:x}"]))
    for e, root in zip(kept, group_roots(keys)):  # file order: the group is named after its first emoji
        e.split_group = kept[root].name


def _draw(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"{seed}/{name}".encode()).digest()


def scan_emoji(emoji_test: str | Path = EMOJI_TEST, font: str | Path = FONT, seed: int = 13,
               max_face_share: float = 0.05) -> Scan:
    """The emoji that become caption pairs, captioned and grouped; the rest by skip reason."""
    face = load_font(font)
    scan = Scan([])
    skipped: dict[str, list[str]] = {}
    candidates: list[Emoji] = []
    for e in read_emoji_test(emoji_test):
        reason = skip_reason(e)
        if not reason and render_emoji(face, e.text) is None:
            reason = "not_in_font"
        if reason == "not_fully_qualified":
            scan.not_fully_qualified += 1
        elif reason:
            skipped.setdefault(reason, []).append(e.name)
        else:
            e.caption = caption_for(e)
            candidates.append(e)
    faces = [e for e in candidates if e.subgroup.startswith("face-")]
    n_other = len(candidates) - len(faces)
    allowed = int(max_face_share / (1.0 - max_face_share) * n_other)
    dropped = {e.name for e in sorted(faces, key=lambda e: _draw(seed, e.name))[allowed:]}
    for e in candidates:
        if e.name in dropped:
            skipped.setdefault("face_share", []).append(e.name)
        else:
            scan.kept.append(e)
    scan.skipped = dict(sorted(skipped.items()))
    _union_groups(scan.kept)
    return scan


# ---------------------------------------------------------------- the data set


@dataclass
class Report:
    counts: dict[str, dict[str, int]]  # split -> emoji, groups, images
    scan: Scan
    out: Path


def _render(task: tuple[str, str, int, list[tuple[str, int]]]) -> None:
    font_path, text, size, outputs = task
    cutout = render_emoji(load_font(font_path), text)
    if cutout is None:
        raise ConvertError(f"{font_path}: draws nothing for {text!r}: pass the Noto Color Emoji font")
    for out, s in outputs:
        composite(cutout, np.random.default_rng(s), size).save(out, "JPEG", quality=JPEG_QUALITY)


def convert(out_dir: str | Path, config: EmojiConfig | None = None, font: str | Path = FONT,
            emoji_test: str | Path = EMOJI_TEST) -> Report:
    """Scan, split, render and write the data set under `out_dir` (see the module docstring)."""
    cfg = config or EmojiConfig()
    out = Path(out_dir)
    scan = scan_emoji(emoji_test, font, cfg.seed, cfg.max_face_share)
    if not scan.kept:
        raise ConvertError(f"{emoji_test}: no emoji to caption: pass Unicode's emoji-test.txt ({APT_INSTALL})")
    split_of = assign_splits((e.split_group for e in scan.kept), cfg.seed, cfg.fractions)

    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    frames: list[Frame] = []
    tasks: list[tuple[str, str, int, list[tuple[str, int]]]] = []
    for e in scan.kept:
        split = split_of[e.split_group]
        outputs = []
        for v in range(cfg.train_variants if split == "train" else 1):
            name = f"{e.codepoints}_{v}.jpg"
            outputs.append((str(images_dir / name), image_seed(cfg.seed, e.codepoints, v)))
            frames.append(Frame(name, e.caption, split, {"emoji": e.text, "name": e.name, "group": e.split_group,
                                                         "variant": v}))
        tasks.append((str(font), e.text, cfg.size, outputs))
    remove_stale(images_dir, {fr.name for fr in frames})
    render_all(_render, tasks, cfg.workers)

    versions = {p: package_version(p) for p in PACKAGES}
    info = {"description": "Noto Color Emoji composited onto varied backgrounds, captioned from CLDR names",
            "source": ", ".join(PACKAGES), "source_version": ", ".join(versions.values()), "seed": cfg.seed,
            "licence": LICENCE}
    images = write_caption_files(out, "emoji", frames, cfg.size, info)

    counts: dict[str, dict[str, int]] = {}
    for split in FRACTIONS:
        kept = [e for e in scan.kept if split_of[e.split_group] == split]
        lengths = [len(tokenize(e.caption)) for e in kept] or [0]
        counts[split] = {"emoji": len(kept), "groups": len({e.split_group for e in kept}), "images": images[split],
                         "caption_tokens_min": min(lengths), "caption_tokens_max": max(lengths),
                         "caption_tokens_mean": round(mean(lengths), 2)}
    by_group = Counter(e.group for e in scan.kept)
    record = {"source": {"packages": versions, "font": str(font), "emoji_test": str(emoji_test)},
              "seed": cfg.seed, "fractions": cfg.fractions, "train_variants": cfg.train_variants, "size": cfg.size,
              "jpeg_quality": JPEG_QUALITY, "cover": list(COVER), "max_face_share": cfg.max_face_share,
              "counts": counts, "kept_by_unicode_group": dict(sorted(by_group.items())),
              "distinct_captions": len({e.caption for e in scan.kept}),
              "groups_with_several_emoji": sum(1 for n in Counter(e.split_group for e in scan.kept).values() if n > 1),
              "skipped_counts": {k: len(v) for k, v in scan.skipped.items()},
              "not_fully_qualified": scan.not_fully_qualified,
              "skipped": scan.skipped, "licence": LICENCE}
    dump_json(out / "split.json", record)
    (out / "README.md").write_text(_readme(record), encoding="utf-8")
    return Report(counts, scan, out)


def _readme(r: dict) -> str:
    rows = "\n".join(f"| {k} | {v['emoji']} | {v['groups']} | {v['images']} | {v['caption_tokens_mean']} |"
                     for k, v in r["counts"].items())
    skipped = ", ".join(f"{n} {k}" for k, n in r["skipped_counts"].items())
    pk = r["source"]["packages"]
    return f"""# Emoji captions

Made by `scripts/emoji_to_coco.py` from Debian's `{FONT_PACKAGE}` {pk[FONT_PACKAGE]} (the pictures) and
`{NAMES_PACKAGE}` {pk[NAMES_PACKAGE]} (`emoji-test.txt`: CLDR short names, groups; the captions), seed {r['seed']},
{r['train_variants']} composites per train emoji, {r['size']}x{r['size']} JPEG quality {r['jpeg_quality']}.
Each emoji (drawn at Noto's only bitmap size, 109) is composited onto a random background covering
{r['cover'][0]:.0%}-{r['cover'][1]:.0%} of the frame. Its caption is its CLDR name made into what a person would
write ("red apple" -> "a red apple", "cat face" -> "a cat"). Splits are by group (same caption, same base
name without gender words, same non-person ZWJ base stay together), fractions {r['fractions']}.
See `edge_s2s/train/caption/emoji.py` for the rules.

| split | emoji | groups | images | mean caption tokens |
| --- | --- | --- | --- | --- |
{rows}

Skipped (names in split.json): {skipped}; {r['not_fully_qualified']} not fully qualified forms (same pictures)
were not read. Smiley faces are capped at {r['max_face_share']:.0%} of the kept emoji.

Files: `images/*.jpg` (named by code points); COCO captions `captions_{{train,val,test}}.json` (file names
relative to `images/`; each image also has "emoji", "name", "group", "variant"); Karpathy style
`dataset_emoji.json` (all splits, filepath "images", cocoid = the COCO id).

Licence: {r['licence']}
The SIL Open Font License covers the font software, not pictures drawn with it; Google Inc. made the
emoji artwork. The captions derive from Unicode data files: Copyright (c) 1991-2022 Unicode, Inc., distributed
under the Terms of Use in https://www.unicode.org/copyright.html, with the permission notice in
/usr/share/doc/{NAMES_PACKAGE}/copyright; they were modified (names rewritten into captions).
"""
