"""CodeGeeX's language tag: a comment line naming the language goes before each file's code (SPEC §3)."""
from __future__ import annotations

import pyarrow as pa

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


def insert_tags(batch: pa.Table) -> pa.Table:
    texts = [tagged(t, lang) for t, lang in zip(batch.column("text").to_pylist(), batch.column("language").to_pylist())]
    return batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.large_string()))
