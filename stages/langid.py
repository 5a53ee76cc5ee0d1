"""Programming language of a file: from its path when it has one, else from its content.

Covers CodeGeeX-13B's 23 languages and the others of its tag scheme (SPEC §3). With a path: the
extension or file name; a `.h` header is decided between C, C++ and Objective-C from its content.
Without one (the Pile's GitHub documents) or with an extensionless name: the shebang, then an
Emacs/Vim modeline, then — for path-less files — the content model (stages.langid_model: a linear
model over hashed code tokens that ships with codecorpus), accepted above a confidence threshold. Files whose language is not identified, or not
in the configured list, are dropped with a count.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import pyarrow as pa

from stages import langid_model
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
        if "-*-" not in line and "vi:" not in line and "vim:" not in line and "ex:" not in line:
            continue
        match = _EMACS_MODE.search(line) or _VIM_MODE.search(line)
        if match and match.group(1).lower() in _MODE_NAMES:
            return _MODE_NAMES[match.group(1).lower()]
    return None


_CUDA_WORDS = ("__global__", "__device__", "__shared__", "__syncthreads", "threadIdx", "blockIdx", "blockDim", "gridDim",
               "__host__", "__launch_bounds__", "cudaStream_t", "cudaMalloc", "cudaMemcpy", "cudaError_t",
               "__CUDACC__", "__CUDA_ARCH__", "__kernel ", "thrust::", "cub::", "device_vector", "__shfl", "atomicAdd(",
               "__ldg(")
_OBJC_SYNTAX = re.compile(r"@(?:interface|implementation|protocol|selector|autoreleasepool|synthesize|property|end)\b|@\"|"
                          r"\[(?:self|super)\s|\[\[\w+\s+alloc\]|#import\s*[<\"]|\bNS[A-Z]\w+\s*\*")
_KERNEL_LAUNCH = re.compile(r"<<<.*>>>")
_CUDA_INCLUDE = re.compile(r"#include\s*[<\"]cuda")
_CPP_WORDS = ("std::", "nullptr", "public:", "private:", "protected:", "namespace ", "virtual ")
_TEMPLATE = re.compile(r"\btemplate\s*<")
_CLASS = re.compile(r"\bclass\s+\w+\s*[:{]")
_SCOPE = re.compile(r"\b[A-Za-z_]\w*::~?[A-Za-z_]")    # a::b; C has it only in comments and strings, so 3 are asked for
_NEW_DELETE = re.compile(r"(?:[=(,)]|\breturn)\s*new\s+[A-Za-z_][\w:<>]*\s*[(\[;{]|^\s*delete\s*(?:\[\s*\])?\s*[\w(*]", re.M)
_STD_INCLUDE = re.compile(r"#include\s*<(?:iostream|string|vector|memory|map|algorithm|cstdio|cstdlib|cstring|cmath|cstdint)>")
_FORTRAN_HINT = re.compile(r"(?im)\bimplicit\s+none\b|^\s*end\s+(?:subroutine|module|program)\b")
SCORE_BATCH = 1024      # files scored at once: the feature arrays of a larger batch outgrow the CPU caches (≈1.5× slower)
REFINE_HEAD, REFINE_TAIL = 8192, 2048    # where the constructs below are looked for


def _refine(lang: str | None, text: str) -> str | None:
    """Constructs that settle what the model may blur: kernel syntax makes C or C++ CUDA (a C or C++
    file never has it, nor CUDA runtime types and calls outside host code that shares a `.cu`), `implicit none` or
    `end subroutine` makes it Fortran; Objective-C syntax (`@interface`, `[self …]`, `@"…"`) makes a C or C++
    file Objective-C; C++ constructs make a C file C++ and an Objective-C file Objective-C++, and a C++ or
    Objective-C++ file with none of them is C or Objective-C."""
    if lang not in ("C", "C++", "Objective-C", "Objective-C++"):
        return lang
    text = text[:REFINE_HEAD] + "\n" + text[-REFINE_TAIL:] if len(text) > REFINE_HEAD + REFINE_TAIL else text
    objc = lang.startswith("Objective-C")
    if not objc and _is_cuda(text):
        return "CUDA"
    if any(k in text for k in ("mplicit", "MPLICIT", "ubroutine", "UBROUTINE")) and _FORTRAN_HINT.search(text):
        return "Fortran"             # preprocessed Fortran (#include, #ifdef) looks like C to the model
    cpp = _has_cpp(text)
    if not objc and ("@" in text or "#import" in text or "NS" in text):
        objc = _OBJC_SYNTAX.search(text) is not None      # message sends and @-keywords are never C or C++
    if objc:
        return "Objective-C++" if cpp else "Objective-C"
    return "C++" if cpp else "C"


def _is_cuda(text: str) -> bool:
    if any(k in text for k in _CUDA_WORDS):
        return True
    return ("<<<" in text and _KERNEL_LAUNCH.search(text) is not None) or ("cuda" in text and _CUDA_INCLUDE.search(text) is not None)


def _has_cpp(text: str) -> bool:
    """C++ constructs (plain substring tests first: a regex over every C file is the slow part)."""
    if any(k in text for k in _CPP_WORDS):
        return True
    if "::" in text and len(_SCOPE.findall(text)) >= 3:
        return True
    return (("template" in text and _TEMPLATE.search(text) is not None) or ("class" in text and _CLASS.search(text) is not None)
            or ("#include" in text and _STD_INCLUDE.search(text) is not None)
            or (("new" in text or "delete" in text) and _NEW_DELETE.search(text) is not None))


def languages_of_content(texts: list[str], min_confidence: float = 0.3) -> list[str | None]:
    """The language of each path-less file: its `#!` line or modeline when it has one, else the content
    model (stages.langid_model), accepted at `min_confidence`; SCORE_BATCH files are scored at once."""
    out: list[str | None] = [language_of_interpreter_or_modeline(t) if t else None for t in texts]
    todo = [i for i, (t, lang) in enumerate(zip(texts, out)) if t and lang is None]
    for start in range(0, len(todo), SCORE_BATCH):
        chunk = todo[start:start + SCORE_BATCH]
        langs, scores = langid_model.model().predict([texts[i] for i in chunk])
        for i, lang, score in zip(chunk, langs, scores):
            out[i] = _refine(lang, texts[i]) if score >= min_confidence else None
    return out


def language_of(path: str | None, text: str | None = None, min_confidence: float = 0.3) -> str | None:
    """The language of a file, or None when neither its path nor its content tells one we know."""
    if path:
        lang = language_of_path(path, text)
        if lang or not text or PurePosixPath(path).suffix:
            return lang
        return language_of_interpreter_or_modeline(text)    # an extensionless script
    return languages_of_content([text or ""], min_confidence)[0]


def identify_languages(batch: pa.Table, include: list[str], min_confidence: float = 0.3) -> pa.Table:
    """Fill the `language` column; drop files of unknown or unwanted languages. Files without a path
    are identified from their content, all of a batch at once."""
    wanted = set(include)
    paths, texts = batch.column("path").to_pylist(), batch.column("text").to_pylist()
    languages = [language_of(p, t, min_confidence) if p else None for p, t in zip(paths, texts)]
    pathless = [i for i, p in enumerate(paths) if not p]
    for i, lang in zip(pathless, languages_of_content([texts[i] or "" for i in pathless], min_confidence)):
        languages[i] = lang
    reasons = ["unknown_language" if lang is None else (None if lang in wanted else "excluded_language") for lang in languages]
    batch = batch.set_column(batch.schema.get_field_index("language"), "language", pa.array(languages, pa.string()))
    return mark(batch, reasons)
