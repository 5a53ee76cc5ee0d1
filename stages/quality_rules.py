"""Per-language quality rules over the quality signals (`filters.rules = "quality"`).

Each rule is a small class whose `drops` returns, for a whole batch, which files it drops; its
`reason` is what the books count them under. Thresholds come from `QualitySettings`: a default per
key (the published figure where there is one: see RULE_SOURCES and the README's config reference)
and per-language overrides. A file is judged by the first rule that drops it, in RULES' order,
after CodeGeeX's filters (so "dropped beyond today's filters" is what these rules add).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pyarrow as pa
import xxhash

from codecorpus.stages.quality_signals import C_FAMILY

# which languages the content model cannot tell apart from each other: a disagreement inside one of
# these is not a mismatch (a `.h` of C++, a `.js` of TypeScript-shaped code, a `.php` page of HTML)
SAME_FAMILY = (C_FAMILY, frozenset({"JavaScript", "TypeScript"}), frozenset({"HTML", "PHP"}),
               frozenset({"Pascal", "Delphi"}))
BUILD_DIRS = frozenset({"dist", "node_modules", "bower_components"})
BUILD_NAMES = (".min.js", ".min.css", "-min.js", ".bundle.js", ".min.mjs")

DEFAULTS: dict[str, float] = {
    "min_lines": 10, "max_lines": 100_000,
    "min_alpha_share": 0.25, "max_digit_share": 0.2, "max_space_share": 0.5,
    "max_comment_share": 0.9, "min_comment_share": 0.0, "max_assert_share": 0.4,
    "max_encoded_run": 1024, "max_encoded_share": 0.5,
    "max_data_line_share": 0.5, "max_duplicate_line_share": 0.6, "max_long_line_share": 0.5,
    "min_html_visible_chars": 100, "min_html_text_share": 0.2,
    "max_pass_share": 0.05, "max_import_share": 0.3, "max_print_share": 0.4, "max_def_share": 0.2,
    "max_main_count": 1, "max_preprocessor_share": 0.8,
    "go_test_keep": 0.2, "mismatch_confidence": 0.9,
}


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds (DEFAULTS' keys), per-language overrides, rules switched off, and whether every Python
    file is parsed (else only those the screen flags)."""
    thresholds: dict = field(default_factory=lambda: dict(DEFAULTS))
    by_language: dict = field(default_factory=dict)     # {language: {key: value}}
    off: frozenset = frozenset()
    parse_all: bool = False

    def limit(self, key: str, langs: np.ndarray) -> np.ndarray:
        out = np.full(len(langs), float(self.thresholds[key]))
        for lang, values in self.by_language.items():
            if key in values:
                out[langs == lang] = float(values[key])
        return out


@dataclass(frozen=True)
class Batch:
    """What a rule reads: the signals as numpy arrays (floats NaN where not measured), languages, ids, paths."""
    q: dict
    langs: np.ndarray
    ids: list
    paths: list

    @classmethod
    def of(cls, quality: pa.StructArray, langs, ids, paths) -> "Batch":
        q = {}
        for i, f in enumerate(quality.type):
            col = quality.field(i)
            if pa.types.is_floating(f.type) or pa.types.is_integer(f.type):
                q[f.name] = col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
            else:
                q[f.name] = np.array(col.to_pylist(), dtype=object)
        return cls(q, np.array([lang or "" for lang in langs], dtype=object), list(ids), list(paths))


