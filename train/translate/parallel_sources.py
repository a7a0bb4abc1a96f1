"""Where German->English sentence pairs come from, one function per source, each yielding `Pair`s
with their provenance (source family, Debian package, file and paragraph).

Why these sources: the ~19k dictionary sentences of Debian's `trans-de-en` are too few to train
a translator that generalises; Debian also ships, under free licences and for offline install,
software whose text was translated by people, sentence by sentence:

- `trans`: the example sentences of the Ding dictionary (`trans-de-en`, GPL-2+), as
  scripts/prepare_de_en.py has always read them (`extract_pairs`). Its seeded split
  (`split_held_out`) is the held-out benchmark: test and valid never change, and only its
  train part joins the big corpus.
- `phrases`: the same dictionary's multi-word phrases and collocations (`phrase_pairs`), from
  the entries that hold no held-out example sentence.
- `libreoffice`: LibreOffice's help pages (`libreoffice-help-en-us`, `libreoffice-help-de`,
  MPL-2.0). Both languages are the same HTML pages, and each paragraph and heading carries the
  same id, so pairs are aligned by (page path, id), never by position. Hidden platform variants
  inside a paragraph (`<span hidden id="MAC...">`) are left out, the `default...` variant kept.
- `gettext`: the German `.mo` catalogs of Debian games and applications (`GETTEXT_PACKAGES`,
  each with its licence as its /usr/share/doc/PKG/copyright says): Wesnoth's campaigns and unit
  descriptions, Cataclysm: DDA's item and dialogue text, Freeciv's nation histories, and the
  user interfaces of a few desktop applications. Catalog entries are msgid (English) -> msgstr
  (German); plural entries give their singular form, context prefixes (`ctx\\x04`) are dropped,
  and markup, accelerators and placeholders are handled by `parallel_clean.clean_catalog_pair`.

Packages other than trans-de-en are never installed: `fetch_deb` runs `apt-get download` into a
cache folder and unpacks only the files needed (`dpkg-deb --fsys-tarfile`), so a LibreOffice or
a game never lands on the machine. `build_corpus` runs the chosen sources through one
`parallel_clean.Cleaner` and writes the corpus (see scripts/build_de_en_corpus.py).
"""

from __future__ import annotations

import fnmatch
import gettext
import json
import random
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from ..core.errors import DataError
from .parallel_clean import CleanConfig, Cleaner, HeldOut, Pair, SourceCounts, clean_catalog_pair, normalize_text

# --- trans-de-en: the Ding dictionary's example sentences --------------------------------------

TRANS_SOURCE = Path("/usr/share/trans/de-en")
TRANS_PACKAGE = "trans-de-en"
TRANS_LICENCE = "GPL-2+"
TEST_PAIRS, VALID_PAIRS, SPLIT_SEED = 1000, 500, 1234  # the held-out benchmark's split: never change
_BRACKETS = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\])")
_SENTENCE_END = re.compile(r"[.?!]$")


def _clean(s: str) -> str:
    s = _BRACKETS.sub("", s).strip()
    # "A.; B." lists alternatives: keep the first full sentence.
    parts = [p.strip() for p in s.split("; ")]
    for p in parts:
        if _SENTENCE_END.search(p):
            return p
    return parts[0]


def extract_pairs(path: Path) -> list[tuple[str, str]]:
    """The dictionary's full-sentence examples as (German, English), first alternative of each side,
    editorial brackets dropped, exact duplicates once, in file order."""
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "::" not in line:
            continue
        de, en = line.split("::", 1)
        des, ens = de.split(" | "), en.split(" | ")
        if len(des) != len(ens):
            continue
        for d, e in zip(des, ens):
            d, e = _clean(d), _clean(e)
            if not (d[:1].isupper() and _SENTENCE_END.search(d) and _SENTENCE_END.search(e)):
                continue
            if len(d.split()) < 3 or "\t" in d + e:
                continue
            if (d, e) not in seen:
                seen.add((d, e))
                pairs.append((d, e))
    return pairs


