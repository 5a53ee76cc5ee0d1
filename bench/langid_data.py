"""Labelled code for the content language classifier: real files from public packages, split by package.

Every package is either a training package or a test package, for all the languages it holds: two
files of one project share a style, so a file-level split would measure memory, not generalisation.
The lists were fixed before any result was looked at. A file's label is the language of its
extension (`.h` files are left out: their extension does not settle C, C++ or Objective-C), and
only files the build's default filters keep are used. Sources:

  deb     a Debian binary package, installed with apt-get (its files from `dpkg -L`)
  src     a Debian source package's upstream tarball (`apt-get source --download-only`), read in memory
  npm     an npm tarball (`npm pack`), read in memory
  wheel   a PyPI wheel (`pip download`), read in memory
  python  this interpreter's standard library, or one package of its site-packages

`fetch()` downloads what is missing into ~/.cache/codecorpus-langid; nothing is extracted to disk.
"""
from __future__ import annotations

import glob
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import xxhash

from pipeline.config import FiltersConfig
from stages.filters import build_filters, first_reason
from stages.langid import language_of_path

CACHE = Path.home() / ".cache" / "codecorpus-langid"
KEEP = build_filters(FiltersConfig())
# Languages whose extensions are ambiguous in real package trees (Qt's .pro, Octave's .m, VBA's .cls…)
# and for which no package here holds enough: not labelled.
UNLABELLED = {"Prolog", "Matlab", "Delphi", "Visual Basic", "Swift"}
# `.cl` is OpenCL as often as Common Lisp, `.m` MATLAB as often as Objective-C: a file with one of these
# extensions is labelled only in packages of the language (Objective-C: npm's iOS code and GNUstep).
OBJC_PACKAGES = ("npm:", "src:gnustep")