@dataclass(frozen=True)
class Above:
    """Drop when `signal` > the `key` threshold (for `languages` only, when given)."""
    reason: str
    signal: str
    key: str
    languages: frozenset | None = None

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        with np.errstate(invalid="ignore"):     # NaN (not measured for this file) crosses nothing
            hit = self.crosses(b.q[self.signal], s.limit(self.key, b.langs))
        return hit & np.isin(b.langs, list(self.languages)) if self.languages else hit

    @staticmethod
    def crosses(value: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return value > limit


@dataclass(frozen=True)
class Below(Above):
    """Drop when `signal` < the `key` threshold."""

    @staticmethod
    def crosses(value: np.ndarray, limit: np.ndarray) -> np.ndarray:
        return value < limit


@dataclass(frozen=True)
class EncodedData:
    """StarCoder2: a run of base64/hex/escaped bytes over `max_encoded_run` characters, or such runs
    making up over `max_encoded_share` of the file."""
    reason: str = "encoded_data"

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        return (b.q["encoded_max"] > s.limit("max_encoded_run", b.langs)) | (b.q["encoded_share"] > s.limit("max_encoded_share", b.langs))


@dataclass(frozen=True)
class Flag:
    """Drop when a boolean signal is `when` (an XML header; a Python file that does not parse)."""
    reason: str
    signal: str
    when: bool = True

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        return np.array([v is self.when for v in b.q[self.signal]], dtype=bool)


@dataclass(frozen=True)
class CompiledOutput:
    """Compiled or bundled output: a marker of a compiler, bundler or parser generator (the signal's
    name), or a path in a build-output folder / a minified file name."""
    reason: str = "compiled_output"

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        marked = np.array([m is not None for m in b.q["compiled_marker"]], dtype=bool)
        return marked | np.array([_build_output(p) for p in b.paths], dtype=bool)


def _build_output(path: str | None) -> bool:
    if not path:
        return False
    p = PurePosixPath(path)
    return p.name.lower().endswith(BUILD_NAMES) or any(part in BUILD_DIRS for part in p.parts[:-1])


@dataclass(frozen=True)
class HtmlText:
    """An HTML page with little visible text: under `min_html_visible_chars` characters or under
    `min_html_text_share` of the page (templates, generated pages, script containers)."""
    reason: str = "html_text"

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (b.q["html_visible_chars"] < s.limit("min_html_visible_chars", b.langs)) | \
                (b.q["html_text_share"] < s.limit("min_html_text_share", b.langs))


@dataclass(frozen=True)
class GoTestSample:
    """OpenCoder: keep a `go_test_keep` share of Go test files (`_test.go`), chosen by a hash of the id."""
    reason: str = "go_test_sample"

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        keep = s.limit("go_test_keep", b.langs)
        return np.array([bool(p) and p.endswith("_test.go") and xxhash.xxh64_intdigest(i.encode()) / 2**64 >= k
                         for p, i, k in zip(b.paths, b.ids, keep)], dtype=bool)


@dataclass(frozen=True)
class LanguageMismatch:
    """The extension says one language, the content model another (outside its family, with at least
    `mismatch_confidence`): dropped, not relabelled — the extension is right for nearly every file,
    so a confident disagreement marks data, test vectors or output behind a borrowed extension. (The
    model is asked only about files of the languages it knows: the others have no content language.)"""
    reason: str = "language_mismatch"

    def drops(self, b: Batch, s: QualitySettings) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            sure = b.q["content_confidence"] >= s.limit("mismatch_confidence", b.langs)
        return np.array([bool(c) and ok and c != lang and not _same_family(c, lang)
                         for c, ok, lang in zip(b.q["content_language"], sure, b.langs)], dtype=bool)


def _same_family(a: str, b: str) -> bool:
    return any(a in f and b in f for f in SAME_FAMILY)


PY, C = frozenset({"Python"}), C_FAMILY


def rules() -> list:
    """Every rule, in the order they are tried."""
    return [
        CompiledOutput(), EncodedData(), Flag("xml_header", "xml_header"),
        Above("minified", "long_line_share", "max_long_line_share"),
        Below("few_lines", "lines", "min_lines"), Above("many_lines", "lines", "max_lines"),
        Below("alpha_share", "alpha_share", "min_alpha_share"), Above("digit_share", "digit_share", "max_digit_share"),
        Above("whitespace_share", "space_share", "max_space_share"),
        Above("comment_share", "comment_share", "max_comment_share"), Below("few_comments", "comment_share", "min_comment_share"),
        Above("data_lines", "data_line_share", "max_data_line_share"),
        Above("duplicate_lines", "duplicate_line_share", "max_duplicate_line_share"),
        Above("assert_lines", "assert_share", "max_assert_share"),
        HtmlText(),
        Flag("python_syntax", "python_parses", when=False),
        Above("python_pass", "pass_share", "max_pass_share", PY), Above("python_imports", "import_share", "max_import_share", PY),
        Above("python_prints", "print_share", "max_print_share", PY), Above("python_defs", "def_share", "max_def_share", PY),
        Above("several_mains", "main_count", "max_main_count", C),
        Above("preprocessor_lines", "preprocessor_share", "max_preprocessor_share", C),
        GoTestSample(), LanguageMismatch(),
    ]


RULE_NAMES = tuple(rule.reason for rule in rules())


def first_reasons(b: Batch, s: QualitySettings) -> list[str | None]:
    """Per file, the first rule (not switched off) that drops it, or None."""
    reasons = np.full(len(b.langs), None, dtype=object)
    for rule in rules():
        if rule.reason in s.off:
            continue
        hit = rule.drops(b, s) & (reasons == None)   # noqa: E711 (elementwise)
        reasons[hit] = rule.reason
    return reasons.tolist()
