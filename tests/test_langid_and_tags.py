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


def test_pathless_real_files_are_identified_from_content(stdlib_texts):
    """Real files of this machine without their paths: stdlib modules are Python, pyarrow's C++
    headers are C++, and a batch is identified in one call."""
    import sysconfig
    from pathlib import Path

    from stages.langid import languages_of_content
    headers = sorted((Path(sysconfig.get_paths()["purelib"]) / "pyarrow" / "include" / "arrow").glob("*.h"))
    cpp = [h.read_text() for h in headers if h.stat().st_size > 3000][:15]
    got = languages_of_content(stdlib_texts[:30] + cpp)
    assert got[:30].count("Python") >= 29
    assert len(cpp) >= 5 and got[30:].count("C++") >= len(cpp) - 1


def test_refinements_settle_what_the_model_blurs():
    from stages.langid import _refine
    kernel = "#include <cstdio>\n__global__ void add(float *x) { x[threadIdx.x] += 1; }\n"
    assert _refine("C++", kernel) == "CUDA" and _refine("C", kernel) == "CUDA"
    assert _refine("C", "namespace a {\nint f();\n}\n") == "C++"
    assert _refine("C++", "#include <stdio.h>\nint main(void) { return 0; }\n") == "C"
    assert _refine("Objective-C", "#import <Foundation/Foundation.h>\nstd::vector<int> v;\n") == "Objective-C++"
    assert _refine("Objective-C", "#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n") == "Objective-C"
    fortran = "#include \"config.h\"\nsubroutine f(x)\n  implicit none\n  real :: x\nend subroutine f\n"
    assert _refine("C", fortran) == "Fortran"
    assert _refine("Python", kernel) == "Python"           # only the C family is refined


def test_shebang_and_modeline_come_first_and_unsure_is_unknown():
    from stages.langid import languages_of_content
    got = languages_of_content(["#!/usr/bin/env bash\necho hi\n", "/* -*- mode: c++ -*- */\nint x;\n",
                                "qzxv wplk mrtg vbnc " * 5], min_confidence=0.9)
    assert got == ["Shell", "C++", None]


def test_the_model_ships_with_its_package_list():
    import json

    from stages import langid_model
    assert langid_model.MODEL_PATH.stat().st_size < 20e6
    manifest = json.loads(langid_model.MODEL_PATH.with_suffix(".json").read_text())
    model = langid_model.model()
    assert set(model.classes) == set(manifest["classes"]) and {"Scala", "R", "CUDA", "Objective-C++"} <= set(model.classes)
    assert all(p["version"] for p in manifest["packages"])
