"""Cleaning for the German->English training text that scripts/build_de_en_corpus.py gathers.

Why a module of its own: the extra pairs come from software (LibreOffice's help, the gettext
catalogs of Debian games and applications), whose strings carry things a translator must never
learn to produce: markup (`<b>`, Pango spans, Wesnoth's `<ref>dst=... text='...'</ref>`),
accelerator markers (`_File`, `&File`), and format placeholders (`%s`, `%1$d`, `{name}`,
`$unit.name`, `~a`, `<npcname>`). Markup and markers are stripped; a placeholder is removed
only when both sides hold the same ones (as a multiset, positions ignored: `%2$s ... %1$s`
matches `%s ... %s`), otherwise the pair is dropped, because guessing which German words
stand where an English placeholder was would teach wrong alignments.

Then every source, the dictionary's sentences too, goes through the same filters, each drop
counted by reason (`Cleaner`): a tab or newline inside a side (a multi-paragraph string that
cannot be aligned line by line), empty sides, sides with no letters, untranslated strings
(both sides the same once normalised), more than `max_words` words a side, a length ratio in
characters outside [1/max_ratio, max_ratio] when the longer side has `ratio_min_chars` or more,
pairs either of whose sides is a sentence of the held-out test or valid split, and exact
duplicates (the first one is kept).

The held-out match (`match_key`) normalises as the brief for the benchmark says: Unicode NFC,
lower case, whitespace collapsed, final punctuation stripped, so "Time heals all wounds!" and
"time heals all wounds" are one sentence. A candidate is dropped if its German OR its English
side equals any test/valid side, since either would let the model see a benchmark answer.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# --- normalisation ---------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def normalize_text(s: str) -> str:
    """NFC, every run of whitespace one space, no space at the ends."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", s)).strip()


def match_key(s: str) -> str:
    """The form two sentences are compared in for held-out leakage and untranslated strings:
    NFC, lower case, whitespace collapsed, final punctuation (and spaces) stripped."""
    s = normalize_text(s).lower()
    end = len(s)
    while end and (s[end - 1].isspace() or unicodedata.category(s[end - 1]).startswith("P")):
        end -= 1
    return s[:end]


# --- markup ----------------------------------------------------------------------------------

# Wesnoth's help markup: <ref>dst='x' text='Shown'</ref>, <italic>text='x'</italic>, <img>src=...</img>:
# the element's body is attributes, and only a `text` attribute is ever shown.
_WML_ELEMENT = re.compile(r"<(\w+)>((?:\s*\w+=(?:'[^']*'|\S+?))+)\s*</\1>")
_WML_TEXT = re.compile(r"\btext=(?:'([^']*)'|(\S+))")
# Wesnoth menu items with an icon: "&icons/foo.png=Label" (the ampersand here is no accelerator)
_ICON_PREFIX = re.compile(r"^&[^=\s]+\.(?:png|jpg|webp|gif)(?:~[^=]*)?=")
MARKUP_TAGS = frozenset(
    "a abbr b big blockquote body br code col color dd div dl dt em font format h1 h2 h3 h4 h5 h6 header "
    "head hr html i img italic bold jump kbd li markup ol p pre q ref row s samp small span strike strong "
    "sub sup table tbody td th tr tt u ul var good bad info neutral".split()
)
_TAG = re.compile(r"</?([A-Za-z][\w:-]*)(?:\s[^<>]*)?/?>")


def _is_markup(name: str, text: str) -> bool:
    """A tag name is markup when it is a known formatting tag, a colour (Cataclysm's <color_red>),
    or closed somewhere in the string; anything else standalone (<npcname>) is a placeholder."""
    name = name.lower()
    return name in MARKUP_TAGS or name.startswith("color") or f"</{name}>" in text.lower()


def strip_markup(s: str) -> str:
    """Remove tags (keeping the text between them), Wesnoth help elements (keeping their `text`),
    icon prefixes and HTML entities. Placeholder tags such as <npcname> are left in place."""
    s = _ICON_PREFIX.sub("", s)

    def wml(m: re.Match[str]) -> str:
        t = _WML_TEXT.search(m.group(2))
        return (t.group(1) if t.group(1) is not None else t.group(2)) if t else ""

    s = _WML_ELEMENT.sub(wml, s)
    s = _TAG.sub(lambda m: " " if m.group(1).lower() in ("br", "p", "li", "tr") else
                 ("" if _is_markup(m.group(1), s) else m.group(0)), s)
    return s


# --- accelerator markers ---------------------------------------------------------------------

