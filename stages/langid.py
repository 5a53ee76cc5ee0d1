"""Programming language of a file: from its path when it has one, else from its content.

Covers CodeGeeX-13B's 23 languages and the others of its tag scheme (SPEC §3). With a path: the
extension or file name; a `.h` header is decided between C, C++ and Objective-C from its content.
Without one (the Pile's GitHub documents) or with an extensionless name: the shebang, then an
Emacs/Vim modeline, then — for path-less files — Magika's content classifier (its model ships in
its wheel), accepted above a confidence threshold. Files whose language is not identified, or not
in the configured list, are dropped with a count.
"""
from __future__ import annotations

import functools
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


def language_of_path(path: str, text: str | None = None) -> str | None:
    """The language of a file from its name, or None when the name says nothing we know."""
    name = PurePosixPath(path).name.lower()
    if name in FILENAME_TO_LANGUAGE:
        return FILENAME_TO_LANGUAGE[name]
    suffix = PurePosixPath(name).suffix
    if suffix == ".h":
        return language_of_header(text or "")
    return EXTENSION_TO_LANGUAGE.get(suffix)


_INTERPRETERS = {
    "python": "Python", "sh": "Shell", "bash": "Shell", "zsh": "Shell", "ksh": "Shell", "dash": "Shell",
    "perl": "Perl", "node": "JavaScript", "nodejs": "JavaScript", "deno": "JavaScript", "ts-node": "TypeScript",
    "rscript": "R", "php": "PHP", "scala": "Scala", "swift": "Swift", "runhaskell": "Haskell", "sbcl": "Lisp",
    "swipl": "Prolog", "kotlin": "Kotlin",
}
_MODE_NAMES = dict(_INTERPRETERS, **{
    "c": "C", "c++": "C++", "cpp": "C++", "java": "Java", "javascript": "JavaScript", "js": "JavaScript",
    "go": "Go", "rust": "Rust", "tex": "TeX", "latex": "TeX", "plain-tex": "TeX", "sql": "SQL", "html": "HTML",
    "css": "CSS", "typescript": "TypeScript", "fortran": "Fortran", "f90": "Fortran", "pascal": "Pascal",
    "haskell": "Haskell", "lisp": "Lisp", "emacs-lisp": "Lisp", "objc": "Objective-C", "objective-c": "Objective-C",
    "objcpp": "Objective-C++", "r": "R", "matlab": "Matlab", "prolog": "Prolog", "cs": "C#", "csharp": "C#",
    "cuda": "CUDA", "delphi": "Delphi", "vb": "Visual Basic",
})
_SHEBANG = re.compile(r"#!\s*(?:\S*/)?([\w.+-]+)(?:\s+(?:-\S+\s+)*([\w.+-]+))?")
_EMACS_MODE = re.compile(r"-\*-\s*(?:.*?mode:\s*)?([\w+-]+)\s*(?:;.*?)?-\*-", re.I)
_VIM_MODE = re.compile(r"\b(?:vim?|ex):.*?\b(?:ft|filetype|syntax)=([\w+-]+)", re.I)

# Magika's labels for the languages we tag (CUDA and Objective-C++ are told apart from C++ and
# Objective-C by their constructs).
MAGIKA_LABELS = {
    "c": "C", "cpp": "C++", "cs": "C#", "css": "CSS", "fortran": "Fortran", "go": "Go", "haskell": "Haskell",
    "html": "HTML", "java": "Java", "javascript": "JavaScript", "kotlin": "Kotlin", "latex": "TeX", "lisp": "Lisp",
    "matlab": "Matlab", "objectivec": "Objective-C", "pascal": "Pascal", "perl": "Perl", "php": "PHP",
    "prolog": "Prolog", "python": "Python", "r": "R", "rust": "Rust", "scala": "Scala", "shell": "Shell",
    "sql": "SQL", "swift": "Swift", "typescript": "TypeScript", "vba": "Visual Basic",
}
_CUDA_HINT = re.compile(r"__global__|__shared__|<<<.*>>>|\bthreadIdx\b|\bblockIdx\b|#include\s*[<\"]cuda")
_SCOPE = re.compile(r"\w::\w")
_PERL_HINT = re.compile(r"^(?:package\s+\w+(?:::\w+)+\s*;|use\s+(?:strict|warnings)\s*;|=head1\b|=pod\b)", re.M)


def language_of_interpreter_or_modeline(text: str) -> str | None:
    """From a `#!` line or an Emacs/Vim modeline in the first or last lines."""
    if text.startswith("#!"):
        match = _SHEBANG.match(text.split("\n", 1)[0])
        if match:
            prog = match.group(2) if match.group(1) == "env" and match.group(2) else match.group(1)
            prog = re.sub(r"[\d.]+$", "", prog.lower())  # python3.11 → python
            if prog in _INTERPRETERS:
                return _INTERPRETERS[prog]
    lines = text[:2000].split("\n", 3)[:3] + text[-2000:].rsplit("\n", 4)[-4:]
    for line in lines:
        match = _EMACS_MODE.search(line) or _VIM_MODE.search(line)
        if match and match.group(1).lower() in _MODE_NAMES:
            return _MODE_NAMES[match.group(1).lower()]
    return None


@functools.lru_cache(maxsize=1)
def _magika():
    from magika import Magika   # loaded once per worker process; the model is inside the wheel
    return Magika()


def classify_content(text: str) -> tuple[str | None, float]:
    """Magika's language for a file's content and its score (None when not a language we tag)."""
    result = _magika().identify_bytes(text.encode("utf-8", "surrogatepass"))
    lang = MAGIKA_LABELS.get(str(result.prediction.dl.label))
    return _refine(lang, text), float(result.prediction.score)


def _refine(lang: str | None, text: str) -> str | None:
    """Split what Magika does not: CUDA from C/C++, C++ from C, Objective-C++ from Objective-C,
    and Flow-typed JavaScript (`@flow`) from TypeScript."""
    if lang in ("C", "C++") and _CUDA_HINT.search(text):
        return "CUDA"
    if lang == "C" and _CPP_HINT.search(text):
        return "C++"
    if lang == "Objective-C" and (_CPP_HINT.search(text) or _SCOPE.search(text)):
        return "Objective-C++"
    if lang == "TypeScript" and "@flow" in text[:3000]:
        return "JavaScript"
    return lang


def language_of(path: str | None, text: str | None = None, min_confidence: float = 0.3) -> str | None:
    """The language of a file, or None when neither its path nor its content tells one we know."""
    if path:
        lang = language_of_path(path, text)
        if lang or not text or PurePosixPath(path).suffix:
            return lang
        return language_of_interpreter_or_modeline(text)    # an extensionless script
    if not text:
        return None
    lang = language_of_interpreter_or_modeline(text)
    if lang:
        return lang
    if _PERL_HINT.search(text):            # Magika often takes POD-heavy Perl modules for prose
        return "Perl"
    lang, score = classify_content(text)
    return lang if score >= min_confidence else None


def identify_languages(batch: pa.Table, include: list[str], min_confidence: float = 0.3) -> pa.Table:
    """Fill the `language` column; drop files of unknown or unwanted languages."""
    wanted = set(include)
    languages, reasons = [], []
    for path, text in zip(batch.column("path").to_pylist(), batch.column("text").to_pylist()):
        lang = language_of(path, text, min_confidence)
        languages.append(lang)
        reasons.append("unknown_language" if lang is None else (None if lang in wanted else "excluded_language"))
    batch = batch.set_column(batch.schema.get_field_index("language"), "language", pa.array(languages, pa.string()))
    return mark(batch, reasons)
