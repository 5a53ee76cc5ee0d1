import pyarrow as pa

from stages.langid import CODEGEEX_LANGUAGES, identify_languages, language_of
from stages.records import RECORD_SCHEMA
from stages.tag import LANGUAGE_TAGS, tagged_texts


def test_every_codegeex_language_has_an_extension_and_a_tag():
    from stages.langid import EXTENSION_TO_LANGUAGE
    assert set(CODEGEEX_LANGUAGES) <= set(EXTENSION_TO_LANGUAGE.values())
    assert set(CODEGEEX_LANGUAGES) <= set(LANGUAGE_TAGS)


def test_exact_tag_strings():
    assert LANGUAGE_TAGS["HTML"] == "<!--language: HTML-->"
    assert LANGUAGE_TAGS["Fortran"] == "!language: Fortran"
    assert LANGUAGE_TAGS["CUDA"] == "// language: Cuda"
    assert LANGUAGE_TAGS["CSS"] == "/* language: CSS */"
    assert LANGUAGE_TAGS["SQL"] == "-- language: SQL"


def test_paths():
    assert language_of("pkg/mod.py") == "Python"
    assert language_of("src/Main.JAVA") == "Java"
    assert language_of("a/b.cu") == "CUDA"
    assert language_of("README.md") is None


def test_headers_are_decided_from_content():
    assert language_of("x.h", "#import <Foundation/Foundation.h>\n@interface A\n@end") == "Objective-C"
    assert language_of("x.h", "namespace a {\ntemplate <class T> struct B {};\n}") == "C++"
    assert language_of("x.h", "#ifndef X_H\nint f(void);\n#endif") == "C"


def _records(paths_texts):
    rows = [dict(id=str(i), source="s", repo="r", path=p, license=None, language=None, text=t, size=len(t),
                 rank_key=str(i), status="kept", reason=None) for i, (p, t) in enumerate(paths_texts)]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def test_identify_and_tag_a_batch():
    batch = identify_languages(_records([("a.py", "x = 1\n"), ("b.txt", "hello"), ("c.go", "package main\n")]),
                               include=["Python"])
    assert batch.column("language").to_pylist() == ["Python", None, "Go"]
    assert batch.column("reason").to_pylist() == [None, "unknown_language", "excluded_language"]
    tagged = tagged_texts(batch.slice(0, 1))
    assert tagged == ["# language: Python\nx = 1\n"]
