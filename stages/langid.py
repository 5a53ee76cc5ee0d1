"""Programming language of a file from its path (extension or file name).

Covers CodeGeeX-13B's 23 languages and the others of its tag scheme (SPEC §3). A `.h` header is
decided between C, C++ and Objective-C from its content, since the extension alone cannot tell.
Files whose language is not identified, or not in the configured list, are dropped with a count.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import pyarrow as pa

from stages.records import mark

# CodeGeeX-13B's languages, in the order of their share of its corpus (SPEC §3).
CODEGEEX_LANGUAGES = (
    "C++", "Python", "Java", "JavaScript", "C", "Go", "HTML", "Shell", "PHP", "CSS",
    "TypeScript", "SQL", "TeX", "Rust", "Objective-C", "Scala", "Kotlin", "Pascal", "Fortran",
    "R", "CUDA", "C#", "Objective-C++",
)
OTHER_LANGUAGES = ("Perl", "Haskell", "Lisp", "Prolog", "Matlab", "Visual Basic", "Delphi", "Swift")
KNOWN_LANGUAGES = frozenset(CODEGEEX_LANGUAGES + OTHER_LANGUAGES)

_EXTENSIONS = {
    "C++": ".cpp .cc .cxx .c++ .hpp .hh .hxx .h++ .ipp .tpp .inl",
    "Python": ".py .pyw .pyi .pyx .pxd .pxi",
    "Java": ".java",
    "JavaScript": ".js .mjs .cjs .jsx",
    "C": ".c",
    "Go": ".go",
    "HTML": ".html .htm .xhtml",
    "Shell": ".sh .bash .zsh .ksh",
    "PHP": ".php .php3 .php4 .php5 .phtml",
    "CSS": ".css",
    "TypeScript": ".ts .tsx .mts .cts",
    "SQL": ".sql",
    "TeX": ".tex .sty .cls .ltx",
    "Rust": ".rs",
    "Objective-C": ".m",
    "Scala": ".scala .sc",
    "Kotlin": ".kt .kts",
    "Pascal": ".pas .pp",
    "Fortran": ".f .f90 .f95 .f03 .f08 .for .ftn",
    "R": ".r",
    "CUDA": ".cu .cuh",
    "C#": ".cs",
    "Objective-C++": ".mm",
    "Perl": ".pl .pm",
    "Haskell": ".hs .lhs",
    "Lisp": ".lisp .lsp .cl .el",
    "Prolog": ".pro .prolog",
    "Matlab": ".mat",
    "Visual Basic": ".vb .vbs .bas",
    "Delphi": ".dpr .dfm",
    "Swift": ".swift",
}
EXTENSION_TO_LANGUAGE = {ext: lang for lang, exts in _EXTENSIONS.items() for ext in exts.split()}
FILENAME_TO_LANGUAGE = {"makefile.sh": "Shell", "configure": "Shell", "sconstruct": "Python", "sconscript": "Python"}

_OBJC_HINT = re.compile(r"^\s*(#import\b|@interface\b|@implementation\b|@protocol\b)", re.M)
_CPP_HINT = re.compile(
    r"^\s*(namespace\b|template\s*<|class\s+\w+[^;]*\{|using\s+namespace\b|#include\s*<(iostream|string|vector|memory)>)"
    r"|std::|\bpublic:|\bprivate:",
    re.M,
)


def language_of_header(text: str) -> str:
    """C, C++ or Objective-C for a `.h` file, from telltale constructs in its content."""
    if _OBJC_HINT.search(text):
        return "Objective-C"
    if _CPP_HINT.search(text):
        return "C++"
    return "C"


def language_of(path: str, text: str | None = None) -> str | None:
    """The language of a file, or None when its path says nothing we know."""
    name = PurePosixPath(path).name.lower()
    if name in FILENAME_TO_LANGUAGE:
        return FILENAME_TO_LANGUAGE[name]
    suffix = PurePosixPath(name).suffix
    if suffix == ".h":
        return language_of_header(text or "")
    return EXTENSION_TO_LANGUAGE.get(suffix)


def identify_languages(batch: pa.Table, include: list[str]) -> pa.Table:
    """Fill the `language` column; drop files of unknown or unwanted languages."""
    wanted = set(include)
    languages, reasons = [], []
    for path, text in zip(batch.column("path").to_pylist(), batch.column("text").to_pylist()):
        lang = language_of(path, text)
        languages.append(lang)
        reasons.append("unknown_language" if lang is None else (None if lang in wanted else "excluded_language"))
    batch = batch.set_column(batch.schema.get_field_index("language"), "language", pa.array(languages, pa.string()))
    return mark(batch, reasons)
