"""What a file imports, read with regular expressions (DeepSeek-Coder's way), for ordering a
repository's files by their dependencies (stages/repo_order.py).

Each reference is a string `KIND:VALUE` that stages/repo_order.py resolves to files of the same
repository (or to nothing: most imports name other packages):

  py:a.b|x,y        Python `from a.b import x, y` (`py:a.b` for `import a.b`); pyrel:N:a.b|x  relative,
                    N leading dots (a name may be a submodule or something the module defines); only
                    imports that run when the module loads (not in a function, class or TYPE_CHECKING)
  rel:x/y           a path relative to the importing file (C/C++ `#include "…"`, JS/TS `./…`, PHP require)
  jvm:a.b.C         a Java/Kotlin/Scala class;  jvmpkg:a.b  a wildcard import of a package
  ns:A.B            a C# namespace (resolved to the files that declare it: `provides`)
  go:host/x/pkg     a Go package path
  rsmod:name        Rust `mod name;`;  rsuse:crate:a::b / rsuse:super:a  a Rust `use`
  php:A\\B\\C        a PHP class by namespace
"""
from __future__ import annotations

import re

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.M)
_JS = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"](\.{1,2}/[^'"\n]*|\.{1,2})['"]""")
_JAVA = re.compile(r"^[ \t]*import[ \t]+(?:static[ \t]+)?([\w.]+?)(\.\*)?[ \t]*;", re.M)
_KOTLIN = re.compile(r"^[ \t]*import[ \t]+([\w.]+?)(\.\*)?[ \t]*(?:as[ \t]+\w+)?[ \t]*;?[ \t]*$", re.M)
_SCALA = re.compile(r"^[ \t]*import[ \t]+([\w.]+)\.(?:\{([^}\n]*)\}|(_|\*)|(\w+))", re.M)
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*(?:include|import)[ \t]*"([^"\n]+)"', re.M)
_CS_USING = re.compile(r"^[ \t]*(?:global[ \t]+)?using[ \t]+(?:static[ \t]+)?(?:\w+[ \t]*=[ \t]*)?([\w.]+)[ \t]*;", re.M)
_CS_NAMESPACE = re.compile(r"^[ \t]*namespace[ \t]+([\w.]+)", re.M)
_GO_SINGLE = re.compile(r'^[ \t]*import[ \t]+(?:[\w.]+[ \t]+)?"([^"\n]+)"', re.M)
_GO_BLOCK = re.compile(r"^[ \t]*import[ \t]*\(([^)]*)\)", re.M)
_GO_PATH = re.compile(r'"([^"\n]+)"')
_RS_MOD = re.compile(r"^[ \t]*(?:pub(?:\([^)\n]*\))?[ \t]+)?mod[ \t]+(\w+)[ \t]*;", re.M)
_RS_USE = re.compile(r"^[ \t]*(?:pub(?:\([^)\n]*\))?[ \t]+)?use[ \t]+(crate|super|self)::([\w:]+)", re.M)
_PHP_REQUIRE = re.compile(r"""\b(?:require|include)(?:_once)?\s*\(?\s*(?:(?:__DIR__|dirname\(__FILE__\))\s*\.\s*)?['"]([^'"\n]+\.php)['"]""")
_PHP_USE = re.compile(r"^[ \t]*use[ \t]+(?:function[ \t]+|const[ \t]+)?\\?([\w\\]+)", re.M)
_AS = re.compile(r"[ \t]+as[ \t]+\w+")


_PY_LAZY_BLOCK = re.compile(r"(?:async[ \t]+)?def[ \t]|class[ \t]|if[ \t]+(?:\w+\.)?TYPE_CHECKING\b")