def split_held_out(pairs: list[tuple[str, str]], test: int = TEST_PAIRS, valid: int = VALID_PAIRS,
                   seed: int = SPLIT_SEED) -> dict[str, list[tuple[str, str]]]:
    """The seeded test / valid / train split of the dictionary pairs. It is by German sentence, so
    a sentence with two translations never straddles splits."""
    by_source: dict[str, list[tuple[str, str]]] = {}
    for d, e in pairs:
        by_source.setdefault(d, []).append((d, e))
    keys = sorted(by_source)
    random.Random(seed).shuffle(keys)
    splits: dict[str, list[tuple[str, str]]] = {"test": [], "valid": [], "train": []}
    for k in keys:
        name = "test" if len(splits["test"]) < test else "valid" if len(splits["valid"]) < valid else "train"
        splits[name].extend(by_source[k])
    return splits


def write_tsv(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """`german<TAB>english` lines, UTF-8, `\\n` line ends."""
    path.write_text("".join(f"{d}\t{e}\n" for d, e in rows), encoding="utf-8")


_ANNOTATIONS = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>)")


def _clean_phrase(s: str) -> str:
    """A dictionary headword or phrase: grammar, field and usage marks, optional parts in
    parentheses and synonyms in angle brackets dropped; the first of `; `-separated alternatives."""
    return " ".join(_ANNOTATIONS.sub("", s.split("; ")[0]).split())


def _is_example_sentence(d: str, e: str) -> bool:
    """What `extract_pairs` takes as a full-sentence example (those belong to the `trans` source)."""
    return bool(d[:1].isupper() and _SENTENCE_END.search(d) and _SENTENCE_END.search(e) and len(d.split()) >= 3)


def phrase_pairs(path: Path, held_out: Iterable[tuple[str, str]]) -> Iterator[Pair]:
    """The dictionary's multi-word phrases and collocations ("schwer zu kriegen" :: "hard to come by"),
    which teach the idioms the example sentences use. An entry (one line) that holds a held-out test
    or valid example gives nothing at all: its phrases would explain that very sentence."""
    held = {d for d, _ in held_out}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#") or "::" not in line:
            continue
        de, en = line.split("::", 1)
        des, ens = de.split(" | "), en.split(" | ")
        if len(des) != len(ens) or any(_clean(d) in held for d in des):
            continue
        for d, e in zip(des, ens):
            if _is_example_sentence(_clean(d), _clean(e)):
                continue
            d, e = _clean_phrase(d), _clean_phrase(e)
            if len(d.split()) >= 2 and e:
                yield Pair(d, e, "phrases", TRANS_PACKAGE, f"{path}:{lineno}")


def trans_pairs(train: Iterable[tuple[str, str]]) -> Iterator[Pair]:
    """The dictionary's train split as `Pair`s (the test and valid parts never enter the corpus)."""
    for d, e in train:
        yield Pair(d, e, "trans", TRANS_PACKAGE, str(TRANS_SOURCE))


# --- LibreOffice help ------------------------------------------------------------------------

LIBREOFFICE_PACKAGES = {"en": "libreoffice-help-en-us", "de": "libreoffice-help-de"}
LIBREOFFICE_LICENCE = "MPL-2.0"
LIBREOFFICE_HELP = PurePosixPath("usr/share/libreoffice/help")
_BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                   "wbr"})