_ENTITY_AHEAD = r"(?![A-Za-z]+;|#\d+;|#x[0-9A-Fa-f]+;)"
_AMP_ACCEL = re.compile(r"&" + _ENTITY_AHEAD + r"(?=[^\W_])")
_IDENTIFIER = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)+$")


def strip_accelerators(s: str) -> str:
    """Remove keyboard accelerator markers: Qt/KDE/wx `&File` (`&&` is a literal ampersand,
    `&amp;` an entity), GTK `_File` or `Ö_ffnen`. An underscore is a marker only when it is the
    string's only one, precedes a letter or digit, and its word is no lower-case identifier
    (`file_name`)."""
    s = _AMP_ACCEL.sub("", s.replace("&&", "\0")).replace("\0", "&")
    if s.count("_") == 1:
        i = s.index("_")
        if i + 1 < len(s) and s[i + 1].isalnum():
            word = next(w for w in s.split() if "_" in w)
            if not _IDENTIFIER.match(word.strip(".,:;!?()\"'")):
                s = s[:i] + s[i + 1:]
    return s


# --- placeholders ----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"%%"  # a literal percent sign, not a placeholder
    r"|%\(\w+\)[-+#0]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]"  # python %(name)s
    r"|%(?:\d+\$)?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|ll|I64|I32|[hlLqjzt])?[diouxXeEfFgGaAcsSpn]"  # printf
    r"|%\d+"  # Qt / KDE %1
    r"|\{\{|\}\}"  # literal braces of a format string
    r"|\{(?:[A-Za-z_]\w*(?:\.\w+|\[\w+\])*|\d*)(?:![rsa])?(?::[^{}]*)?\}"  # python {name}, {0}, {}
    r"|\$\{[^}\s]+\}|\$[A-Za-z_][\w.]*(?:\[[^\]\s]*\][\w.]*)*\|?"  # shell/WML $var, ${var}, $unit.name|
    r"|~[aAsS]"  # Scheme (format) ~a
    r"|<[A-Za-z_][\w-]*>"  # <npcname> (only when no markup: see _is_markup)
)


def _placeholder_key(token: str, text: str) -> str | None:
    """The comparable form of one placeholder match, or None when the match is no placeholder."""
    if token in ("%%", "{{", "}}"):
        return None
    if token.startswith("<"):
        return None if _is_markup(token[1:-1], text) else token.lower()
    if token.startswith("%("):
        return token[: token.index(")") + 1]
    if token.startswith("%"):
        if token[1:].isdigit():
            return token
        conv = token[-1]
        return "%" + ("d" if conv == "i" else conv)
    if token.startswith("{"):
        return "{" + re.split(r"[!:]", token[1:-1], maxsplit=1)[0] + "}"
    if token.startswith("$"):
        return "$" + token.strip("${}|")
    return token


def find_placeholders(s: str) -> list[str]:
    """The placeholders of `s` in comparable form, sorted (a multiset): `%2$s` -> `%s`,
    `{count:d}` -> `{count}`, `$unit.name|` -> `$unit.name`."""
    return sorted(k for m in _PLACEHOLDER.finditer(s) if (k := _placeholder_key(m.group(0), s)) is not None)


_EMPTY_QUOTES = re.compile(r"(?:''|\"\"|„“|“”|»«|«»|‚‘|‘’|‹›|›‹|\(\)|\[\])")
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)\]»“”’])")
_LEADING_PUNCT = re.compile(r"^[\s,.;:!?\-–—/|]+")