def _load_time(text: str, start: int) -> bool:
    """Whether the import at `start` runs when the module is loaded: at the top level, or indented
    under a top-level `try`/`if`/`with` — not inside a function or class (imported on call, often to
    break a cycle) nor under `if TYPE_CHECKING:` (never imported at run time)."""
    if start == 0 or text[start - 1] == "\n" and text[start] not in " \t":
        return True
    pos = text.rfind("\n", 0, start)
    while pos > 0:
        line_start = text.rfind("\n", 0, pos) + 1
        first = text[line_start:line_start + 1]
        if first and first not in " \t\n#":
            return not _PY_LAZY_BLOCK.match(text, line_start)
        pos = line_start - 1
    return True


def _python(text: str) -> list[str]:
    refs = []
    for m in _PY_IMPORT.finditer(text):
        if not _load_time(text, m.start()):
            continue
        for name in _AS.sub("", m.group(1)).split(","):
            if name.strip():
                refs.append(f"py:{name.strip()}")
    for m in _PY_FROM.finditer(text):
        if not _load_time(text, m.start()):
            continue
        dots, module = m.group(1), m.group(2)
        names = [n.strip() for n in _AS.sub("", m.group(3).strip("() \t")).replace("\n", " ").split(",")]
        names = [n for n in names if n and n != "*" and n.isidentifier()]
        refs.append(f"pyrel:{len(dots)}:{module}|{','.join(names)}" if dots else f"py:{module}|{','.join(names)}")
    return refs


def _jvm(text: str, language: str) -> list[str]:
    refs = []
    if language == "Scala":
        for m in _SCALA.finditer(text):
            base, group, wildcard, single = m.groups()
            if wildcard:
                refs.append(f"jvmpkg:{base}")
            for name in (group.split(",") if group else [single] if single else []):
                name = name.split("=>")[0].strip()
                if name.isidentifier():
                    refs.append(f"jvm:{base}.{name}")
        return refs
    pattern = _JAVA if language == "Java" else _KOTLIN
    return [f"jvmpkg:{m.group(1)}" if m.group(2) else f"jvm:{m.group(1)}" for m in pattern.finditer(text)]


def _go(text: str) -> list[str]:
    paths = [m.group(1) for m in _GO_SINGLE.finditer(text)]
    for block in _GO_BLOCK.finditer(text):
        paths += _GO_PATH.findall(block.group(1))
    return [f"go:{p}" for p in paths]


def _rust(text: str) -> list[str]:
    return [f"rsmod:{m.group(1)}" for m in _RS_MOD.finditer(text)] + \
           [f"rsuse:{m.group(1)}:{m.group(2)}" for m in _RS_USE.finditer(text)]


def _php(text: str) -> list[str]:
    return [f"rel:{m.group(1).lstrip('/')}" for m in _PHP_REQUIRE.finditer(text)] + \
           [f"php:{m.group(1)}" for m in _PHP_USE.finditer(text)]


def imports(text: str, language: str) -> list[str]:
    """The references of one file (empty for a language without a resolver)."""
    if language == "Python":
        return _python(text)
    if language in ("JavaScript", "TypeScript"):
        return [f"rel:{m.group(1)}" for m in _JS.finditer(text)]
    if language in ("Java", "Kotlin", "Scala"):
        return _jvm(text, language)
    if language in ("C", "C++", "CUDA", "Objective-C", "Objective-C++"):
        return [f"rel:{m.group(1)}" for m in _INCLUDE.finditer(text)]
    if language == "C#":
        return [f"ns:{m.group(1)}" for m in _CS_USING.finditer(text)]
    if language == "Go":
        return _go(text)
    if language == "Rust":
        return _rust(text)
    if language == "PHP":
        return _php(text)
    return []


def provides(text: str, language: str) -> list[str]:
    """The names a file declares that others import by name rather than by path (C# namespaces)."""
    if language == "C#":
        return [f"ns:{m.group(1)}" for m in _CS_NAMESPACE.finditer(text)]
    return []


RESOLVED_LANGUAGES = ("Python", "JavaScript", "TypeScript", "Java", "Kotlin", "Scala", "C", "C++", "CUDA",
                      "Objective-C", "Objective-C++", "C#", "Go", "Rust", "PHP")