TRAIN = [
    ("python", "stdlib"), ("python", "ray"),
    ("deb", "golang-1.19-src"), ("deb", "rust-src"), ("deb", "openjdk-17-source"), ("deb", "perl-modules-5.36"),
    ("deb", "texlive-latex-base"), ("deb", "fpc-source-3.2.2"), ("deb", "postgresql-15"), ("deb", "python3.11-doc"),
    ("src", "scala:src/"), ("src", "kotlin"), ("src", "r-base"), ("src", "mgcv"), ("src", "r-cran-dplyr"),
    ("src", "r-cran-tidyr"), ("src", "r-cran-purrr"), ("src", "r-cran-stringr"), ("src", "r-cran-jsonlite"),
    ("src", "nunit"), ("src", "keepass2"), ("src", "gnustep-base"), ("src", "lapack"), ("src", "hypre"),
    ("src", "sqlite3"), ("src", "emacs"), ("src", "nlohmann-json3"), ("src", "catch2"), ("src", "glm"),
    ("src", "symfony"), ("src", "haskell-lens"), ("src", "eigen3"), ("src", "rust-serde"), ("src", "libgdiplus"),
    ("src", "hdf5"), ("src", "libxc"), ("src", "googletest"), ("src", "yaml-cpp"), ("src", "pugixml"),
    ("deb", "postgresql-15-pgtap"), ("deb", "postgresql-15-orafce"), ("deb", "postgresql-15-partman"),
    ("deb", "postgresql-15-plpgsql-check"), ("deb", "elpa-company"), ("deb", "elpa-flycheck"), ("deb", "elpa-yasnippet"),
    ("npm", "react-native@0.76.0"), ("npm", "bootstrap@5.3.3"), ("npm", "rxjs@7.8.2"), ("npm", "lodash@4.17.21"),
    ("npm", "zod@3.23.8"), ("npm", "mobx@6.13.5"), ("npm", "immer@10.1.1"), ("npm", "@reduxjs/toolkit@2.3.0"),
    ("npm", "@tanstack/query-core@5.59.0"), ("npm", "animate.css@4.1.1"), ("npm", "font-awesome@4.7.0"),
    ("npm", "semantic-ui-css@2.5.0"), ("npm", "materialize-css@1.0.0"), ("npm", "@react-native-async-storage/async-storage@2.0.0"),
    ("npm", "react-native-svg@15.8.0"), ("npm", "react-native-webview@13.12.3"),
    ("wheel", "nvidia-cuda-cccl-cu12==12.9.27"),
]
# Tuning (features, rules, thresholds) was done on these; their figures are training figures.
VALIDATION = [
    ("python", "transformers"), ("python", "sklearn"),
    ("deb", "lazarus-src-2.2"), ("deb", "libmojolicious-perl"), ("deb", "texlive-science"), ("deb", "git-doc"),
    ("deb", "elpa-dash"), ("deb", "elpa-magit"),
    ("src", "scala:test/"), ("src", "r-cran-ggplot2"), ("src", "r-cran-httr"), ("src", "r-cran-testthat"),
    ("src", "r-cran-tibble"), ("src", "r-cran-shiny"), ("src", "r-cran-magrittr"), ("src", "r-cran-r6"),
    ("src", "newtonsoft-json"), ("src", "dbus-sharp"), ("src", "mumps"), ("src", "elpa"), ("src", "fftw3"),
    ("src", "rapidjson"), ("src", "fmtlib"), ("src", "spdlog"), ("src", "tinyxml2"), ("src", "php-laravel-framework"),
    ("src", "golang-github-spf13-cobra"), ("src", "golang-github-gorilla-mux"), ("src", "rust-clap"), ("src", "rust-rand"),
    ("src", "jline3"), ("src", "postgis"), ("src", "gromacs"), ("src", "starpu"), ("src", "ffmpeg"),
    ("npm", "react-native-reanimated@3.16.1"), ("npm", "react-native-screens@3.35.0"), ("npm", "expo-modules-core@2.0.0"),
    ("npm", "vue@3.5.12"), ("npm", "bulma@1.0.2"), ("npm", "edge-js@24.0.0"), ("npm", "d3@7.9.0"),
]
# The test packages: chosen after the validation set was used, before any result on them was seen.
TEST = [
    ("python", "matplotlib"), ("python", "datasets"),
    ("deb", "sqlite3-doc"), ("deb", "texlive-pictures"), ("deb", "libmoose-perl"), ("deb", "libdbi-perl"),
    ("deb", "elpa-projectile"), ("deb", "elpa-ivy"), ("deb", "postgresql-15-ip4r"), ("deb", "postgresql-15-prefix"),
    ("deb", "postgresql-15-periods"), ("deb", "postgresql-15-hypopg"),
    ("src", "curl"), ("src", "redis"), ("src", "lua5.4"), ("src", "jq"), ("src", "leveldb"), ("src", "snappy"), ("src", "re2"),
    ("src", "cppcheck"), ("src", "commons-lang3"), ("src", "junit4"), ("src", "golang-github-stretchr-testify"),
    ("src", "golang-github-pkg-errors"), ("src", "composer"), ("src", "rust-memchr"), ("src", "rust-nom"),
    ("src", "rust-regex-syntax"), ("src", "r-cran-rcpp"), ("src", "r-cran-glue"), ("src", "r-cran-vctrs"), ("src", "r-cran-cli"),
    ("src", "r-cran-withr"), ("src", "r-cran-xml2"), ("src", "r-cran-readr"), ("src", "pinta"), ("src", "smuxi"),
    ("src", "gbrainy"), ("src", "doublecmd"), ("src", "cqrlog"), ("src", "lammps"), ("src", "openmolcas"), ("src", "minpack"),
    ("src", "fftpack"),
    ("npm", "jquery@3.7.1"), ("npm", "moment@2.30.1"), ("npm", "effect@3.10.0"), ("npm", "fp-ts@2.16.9"),
    ("npm", "normalize.css@8.0.1"), ("npm", "purecss@3.0.0"), ("npm", "react-native-maps@1.18.0"),
    ("npm", "react-native-vector-icons@10.2.0"), ("npm", "@react-native-community/netinfo@11.4.1"),
    ("npm", "react-native-device-info@14.0.0"), ("npm", "react-native-image-picker@7.1.2"),
    ("npm", "react-native-gesture-handler@2.20.0"), ("npm", "react-native-safe-area-context@4.12.0"),
]
SOURCE_NAMES = {"symfony": "php-symfony", "mgcv": "r-cran-mgcv"}   # source package → tarball name prefix differs