def remove_placeholders(s: str) -> str:
    """`s` without its placeholders (`%%`, `{{`, `}}` become their literal character), quotes and
    brackets left empty by that removed, and no space before punctuation."""
    def repl(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok in ("%%", "{{", "}}"):
            return tok[0]
        return tok if _placeholder_key(tok, s) is None else " "

    out = _PLACEHOLDER.sub(repl, s)
    out = _EMPTY_QUOTES.sub(" ", _SPACE.sub(" ", out).replace("' '", "''").replace('" "', '""'))
    out = _SPACE_BEFORE.sub(r"\1", _SPACE.sub(" ", out))
    return _LEADING_PUNCT.sub("", out).strip()


# --- pairs and filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One German->English candidate and where it came from.

    `source` is the family (trans, libreoffice, gettext), `package` the Debian package, `origin`
    the file (and paragraph id) inside it; `drop` is non-empty when the source already rejected
    the candidate (the reason is counted like the common filters' reasons)."""

    de: str
    en: str
    source: str
    package: str
    origin: str = ""
    drop: str = ""

    @property
    def tag(self) -> str:
        """The provenance tag written beside each training line: `source:package`."""
        return f"{self.source}:{self.package}"


@dataclass(frozen=True)
class CleanConfig:
    """The common filters' limits (every source goes through them)."""

    max_words: int = 60
    max_ratio: float = 2.5
    ratio_min_chars: int = 15  # the ratio is checked when the longer side has at least this many characters
    placeholders: str = "remove"  # "remove": strip matching placeholders; "drop": drop every pair that has one


def clean_catalog_pair(msgstr: str, msgid: str, placeholders: str = "remove") -> tuple[str, str] | str:
    """A gettext (German msgstr, English msgid) with markup, accelerators and placeholders handled:
    the cleaned (de, en), or the reason it is dropped (`placeholder_mismatch`, `placeholder`
    when `placeholders="drop"`). Whitespace is left for `Cleaner` (a newline is a reason there)."""
    de, en = (strip_accelerators(strip_markup(s)) for s in (msgstr, msgid))
    pde, pen = find_placeholders(de), find_placeholders(en)
    if pde != pen:
        return "placeholder_mismatch"
    if pde:
        if placeholders == "drop":
            return "placeholder"
        de, en = remove_placeholders(de), remove_placeholders(en)
    return html.unescape(de), html.unescape(en)


class HeldOut:
    """The test and valid sentences, both languages, in `match_key` form."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.de: set[str] = set()
        self.en: set[str] = set()
        for de, en in pairs:
            self.de.add(match_key(de))
            self.en.add(match_key(en))

    def __contains__(self, pair: tuple[str, str]) -> bool:
        de, en = pair
        return match_key(de) in self.de or match_key(en) in self.en


@dataclass
class SourceCounts:
    """How many candidates one source (or one package of it) gave, kept, and dropped by reason."""

    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def add(self, other: SourceCounts) -> None:
        self.read += other.read
        self.kept += other.kept
        self.dropped.update(other.dropped)


_LETTER = re.compile(r"[^\W\d_]")
_BAD_CHARS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]")


def check_pair(de: str, en: str, cfg: CleanConfig) -> tuple[str, str] | str:
    """The pair normalised, or the first common filter that drops it (leakage and duplicates are
    `Cleaner`'s, which holds the held-out set and what was kept)."""
    if _BAD_CHARS.search(de) or _BAD_CHARS.search(en):
        return "tab_or_newline"
    de, en = normalize_text(de), normalize_text(en)
    if not de or not en:
        return "empty"
    if not (_LETTER.search(de) and _LETTER.search(en)):
        return "no_letters"
    if match_key(de) == match_key(en):
        return "untranslated"
    if len(de.split()) > cfg.max_words or len(en.split()) > cfg.max_words:
        return "too_long"
    longer, shorter = max(len(de), len(en)), min(len(de), len(en))
    if longer >= cfg.ratio_min_chars and longer > cfg.max_ratio * shorter:
        return "length_ratio"
    return de, en


class Cleaner:
    """Runs candidates through the common filters, keeps the survivors in order, and counts per
    `Pair.tag` what was read, kept and dropped by which reason."""

    def __init__(self, cfg: CleanConfig, held_out: HeldOut) -> None:
        self.cfg = cfg
        self.held_out = held_out
        self.kept: list[Pair] = []
        self.counts: dict[str, SourceCounts] = {}
        self._seen: set[tuple[str, str]] = set()

    def add(self, pair: Pair) -> bool:
        counts = self.counts.setdefault(pair.tag, SourceCounts())
        counts.read += 1
        result = pair.drop or check_pair(pair.de, pair.en, self.cfg)
        if isinstance(result, tuple):
            if result in self.held_out:
                result = "held_out"
            elif result in self._seen:
                result = "duplicate"
        if isinstance(result, str):
            counts.dropped[result] += 1
            return False
        self._seen.add(result)
        self.kept.append(Pair(result[0], result[1], pair.source, pair.package, pair.origin))
        counts.kept += 1
        return True

    def add_all(self, pairs: Iterable[Pair]) -> None:
        for p in pairs:
            self.add(p)

    def by_source(self) -> dict[str, SourceCounts]:
        """The counts summed per source family (trans, libreoffice, gettext)."""
        out: dict[str, SourceCounts] = {}
        for tag, c in self.counts.items():
            out.setdefault(tag.split(":", 1)[0], SourceCounts()).add(c)
        return out