class _HelpPage(HTMLParser):
    """Collects the text of every paragraph and heading that has an id (first one per id wins).
    Content of hidden elements is skipped unless the element's id starts with `default` (the
    variant LibreOffice shows when no platform or module matches); a paragraph whose platform
    switch has no default variant is marked (its text would have a hole)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: dict[str, str] = {}
        self.holes: set[str] = set()
        self._stack: list[tuple[str, bool]] = []  # open elements: (tag, hides its content)
        self._hidden = 0
        self._block: tuple[str, int] | None = None  # (id, depth) of the paragraph being read
        self._text: list[str] = []
        self._switches = self._defaults = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _VOID:
            if tag == "br" and self._block:
                self._text.append(" ")
            return
        ident = a.get("id") or ""
        hides = tag in ("script", "style") or ("hidden" in a and not ident.startswith("default"))
        if self._block and "switch" in (a.get("class") or ""):
            self._switches += 1
        if self._block and "hidden" in a and ident.startswith("default"):
            self._defaults += 1
        self._stack.append((tag, hides))
        self._hidden += hides
        if tag in _BLOCKS and ident and self._block is None and not self._hidden:
            self._block, self._text, self._switches, self._defaults = (ident, len(self._stack)), [], 0, 0

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                break
        else:
            return
        while len(self._stack) > i:
            self._hidden -= self._stack.pop()[1]
            if self._block and len(self._stack) < self._block[1]:
                ident = self._block[0]
                if ident not in self.paragraphs:
                    self.paragraphs[ident] = normalize_text("".join(self._text))
                    if self._switches > self._defaults:
                        self.holes.add(ident)
                self._block = None

    def handle_data(self, data: str) -> None:
        if self._block and not self._hidden:
            self._text.append(data)


def read_help_page(path: Path) -> tuple[dict[str, str], set[str]]:
    """(paragraph id -> text in document order, ids whose platform switch had no default)."""
    page = _HelpPage()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page.paragraphs, page.holes


# Menu paths ("Tools - Options - LibreOffice - Paths") are UI labels joined by " - ": the labels
# are translated, but the paths repeat one another thousands of times with few new words.
_MENU_PATH = re.compile(r"^[^.!?:;]{1,40}( - [^.!?:;]{1,40}){2,}$")


def libreoffice_pairs(en_root: Path, de_root: Path, package: str = LIBREOFFICE_PACKAGES["de"]) -> Iterator[Pair]:
    """Help paragraphs aligned by (page path, paragraph id), English pages driving the order.

    Drops at the source: `unaligned` (the German page or paragraph is missing), `switch_hole`
    (a platform switch without a default variant), `menu_path` (three or more labels joined by
    " - ", on the English side)."""
    if not en_root.is_dir() or not de_root.is_dir():
        raise DataError(f"LibreOffice help not found at {en_root} and {de_root}: unpack "
                        f"{' and '.join(LIBREOFFICE_PACKAGES.values())} there")
    for en_page in sorted(en_root.rglob("*.html")):
        rel = en_page.relative_to(en_root).as_posix()
        de_page = de_root / rel
        en_par, en_holes = read_help_page(en_page)
        de_par, de_holes = read_help_page(de_page) if de_page.is_file() else ({}, set())
        for ident, en in en_par.items():
            origin = f"{rel}#{ident}"
            de = de_par.get(ident)
            drop = ("unaligned" if de is None else "switch_hole" if ident in en_holes | de_holes
                    else "menu_path" if _MENU_PATH.match(en) else "")
            yield Pair(de or "", en, "libreoffice", package, origin, drop)


# --- gettext catalogs ------------------------------------------------------------------------


@dataclass(frozen=True)
class DebSource:
    """A Debian package read for its German gettext catalogs, with the licence its
    /usr/share/doc/PKG/copyright gives for the files the catalogs come from."""

    package: str
    licence: str
    what: str


_WESNOTH_CAMPAIGNS = {
    "did": "Descent into Darkness", "dm": "Delfador's Memoirs", "dw": "Dead Water", "ei": "The Eastern Invasion",
    "httt": "Heir to the Throne", "l": "Liberty", "low": "Legend of Wesmere", "nr": "Northern Rebirth",
    "sof": "The Sceptre of Fire", "sota": "Secrets of the Ancients", "sotbe": "Son of the Black-Eye",
    "thot": "The Hammer of Thursagan", "trow": "The Rise of Wesnoth", "tsg": "The South Guard",
    "ttb": "A Tale of Two Brothers", "utbs": "Under the Burning Suns",
}
GETTEXT_PACKAGES: tuple[DebSource, ...] = (
    DebSource("wesnoth-1.16-data", "GPL-2+", "Wesnoth: units, help, tutorial, multiplayer, interface"),
    *(DebSource(f"wesnoth-1.16-{k}", "GPL-2+", f"Wesnoth campaign: {v}") for k, v in _WESNOTH_CAMPAIGNS.items()),
    DebSource("cataclysm-dda-data", "CC-BY-SA-3.0", "Cataclysm: Dark Days Ahead: items, monsters, dialogue"),
    DebSource("freeciv-data", "GPL-2+", "Freeciv: help texts, nation histories"),
    DebSource("minetest-data", "LGPL-2.1+", "Minetest: settings and interface"),
    DebSource("aisleriot", "GPL-3+", "AisleRiot solitaire: hints and interface"),
    DebSource("kpat", "GPL-2+", "KPatience: interface"),
    DebSource("gramps", "GPL-2+", "Gramps genealogy: interface, filters, reports"),
    DebSource("gnucash-common", "GPL-2+", "GnuCash accounting: interface, tips"),
    DebSource("gnumeric-common", "GPL-2 or GPL-3", "Gnumeric spreadsheet: interface, function help"),
    DebSource("vlc-l10n", "GPL-2+", "VLC media player: interface, option descriptions"),
    DebSource("audacity-data", "CC-BY-3.0 or GPL-2+", "Audacity audio editor: interface"),
    DebSource("pidgin-data", "GPL-2+", "Pidgin chat client: interface"),
    DebSource("filezilla-common", "GPL-2+", "FileZilla FTP client: interface"),
)
GETTEXT_MEMBERS = ("*/locale/de/LC_MESSAGES/*.mo", "./usr/share/doc/*/copyright")


def read_catalog(path: Path) -> list[tuple[str, str]]:
    """(msgid, msgstr) of a .mo file: the header left out, context prefixes (`ctx\\x04`) cut,
    plural entries as their singular (msgid, msgstr[0]), the others of a plural left out."""
    try:
        with path.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # the public API hides the table
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable gettext .mo file ({e})") from e
    out = []
    for key, msgstr in catalog.items():
        if isinstance(key, tuple):
            msgid, n = key
            if n != 0:
                continue
        else:
            msgid = key
        if not msgid:
            continue
        out.append((msgid.split("\x04", 1)[-1], msgstr))
    return out


def gettext_pairs(mo: Path, package: str, placeholders: str = "edge") -> Iterator[Pair]:
    """A German catalog's entries as `Pair`s (German msgstr, English msgid), cleaned of markup,
    accelerators and placeholders; `empty` (no msgstr) and placeholder drops marked."""
    for msgid, msgstr in read_catalog(mo):
        if not msgstr.strip():
            yield Pair("", msgid, "gettext", package, mo.name, "empty")
            continue
        result = clean_catalog_pair(msgstr, msgid, placeholders)
        if isinstance(result, str):
            yield Pair(msgstr, msgid, "gettext", package, mo.name, result)
        else:
            yield Pair(result[0], result[1], "gettext", package, mo.name)


# --- Debian packages, downloaded, never installed ---------------------------------------------


@dataclass(frozen=True)
class FetchedDeb:
    """A downloaded .deb and the folder its wanted files were unpacked into."""

    package: str
    version: str
    deb: Path
    size: int
    root: Path
    downloaded: bool  # False when the cache already had it


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _unpack(deb: Path, root: Path, members: tuple[str, ...]) -> None:
    """Write the deb's files matching any of `members` (fnmatch on the tar name, `./usr/...`)
    under `root`, streamed from `dpkg-deb --fsys-tarfile` (nothing else is written)."""
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                name = PurePosixPath(m.name)
                if not m.isfile() or ".." in name.parts or not any(fnmatch.fnmatch(m.name, p) for p in members):
                    continue
                dest = tmp.joinpath(*[p for p in name.parts if p not in (".", "/")])
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                dest.write_bytes(src.read())
    except tarfile.TarError as e:
        raise DataError(f"{deb} could not be unpacked ({e}): delete it and run again") from e
    finally:
        proc.stdout.close()
        rc = proc.wait()
    if rc != 0:
        raise DataError(f"dpkg-deb could not read {deb}: delete it and run again")
    shutil.rmtree(root, ignore_errors=True)
    (tmp / ".members").write_text("\n".join(members) + "\n", encoding="utf-8")
    tmp.rename(root)


def fetch_deb(package: str, cache: Path, members: tuple[str, ...]) -> FetchedDeb:
    """`package`'s .deb in `cache` (`apt-get download` when it is not there yet, after one
    `apt-get update` if the package lists are stale), its files matching `members` unpacked
    under cache/root/PACKAGE_VERSION/ (once; a later call with the same members reuses them)."""
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    downloaded = not debs
    if downloaded:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise DataError(f"{package}: apt-get and dpkg-deb are needed to download it (a Debian system)")
        r = _run(["apt-get", "download", package], cwd=cache)
        if r.returncode != 0:
            _run(["apt-get", "update"])
            r = _run(["apt-get", "download", package], cwd=cache)
        debs = sorted(cache.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
        if r.returncode != 0 or not debs:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"apt-get download {package} failed ({last}): check the name and the package lists")
    deb = debs[-1]
    r = _run(["dpkg-deb", "-f", str(deb), "Version"])
    if r.returncode != 0:
        raise DataError(f"{deb} is not a readable .deb: delete it and run again")
    version = r.stdout.strip()
    root = cache / "root" / f"{package}_{version.replace(':', '%3a')}"
    marker = root / ".members"
    if not (marker.is_file() and marker.read_text(encoding="utf-8").split() == list(members)):
        _unpack(deb, root, members)
    return FetchedDeb(package, version, deb, deb.stat().st_size, root, downloaded)


def german_catalogs(root: Path) -> list[Path]:
    """The German .mo files unpacked under `root` (any locale folder: games keep theirs apart)."""
    return sorted(p for p in root.rglob("*.mo") if p.parent.name == "LC_MESSAGES" and p.parent.parent.name == "de")


# --- the whole corpus ------------------------------------------------------------------------

SOURCES = ("trans", "phrases", "libreoffice", "gettext")


@dataclass(frozen=True)
class BuildConfig:
    """What `build_corpus` reads and how it shuffles the training lines."""

    sources: tuple[str, ...] = SOURCES
    cache: Path = Path("data/cache/debs")
    seed: int = 1234  # the shuffle of train.tsv (the held-out split has its own, fixed seed)
    clean: CleanConfig = field(default_factory=CleanConfig)
    gettext_packages: tuple[DebSource, ...] = GETTEXT_PACKAGES
    trans_path: Path = TRANS_SOURCE
    # the held-out split's sizes: the benchmark is the default (only tests make smaller ones)
    test: int = TEST_PAIRS
    valid: int = VALID_PAIRS


@dataclass(frozen=True)
class PackageInfo:
    """One package a corpus was built from, for SOURCES.md."""

    source: str
    package: str
    version: str
    licence: str
    what: str
    deb_bytes: int = 0  # 0: installed, not downloaded (trans-de-en)
    downloaded: bool = False


@dataclass
class BuildReport:
    """What `build_corpus` wrote: split sizes, counts per package and per source, the packages."""

    out: Path
    splits: dict[str, int]
    counts: dict[str, SourceCounts]  # per `Pair.tag` (source:package)
    by_source: dict[str, SourceCounts]
    packages: list[PackageInfo]


def installed_version(package: str) -> str:
    """The installed version of a Debian package, or "" where dpkg does not know it."""
    if shutil.which("dpkg-query") is None:
        return ""
    r = _run(["dpkg-query", "-W", "-f", "${Version}", package])
    return r.stdout.strip() if r.returncode == 0 else ""


def build_corpus(out: Path, cfg: BuildConfig, progress: Callable[[str], None] | None = None) -> BuildReport:
    """Write out/{train,valid,test}.tsv, train.source.txt (one `source:package` tag per train line),
    counts.json and SOURCES.md. valid and test are the dictionary's held-out split, byte for byte
    what scripts/prepare_de_en.py writes; train is every source's cleaned pairs, shuffled."""
    say = progress or (lambda _msg: None)
    unknown = set(cfg.sources) - set(SOURCES)
    if unknown or not cfg.sources:
        raise DataError(f"unknown source(s) {', '.join(sorted(unknown)) or '(none given)'}: "
                        f"choose from {','.join(SOURCES)}")
    if not cfg.trans_path.is_file():
        raise DataError(f"{cfg.trans_path} not found: the held-out split needs it; apt-get install {TRANS_PACKAGE}")
    splits = split_held_out(extract_pairs(cfg.trans_path), cfg.test, cfg.valid, SPLIT_SEED)
    cleaner = Cleaner(cfg.clean, HeldOut(splits["test"] + splits["valid"]))
    packages: list[PackageInfo] = []
    if "trans" in cfg.sources:
        say(f"trans: {len(splits['train'])} dictionary pairs in the train split")
        cleaner.add_all(trans_pairs(splits["train"]))
        packages.append(PackageInfo("trans", TRANS_PACKAGE, installed_version(TRANS_PACKAGE), TRANS_LICENCE,
                                    "Ding dictionary example sentences (train split)"))
    if "phrases" in cfg.sources:
        before = len(cleaner.kept)
        cleaner.add_all(phrase_pairs(cfg.trans_path, splits["test"] + splits["valid"]))
        say(f"phrases: {len(cleaner.kept) - before} dictionary phrases kept")
        packages.append(PackageInfo("phrases", TRANS_PACKAGE, installed_version(TRANS_PACKAGE), TRANS_LICENCE,
                                    "Ding dictionary multi-word phrases (entries without a held-out example)"))
    if "libreoffice" in cfg.sources:
        lo = {lang: fetch_deb(pkg, cfg.cache, (f"./{LIBREOFFICE_HELP}/*", "./usr/share/doc/*/copyright"))
              for lang, pkg in LIBREOFFICE_PACKAGES.items()}
        if lo["en"].version != lo["de"].version:
            raise DataError(f"{lo['en'].deb.name} and {lo['de'].deb.name} are different versions: delete the older "
                            f"from {cfg.cache} (paragraph ids are only aligned within one version)")
        for lang, d in lo.items():
            packages.append(PackageInfo("libreoffice", d.package, d.version, LIBREOFFICE_LICENCE,
                                        f"LibreOffice help pages ({lang})", d.size, d.downloaded))
        say(f"libreoffice: reading help pages ({lo['en'].version})")
        cleaner.add_all(libreoffice_pairs(lo["en"].root / LIBREOFFICE_HELP / "en-US",
                                          lo["de"].root / LIBREOFFICE_HELP / "de"))
    if "gettext" in cfg.sources:
        for src in cfg.gettext_packages:
            d = fetch_deb(src.package, cfg.cache, GETTEXT_MEMBERS)
            catalogs = german_catalogs(d.root)
            if not catalogs:
                raise DataError(f"{src.package} {d.version} has no German .mo catalog: take it off the list")
            before = len(cleaner.kept)
            for mo in catalogs:
                cleaner.add_all(gettext_pairs(mo, src.package, cfg.clean.placeholders))
            say(f"gettext: {src.package} {d.version}: {len(catalogs)} catalog(s), "
                f"{len(cleaner.kept) - before} pairs kept")
            packages.append(PackageInfo("gettext", src.package, d.version, src.licence, src.what, d.size,
                                        d.downloaded))

    train = list(cleaner.kept)
    random.Random(cfg.seed).shuffle(train)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "train.tsv", ((p.de, p.en) for p in train))
    (out / "train.source.txt").write_text("".join(f"{p.tag}\n" for p in train), encoding="utf-8")
    write_tsv(out / "valid.tsv", splits["valid"])
    write_tsv(out / "test.tsv", splits["test"])
    report = BuildReport(out, {"train": len(train), "valid": len(splits["valid"]), "test": len(splits["test"])},
                         dict(cleaner.counts), cleaner.by_source(), packages)
    (out / "counts.json").write_text(json.dumps(_counts_json(report, cfg), indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    (out / "SOURCES.md").write_text(sources_markdown(report, cfg), encoding="utf-8")
    return report


def _counts_dict(c: SourceCounts) -> dict[str, object]:
    return {"read": c.read, "kept": c.kept, "dropped": dict(sorted(c.dropped.items()))}


def _counts_json(report: BuildReport, cfg: BuildConfig) -> dict[str, object]:
    return {
        "splits": report.splits,
        "shuffle_seed": cfg.seed,
        "held_out_split": {"test": cfg.test, "valid": cfg.valid, "seed": SPLIT_SEED},
        "clean": {k: getattr(cfg.clean, k) for k in ("max_words", "max_ratio", "ratio_min_chars", "placeholders")},
        "by_source": {k: _counts_dict(v) for k, v in report.by_source.items()},
        "by_package": {k: _counts_dict(v) for k, v in report.counts.items()},
        "packages": [vars(p) for p in report.packages],
    }


def _reasons(c: SourceCounts) -> str:
    return ", ".join(f"{n} {r}" for r, n in c.dropped.most_common()) or "-"


def sources_markdown(report: BuildReport, cfg: BuildConfig) -> str:
    """SOURCES.md: what each source gave, which packages (version, licence), what was dropped why."""
    mb = sum(p.deb_bytes for p in report.packages) / 1e6
    licences = ", ".join(sorted({p.licence for p in report.packages}))
    lines = [
        "# German->English training corpus: sources",
        "",
        ("Built by `scripts/build_de_en_corpus.py` (logic: `edge_s2s.train.translate.parallel_sources` and "
         "`parallel_clean`)."),
        "",
        (f"- train.tsv: {report.splits['train']} pairs from {', '.join(cfg.sources)}, shuffled with seed {cfg.seed}; "
         "train.source.txt names each line's `source:package`."),
        (f"- valid.tsv ({report.splits['valid']}) and test.tsv ({report.splits['test']}): the trans-de-en held-out "
         f"split (seed {SPLIT_SEED}), byte-identical to scripts/prepare_de_en.py's. No train pair has a German or "
         "English side equal to a test/valid side (NFC, lower case, whitespace collapsed, final punctuation "
         "stripped): those are the `held_out` drops."),
        (f"- filters: at most {cfg.clean.max_words} words a side; length ratio within 1/{cfg.clean.max_ratio}.."
         f"{cfg.clean.max_ratio} (characters) when the longer side has {cfg.clean.ratio_min_chars}+; placeholders: "
         f"{cfg.clean.placeholders}."),
        f"- downloaded .deb files: {mb:.1f} MB in all (never installed).",
        "",
        "## Per source",
        "",
        "| source | read | kept | dropped (by reason) |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, c in report.by_source.items():
        lines.append(f"| {name} | {c.read} | {c.kept} | {_reasons(c)} |")
    total = SourceCounts()
    for c in report.by_source.values():
        total.add(c)
    lines += [f"| **all** | {total.read} | {total.kept} | {_reasons(total)} |", "", "## Per package", "",
              "| source | package | version | licence | .deb MB | read | kept | dropped (by reason) | content |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for p in report.packages:
        c = report.counts.get(f"{p.source}:{p.package}", SourceCounts())
        if p.package == LIBREOFFICE_PACKAGES["en"]:
            c = SourceCounts()  # the pairs are counted under the German package
        lines.append(f"| {p.source} | {p.package} | {p.version} | {p.licence} | {p.deb_bytes / 1e6:.1f} | "
                     f"{c.read} | {c.kept} | {_reasons(c)} | {p.what} |")
    lines += [
        "",
        "## Licences",
        "",
        ("Each package's full terms are in its /usr/share/doc/PACKAGE/copyright (unpacked under the cache "
         f"folder's root/PACKAGE_VERSION/). The corpus mixes text under {licences}: keep it, and anything "
         "redistributed from it, under terms that honour each."),
        "",
    ]
    return "\n".join(lines)