def fetch(packages: list[tuple[str, str]]) -> None:
    """Download (or install, for `deb`) whatever of `packages` is not here yet."""
    for sub in ("src", "npm", "wheel"):
        (CACHE / sub).mkdir(parents=True, exist_ok=True)
    debs = [name for kind, name in packages if kind == "deb"]
    if debs:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *debs], check=False,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    for kind, name in packages:
        if kind == "src" and not _tarballs(name):
            subprocess.run(["apt-get", "source", "--download-only", "-qq", SOURCE_NAMES.get(name, name.split(":")[0])],
                           cwd=CACHE / "src", check=False)
        elif kind == "npm" and not (CACHE / "npm" / npm_file(name)).exists():
            subprocess.run(["npm", "pack", "--silent", name], cwd=CACHE / "npm", check=False)
        elif kind == "wheel" and not glob.glob(str(CACHE / "wheel" / "*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                            "-d", str(CACHE / "wheel"), name], check=False)


def _tarballs(name: str) -> list[str]:
    base = name.split(":")[0]    # the upstream tarball's name (SOURCE_NAMES gives the Debian source package's)
    return sorted(p for p in glob.glob(str(CACHE / "src" / f"{base}_*.orig.tar.*")) if not p.endswith(".asc"))


def npm_file(name: str) -> str:
    """`npm pack`'s file name for a package spec: @scope/pkg@1.0 → scope-pkg-1.0.tgz."""
    package, _, version = name.lstrip("@").rpartition("@")
    return f"{package.replace('/', '-')}-{version}.tgz"


def _label(name: str, package: str = "") -> str | None:
    lower = name.lower()
    if lower.endswith((".h", ".cl")) or (lower.endswith(".m") and not package.startswith(OBJC_PACKAGES)):
        return None
    lang = language_of_path(name)
    return None if lang in UNLABELLED else lang


def _members(kind: str, name: str) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file of a package whose extension names a language."""
    package = f"{kind}:{name}"
    if kind == "python":
        root = Path(sysconfig.get_paths()["stdlib"]) if name == "stdlib" else Path(sysconfig.get_paths()["purelib"]) / name
        skip = ("site-packages", "test", "tests") if name == "stdlib" else ()
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if _label(path.name, package) and path.is_file() and not path.is_symlink() and not (rel.parts and rel.parts[0] in skip):
                yield str(rel), path.read_bytes()
    elif kind == "deb":
        listing = subprocess.run(["dpkg", "-L", name], capture_output=True, text=True).stdout.split()
        for f in sorted(listing):
            p = Path(f)
            if _label(p.name, package) and p.is_file() and not p.is_symlink():
                yield f, p.read_bytes()
    elif kind == "wheel":
        for whl in sorted(glob.glob(str(CACHE / "wheel" / "*.whl"))):
            with zipfile.ZipFile(whl) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and _label(info.filename, package):
                        yield info.filename, zf.read(info)
    else:
        base, _, under = name.partition(":")
        archives = _tarballs(base) if kind == "src" else [str(CACHE / "npm" / npm_file(name))]
        for archive in archives:
            with tarfile.open(archive, "r|*") as tf:
                for info in tf:
                    inner = info.name.split("/", 1)[-1]
                    if info.isreg() and _label(info.name, package) and inner.startswith(under):
                        yield info.name, tf.extractfile(info).read()


def labelled(packages: list[tuple[str, str]], per_package: int) -> dict[str, list[tuple[str, str, str]]]:
    """{language: [(package, path, text)]}: at most `per_package` files of each language from each package,
    chosen by a hash of the path, only files the default filters keep."""
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for kind, name in packages:
        pool: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for path, data in _members(kind, name):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if first_reason(KEEP, text) is None:
                pool[_label(path, f"{kind}:{name}")].append((xxhash.xxh64_intdigest(path.encode()), path, text))
        for lang, items in pool.items():
            items.sort()
            out[lang] += [(f"{kind}:{name}", path, text) for _, path, text in items[:per_package]]
    return dict(out)
