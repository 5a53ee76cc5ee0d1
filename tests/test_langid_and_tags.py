import pyarrow as pa

from codecorpus.stages.langid import CODEGEEX_LANGUAGES, identify_languages, language_of
from codecorpus.stages.records import RECORD_SCHEMA
from codecorpus.stages.tag import LANGUAGE_TAGS, tagged_texts


def test_every_codegeex_language_has_an_extension_and_a_tag():
    from codecorpus.stages.langid import EXTENSION_TO_LANGUAGE
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

    from codecorpus.stages.langid import languages_of_content
    headers = sorted((Path(sysconfig.get_paths()["purelib"]) / "pyarrow" / "include" / "arrow").glob("*.h"))
    cpp = [h.read_text() for h in headers if h.stat().st_size > 3000][:15]
    got = languages_of_content(stdlib_texts[:30] + cpp)
    assert got[:30].count("Python") >= 29
    assert len(cpp) >= 5 and got[30:].count("C++") >= len(cpp) - 1


def test_a_file_of_every_language_from_its_content():
    """One file per language (written for these tests, in tests/fixtures/languages), identified without its
    path: every one of CodeGeeX's 23 languages, plus Perl and Emacs Lisp."""
    from pathlib import Path

    from codecorpus.stages.langid import language_of_path, languages_of_content
    files = sorted(p for p in (Path(__file__).parent / "fixtures" / "languages").iterdir() if p.name != "README.md")
    truth = [language_of_path(p.name) for p in files]
    assert set(CODEGEEX_LANGUAGES) <= set(truth)
    got = languages_of_content([p.read_text() for p in files])
    assert [(p.name, g) for p, g, t in zip(files, got, truth) if g != t] == []


def test_refinements_settle_what_the_model_blurs():
    from codecorpus.stages.langid import _refine
    kernel = "#include <cstdio>\n__global__ void add(float *x) { x[threadIdx.x] += 1; }\n"
    assert _refine("C++", kernel) == "CUDA" and _refine("C", kernel) == "CUDA"
    assert _refine("C", "namespace a {\nint f();\n}\n") == "C++"
    assert _refine("C++", "#include <stdio.h>\nint main(void) { return 0; }\n") == "C"
    assert _refine("Objective-C", "#import <Foundation/Foundation.h>\nstd::vector<int> v;\n") == "Objective-C++"
    assert _refine("Objective-C", "#import <Foundation/Foundation.h>\n@interface A : NSObject\n@end\n") == "Objective-C"
    fortran = "#include \"config.h\"\nsubroutine f(x)\n  implicit none\n  real :: x\nend subroutine f\n"
    assert _refine("C", fortran) == "Fortran"
    assert _refine("Python", kernel) == "Python"           # only the C family is refined
    # Objective-C syntax is never C or C++; an "Objective-C++" file without C++ is Objective-C
    message = "#include <stdio.h>\nvoid f(id obj) { [self close]; NSLog(@\"done\"); }\n"
    assert _refine("C", message) == "Objective-C" and _refine("C++", message) == "Objective-C"
    assert _refine("C++", message + "namespace a { int g(); }\n") == "Objective-C++"
    assert _refine("Objective-C++", "@implementation A\n- (void)go { [self stop]; }\n@end\n") == "Objective-C"
    # host code of a .cu file: CUDA runtime types and thrust make it CUDA
    assert _refine("C++", "void f(cudaStream_t s) { g(s); }\n") == "CUDA"
    assert _refine("C++", "auto v = thrust::device_vector<int>(4);\n") == "CUDA"
    # a::b three times is C++; once in a C comment is not; `new` and `delete` expressions are C++
    assert _refine("C", "/* see std::sort */\nint f(void);\n".replace("std::", "x::")) == "C"
    assert _refine("C", "a::b(); c::d(); e::f();\n") == "C++"
    assert _refine("C++", "H create(W *w) { return (H) new Button(w); }\n") == "C++"
    assert _refine("C++", "void f(void) {\n  delete (Button *)h;\n}\n") == "C++"
    assert _refine("C++", "/* a new idea (see below) */\nint f(void);\n") == "C"


