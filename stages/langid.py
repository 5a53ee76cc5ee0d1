"""Programming language of a file: from its path when it has one, else from its content.

Covers CodeGeeX-13B's 23 languages and the others of its tag scheme (CodeGeeX paper, arXiv 2303.17568). With a path: the
extension or file name; a `.h` header is decided between C, C++ and Objective-C from its content.
Without one (the Pile's GitHub documents) or with an extensionless name: the shebang, then an
Emacs/Vim modeline, then — for path-less files — the content model (stages.langid_model: a linear
model over hashed code tokens that ships with codecorpus), accepted above a confidence threshold and
settled by code constructs where it blurs languages (C/C++/Objective-C/CUDA, TypeScript/JavaScript).
Files whose language is not identified, or not in the configured list, are dropped with a count.
"""
from __future__ import annotations

import re
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages import langid_model
from codecorpus.stages.records import mark

# CodeGeeX-13B's languages, in the order of their share of its corpus (arXiv 2303.17568).
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
    file = PurePosixPath(path)
    name = file.name.lower()
    if name in FILENAME_TO_LANGUAGE:
        return FILENAME_TO_LANGUAGE[name]
    if file.suffix in (".C", ".H"):      # upper-case: C++ by the compilers' convention
        return "C++"
    suffix = file.suffix.lower()
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


def _any_of(*words: str) -> str:
    return "|".join(re.escape(w) for w in words)


# Constructs that settle what the model may blur. Each is one RE2 expression run over a whole batch (pyarrow's
# match_substring_regex, ~100× Python's `re` on these alternations), on a file's first REFINE_HEAD and last
# REFINE_TAIL characters. Kernel syntax and CUDA runtime types/calls are never in C or C++; preprocessed Fortran
# (`#include`, `#ifdef`) looks like C to the model; message sends and @-keywords are never C or C++; types,
# interfaces and `as` casts are never JavaScript; a::b occurs in C only in comments and strings (3 are asked for),
# in Objective-C not at all (1 suffices).
_CONSTRUCTS = {
    "cuda": _any_of("__global__", "__device__", "__shared__", "__syncthreads", "threadIdx", "blockIdx", "blockDim", "gridDim",
                    "__host__", "__launch_bounds__", "cudaStream_t", "cudaMalloc", "cudaMemcpy", "cudaError_t", "__CUDACC__",
                    "__CUDA_ARCH__", "__kernel ", "thrust::", "cub::", "device_vector", "__shfl", "atomicAdd(", "__ldg(")
            + r"|<<<.*>>>|#include\s*[<\"]cuda",
    "fortran": r"(?im)\bimplicit\s+none\b|^\s*end\s+(?:subroutine|module|program)\b",
    "objc": r"@(?:interface|implementation|protocol|selector|autoreleasepool|synthesize|property|end|try|synchronized|encode|"
            r"available|optional|required)\b|@\"|\[(?:self|super)\s|\[\[\w+\s+alloc\]|#import\s*[<\"]|\bNS[A-Z]\w+\s*\*|"
            r"objc_arc|__bridge\b|\bid\s*<\s*[A-Z]\w*\s*>",
    "cpp": _any_of("std::", "nullptr", "static_cast<", "reinterpret_cast<", "const_cast<", "dynamic_cast<", "constexpr",
                   "noexcept")
           + r"|(?m:^\s*(?:public|private|protected)\s*:|^\s*(?:virtual|explicit)\s+[\w~]|^\s*namespace\s+\w)"
           r"|\bnamespace\s+[\w:]*\s*\{|\busing\s+namespace\b|\btypename\s+\w|\btemplate\s*<|\bclass\s+\w+\s*[:{]"
           r"|#(?:include|import)\s*[<\"][^\">\n]+\.(?:hpp|hh|hxx|h\+\+)[\">]"
           r"|#include\s*<[A-Za-z_][\w/]*>"          # a header without an extension: <vector>, <QtWidgets>; C's end in .h
           r"|(?:[=(,)]|\breturn)\s*new\s+[A-Za-z_][\w:<>]*\s*[(\[;{]|(?m:^\s*delete\s*(?:\[\s*\])?\s*[\w(*])",
    "typescript": r"(?m)\b(?:interface|enum|namespace|declare|abstract|implements)\s+[A-Za-z_]|\b(?:import|export)\s+type\b"
                  r"|\breadonly\s+\w|\b(?:private|protected|public)\s+(?:readonly\s+|static\s+)?[A-Za-z_]\w*\s*[:(=;?]"
                  r"|(?:^|[\s;])type\s+[A-Z]\w*(?:<[^>]*>)?\s*=|\w\?:\s*\w|@ts-(?:ignore|expect-error|nocheck)\b"
                  r"|[\w)\]?]\s*:\s*(?:string|number|boolean|any|void|unknown|never)\b(?:\[\])?\s*[,)=;{|>\]]"
                  r"|\bas\s+(?:const|any|unknown|string|number|boolean)\b|\bas\s+[A-Z]\w*(?:<[^>]*>)?\s*[;,)\]]"
                  r"|\)\s*:\s*(?:Promise|[A-Z]\w*)(?:<[^>]*>)?(?:\[\])?\s*(?:\{|=>)|\b(?:let|const|var)\s+\w+\s*:\s*[A-Za-z_{\[(]"
                  r"|\(\s*[a-z_]\w*\??\s*:\s*[A-Z]\w*(?:<[^>]*>)?(?:\[\])?\s*[,)|=]",
}
_COUNTED = {"scope": r"\b[A-Za-z_]\w*::~?[A-Za-z_]", "message_send": r"\[\w+(?:(?:->|\.)\w+)*\s+\w+:[^\s\]]"}
_REFINED = frozenset({"TypeScript", "C", "C++", "Objective-C", "Objective-C++"})
SCORE_BATCH = 1024      # files scored at once: the feature arrays of a larger batch outgrow the CPU caches (≈1.5× slower)
REFINE_HEAD, REFINE_TAIL = 8192, 2048    # where the constructs are looked for


