"""CodeGeeX's language tag: a comment line naming the language goes before each file's code (CodeGeeX's exact strings)."""
from __future__ import annotations

import pyarrow as pa
import xxhash

from codecorpus.stages.comments import comment_language

LANGUAGE_TAGS = {
    "C++": "// language: C++", "Python": "# language: Python", "Java": "// language: Java",
    "JavaScript": "// language: JavaScript", "C": "// language: C", "Go": "// language: Go",
    "HTML": "<!--language: HTML-->", "Shell": "# language: Shell", "PHP": "// language: PHP",
    "CSS": "/* language: CSS */", "TypeScript": "// language: TypeScript", "SQL": "-- language: SQL",
    "TeX": "% language: TeX", "Rust": "// language: Rust", "Objective-C": "// language: Objective-C",
    "Scala": "// language: Scala", "Kotlin": "// language: Kotlin", "Pascal": "// language: Pascal",
    "Fortran": "!language: Fortran", "R": "# language: R", "CUDA": "// language: Cuda",
    "C#": "// language: C#", "Objective-C++": "// language: Objective-C++",
    "Perl": "# language: Perl", "Haskell": "-- language: Haskell", "Lisp": "; language: Lisp",
    "Prolog": "% language: Prolog", "Matlab": "% language: Matlab",
    "Visual Basic": "' language: Visual Basic", "Delphi": "{language: Delphi}", "Swift": "// language: swift",
}


def tagged(text: str, language: str) -> str:
    return f"{LANGUAGE_TAGS[language]}\n{text}"


def in_sample(record_id: str, fraction: float) -> bool:
    return xxhash.xxh64_intdigest(record_id.encode(), seed=17) < fraction * 2**64


def sample_comment_languages(batch: pa.Table, comment_sample: float = 0.0) -> pa.Table:
    """For a seeded sample of files, note the natural language of their comments (`comment_lang`)."""
    ids, texts, langs = (batch.column(c).to_pylist() for c in ("id", "text", "language"))
    comment_langs = [comment_language(t, lang) if in_sample(i, comment_sample) else None for i, t, lang in zip(ids, texts, langs)]
    return batch.set_column(batch.schema.get_field_index("comment_lang"), "comment_lang", pa.array(comment_langs, pa.string()))


def tagged_texts(batch: pa.Table) -> list[str]:
    """Each file's text with its tag line in front."""
    return [tagged(t, lang) for t, lang in zip(batch.column("text").to_pylist(), batch.column("language").to_pylist())]
