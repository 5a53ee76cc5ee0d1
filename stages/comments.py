"""The natural language of a file's comments (and Python docstrings), for the statistics.

Comments are cut out with each language's comment syntax, capped in length, and given to
langdetect (seeded, so the answer is repeatable). Only a seeded sample of files is looked at,
which keeps the stage cheap; files with too little comment text get no language.
"""
from __future__ import annotations

import re

from langdetect import DetectorFactory, LangDetectException, detect
from langdetect.detector_factory import init_factory

DetectorFactory.seed = 0
MAX_CHARS = 2000
MIN_LETTERS = 40

_HASH = re.compile(r"(?m)(?:^|\s)#(?![!{]|include|define|if|endif|else|pragma|import)\s?(.*)$")
_SLASH = re.compile(r"//\s?(.*)$|/\*(.*?)\*/", re.M | re.S)
_HTML = re.compile(r"<!--(.*?)-->", re.S)
_DASH = re.compile(r"--\s?(.*)$", re.M)
_PERCENT = re.compile(r"%\s?(.*)$", re.M)
_DOCSTRING = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)

_STYLE = {
    "Python": (_HASH, _DOCSTRING), "Shell": (_HASH,), "R": (_HASH,), "Perl": (_HASH,),
    "HTML": (_HTML,), "SQL": (_DASH,), "Haskell": (_DASH,), "TeX": (_PERCENT,), "Matlab": (_PERCENT,),
    "Prolog": (_PERCENT,),
}


def load_profiles() -> None:
    """Read langdetect's language profiles now (it reads them on its first detection: ~0.8 s)."""
    init_factory()


def comment_text(text: str, language: str) -> str:
    parts: list[str] = []
    for pattern in _STYLE.get(language, (_SLASH,)):
        for match in pattern.finditer(text):
            parts.append(" ".join(g for g in match.groups() if g))
            if sum(map(len, parts)) > MAX_CHARS:
                return " ".join(parts)[:MAX_CHARS]
    return " ".join(parts)[:MAX_CHARS]


def comment_language(text: str, language: str) -> str | None:
    """An ISO 639-1 code ('en', 'zh-cn', …), or None when the comments are too short to tell."""
    comments = comment_text(text, language)
    if sum(c.isalpha() for c in comments) < MIN_LETTERS:
        return None
    try:
        return detect(comments)
    except LangDetectException:
        return None