def _decide(lang: str, has: dict[str, int]) -> str:
    """The language the constructs found make of the model's answer."""
    if lang == "TypeScript":         # modern JavaScript reads like TypeScript to the model
        return lang if has["typescript"] else "JavaScript"
    objc = lang.startswith("Objective-C")
    if not objc and has["cuda"]:
        return "CUDA"
    if has["fortran"]:
        return "Fortran"
    cpp = has["cpp"] or has["scope"] >= 3
    if objc or has["objc"] or has["message_send"] >= 2:
        return "Objective-C++" if cpp or has["scope"] else "Objective-C"
    return "C++" if cpp else "C"


def _refine_all(langs: list[str | None], texts: list[str]) -> list[str | None]:
    """The model's answers, settled by the constructs above where it blurs TypeScript/JavaScript and the C family."""
    todo = [i for i, lang in enumerate(langs) if lang in _REFINED]
    if not todo:
        return list(langs)
    cut = REFINE_HEAD + REFINE_TAIL
    windows = pa.array([texts[i] if len(texts[i]) <= cut else f"{texts[i][:REFINE_HEAD]}\n{texts[i][-REFINE_TAIL:]}"
                        for i in todo], pa.large_string())
    found = {name: pc.match_substring_regex(windows, rx).to_pylist() for name, rx in _CONSTRUCTS.items()}
    found |= {name: pc.count_substring_regex(windows, rx).to_pylist() for name, rx in _COUNTED.items()}
    out = list(langs)
    for k, i in enumerate(todo):
        out[i] = _decide(langs[i], {name: values[k] for name, values in found.items()})
    return out


def _refine(lang: str | None, text: str) -> str | None:
    """One file's refinement (see _refine_all)."""
    return _refine_all([lang], [text])[0]


def languages_of_content(texts: list[str], min_confidence: float = 0.3) -> list[str | None]:
    """The language of each path-less file: its `#!` line or modeline when it has one, else the content
    model (stages.langid_model), accepted at `min_confidence`; SCORE_BATCH files are scored at once."""
    out: list[str | None] = [language_of_interpreter_or_modeline(t) if t else None for t in texts]
    todo = [i for i, (t, lang) in enumerate(zip(texts, out)) if t and lang is None]
    for start in range(0, len(todo), SCORE_BATCH):
        chunk = todo[start:start + SCORE_BATCH]
        langs, scores = langid_model.model().predict([texts[i] for i in chunk])
        langs = _refine_all([lang if score >= min_confidence else None for lang, score in zip(langs, scores)],
                            [texts[i] for i in chunk])
        for i, lang in zip(chunk, langs):
            out[i] = lang
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