def test_refinements_of_wider_reach():
    """Constructs added with the fourth and fifth test sets: each one decides a file the model blurs."""
    from codecorpus.stages.langid import _refine, language_of_path
    # modern JavaScript reads like TypeScript; types, interfaces, `as` casts, annotated parameters settle it
    js = "import config from '../lib/config'\nconst users = [config.user]\nexport default function go(a, b) { return a ?? b }\n"
    assert _refine("TypeScript", js) == "JavaScript"
    for ts in ("export interface User { name: string }\n", "let id: UserId | undefined = x;\n", "import type { A } from './a'\n",
               "export default RN as DeviceInfoModule;\n", "function f(tracker: PointerTracker, n) {}\n",
               "class V {\n  private readonly x;\n}\n", "// @ts-ignore\nfoo()\n"):
        assert _refine("TypeScript", ts) == "TypeScript", ts
    # Objective-C without @-keywords: two message sends with arguments, ARC casts, protocol-typed ids
    sends = "void f(Pasteboard *p) {\n  [p setString:s forType:t];\n  [view addSubview:child];\n}\n"
    assert _refine("C", sends) == "Objective-C"
    assert _refine("C", "void f(void) {\n  arr[i ? 1 : 2] = 0; /* [Note that: x] */\n}\n") == "C"
    assert _refine("C++", "#if !__has_feature(objc_arc)\n#error ARC\n#endif\nnamespace Ogre { int f(); }\n") == "Objective-C++"
    assert _refine("C", "id<MTLDevice> device = nil;\n") == "Objective-C"
    # in Objective-C one a::b is C++ (opencv's .mm wrappers: `cv::Mat*`)
    assert _refine("Objective-C", "@implementation M\n- (instancetype)initWithNativeMat:(cv::Mat*)m { return self; }\n@end\n") \
        == "Objective-C++"
    # C++ headers: extensionless (<vector>, <QtWidgets>) or .hpp; a C header is never extensionless
    assert _refine("C", "#include <QtWidgets>\nint main(int argc, char *argv[]) { return 0; }\n") == "C++"
    assert _refine("C", "#include \"diffusion_2D.hpp\"\nint f(void) { return 0; }\n") == "C++"
    assert _refine("C", "#include <sys/types.h>\nint f(void) { return 0; }\n") == "C"
    # C++ words count where C++ puts them, not inside a C string or comment
    assert _refine("C++", "static const char *d = \"Total program size in virtual memory\"; /* the namespace of x */\n") == "C"
    assert _refine("C", "class A {\npublic:\n  virtual ~A();\n};\n") == "C++"
    # upper-case .C and .H are C++ by the compilers' convention, lower-case .c is C
    assert language_of_path("ioss/Ioss_Beam4.C") == "C++" and language_of_path("x/Y.H") == "C++"
    assert language_of_path("src/main.c") == "C"


def test_a_licence_header_does_not_hide_the_code():
    """The features skip a long leading comment block (a licence): the same MIT text heads files of
    every language and would fill the 1,536 characters the model reads."""
    from codecorpus.stages.langid_model import _skip_licence
    licence = "//\n" + "".join(f"// Permission is hereby granted, free of charge, line {i}\n" for i in range(30))
    code = "using System;\nnamespace A { public class B { } }\n"
    assert _skip_licence(licence + code) == "//\n" + code
    short = "// one line\n" + code
    assert _skip_licence(short) == short
    assert _skip_licence("#include <stdio.h>\n" * 40) == "#include <stdio.h>\n" * 40   # not a comment
    assert _skip_licence("<?php\n\n" + licence + "namespace A;\n") == "<?php\nnamespace A;\n"   # after a first line of code


def test_shebang_and_modeline_come_first_and_unsure_is_unknown():
    from codecorpus.stages.langid import languages_of_content
    got = languages_of_content(["#!/usr/bin/env bash\necho hi\n", "/* -*- mode: c++ -*- */\nint x;\n",
                                "qzxv wplk mrtg vbnc " * 5], min_confidence=0.9)
    assert got == ["Shell", "C++", None]


def test_the_model_ships_with_its_package_list():
    import json

    from codecorpus.stages import langid_model
    assert langid_model.MODEL_PATH.stat().st_size < 20e6
    manifest = json.loads(langid_model.MODEL_PATH.with_suffix(".json").read_text())
    model = langid_model.model()
    assert set(model.classes) == set(manifest["classes"]) and {"Scala", "R", "CUDA", "Objective-C++"} <= set(model.classes)
    assert all(p["version"] for p in manifest["packages"])
