"""The Pile, CodeParrot and archived repositories: real files in each shape, and every kind of bad input."""
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import STDLIB, make_codeparrot_parquet, make_pile, make_repo_archive, stdlib_files
from codecorpus.pipeline.config import SourceConfig
from codecorpus.stages.license import detect_license
from codecorpus.stages.sources import plan, read_unit
from codecorpus.stages.summary import books_balance, merge, summarize


def read_source(kind: str, *paths, **extra) -> list[dict]:
    source = SourceConfig(name=kind, kind=kind, paths=[str(p) for p in paths], **extra)
    folders, units = plan(source, source.resolved_paths())
    assert not folders
    tables = [t for u in units for t in read_unit(pa.Table.from_pylist([u]))]
    books = merge([summarize(t) for t in tables])
    assert books_balance(books)
    return [r for t in tables for r in t.to_pylist()]


def reasons(rows: list[dict]) -> Counter:
    return Counter((r["status"], r["reason"]) for r in rows)


def test_pile_keeps_github_and_counts_other_sets(tmp_path):
    texts = [p.read_text() for p in stdlib_files(limit=12)]
    docs = [("Github" if i % 3 else "ArXiv", t) for i, t in enumerate(texts)] + [("FreeLaw", "court text")]
    for suffix in (".jsonl.zst", ".jsonl.gz", ".jsonl"):
        rows = read_source("pile", make_pile(tmp_path / f"p{suffix}", docs))
        assert reasons(rows) == {("kept", None): 8, ("dropped", "pile_set:ArXiv"): 4, ("dropped", "pile_set:FreeLaw"): 1}
        kept = [r for r in rows if r["status"] == "kept"]
        assert [r["text"] for r in kept] == [t for s, t in docs if s == "Github"]
        assert all(r["path"] is None and r["text"] is None for r in rows if r["status"] != "kept")
    assert len({r["id"] for r in rows}) == len(rows)


def test_pile_bad_lines_and_truncated_file(tmp_path):
    texts = [p.read_text() for p in stdlib_files(limit=40)]
    good = make_pile(tmp_path / "a.jsonl", [("Github", t) for t in texts])
    lines = good.read_text().splitlines(keepends=True)
    lines[3] = "{this is not json\n"
    lines[7] = '{"meta": {"pile_set_name": "Github"}}\n'
    good.write_text("".join(lines))
    assert reasons(read_source("pile", good)) == {("kept", None): 38, ("quarantined", "invalid_json"): 1,
                                                  ("quarantined", "missing_text"): 1}
    import zstandard
    whole = zstandard.ZstdCompressor().compress(good.read_bytes())
    (tmp_path / "cut.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    got = reasons(read_source("pile", tmp_path / "cut.jsonl.zst"))
    assert got[("quarantined", "truncated_or_corrupt")] == 1 and 0 < got[("kept", None)] < 38


def test_pile_language_from_content(tmp_path):
    from codecorpus.stages.langid import identify_languages
    shell = "#!/bin/sh\nset -e\nfor f in *.txt; do\n  echo \"$f\"\ndone\n"
    docs = [("Github", (STDLIB / "json" / "decoder.py").read_text()), ("Github", shell), ("Github", "lorem ipsum " * 40)]
    table = pa.Table.from_pylist(read_source("pile", make_pile(tmp_path / "p.jsonl", docs)))
    out = identify_languages(table, ["Python", "Shell"]).to_pylist()
    assert [r["language"] for r in out[:2]] == ["Python", "Shell"]
    assert (out[2]["status"], out[2]["reason"]) == ("dropped", "unknown_language")


def test_codeparrot_parquet_by_row_group_and_json_gz(tmp_path):
    files = stdlib_files(limit=25)
    rows = read_source("codeparrot", make_codeparrot_parquet(tmp_path / "gc.parquet", files, row_group_size=10))
    assert len(rows) == 25 and all(r["status"] == "kept" for r in rows)
    assert {r["license"] for r in rows} == {"mit", "gpl-3.0"} and rows[0]["repo"] == "python/python3.11"[: len(rows[0]["repo"])]
    assert [r["text"] for r in rows] == [f.read_text() for f in files]
    import gzip, json
    with gzip.open(tmp_path / "clean.json.gz", "wt") as fh:
        for f in files[:5]:
            fh.write(json.dumps({"repo_name": "a/b", "path": f.name, "content": f.read_text(), "license": "mit",
                                 "hash": "x", "copies": "1"}) + "\n")
        fh.write('{"repo_name": "a/b", "path": "no_text.py"}\n')
    assert reasons(read_source("codeparrot", tmp_path / "clean.json.gz")) == {("kept", None): 5, ("quarantined", "missing_text"): 1}


def test_parquet_missing_a_column_is_quarantined(tmp_path):
    pq.write_table(pa.table({"repo_name": ["a"], "path": ["x.py"]}), tmp_path / "bad.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    rows = read_source("codeparrot", tmp_path / "bad.parquet", tmp_path / "junk.parquet")
    assert reasons(rows) == {("quarantined", "missing_column:content"): 1, ("quarantined", "unreadable_parquet"): 1}


def test_archives_read_in_memory_with_license_and_unsafe_names(tmp_path):
    decoder = (STDLIB / "json" / "decoder.py").read_bytes()
    members = {"json-main/LICENSE": open("/usr/share/common-licenses/Apache-2.0", "rb").read(),
               "json-main/json/decoder.py": decoder, "json-main/node_modules/x/index.js": b"module.exports = 1;\n",
               "json-main/blob.bin": b"\0\1\2" * 100, "json-main/empty.py": b"",
               "../escape.py": b"x = 1\n", "/etc/passwd": b"root:x:0:0\n"}
    for name in ("repo.tar.gz", "repo.zip"):
        archive = make_repo_archive(tmp_path / name, members, symlinks={"json-main/link.py": "/etc/passwd"} if name.endswith("gz") else None)
        rows = read_source("scraped", archive)
        by_path = {r["path"]: r for r in rows}
        assert by_path["json/decoder.py"]["text"] == decoder.decode() and by_path["json/decoder.py"]["repo"] == "repo"
        assert all(r["license"] == "apache-2.0" for r in rows)
        got = reasons(rows)
        assert got[("quarantined", "unsafe_member_path")] == 2
        assert got[("dropped", "vendored")] == 1 and got[("dropped", "binary")] == 1 and got[("dropped", "empty")] == 1
        if name.endswith("gz"):
            assert by_path["link.py"]["reason"] == "symlink" and by_path["link.py"]["text"] is None
    assert not (tmp_path.parent / "escape.py").exists()


def test_corrupt_archive_keeps_what_came_before(tmp_path):
    files = {f"r/{p.name}": p.read_bytes() for p in stdlib_files(limit=30)}
    data = make_repo_archive(tmp_path / "ok.tar.gz", files).read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "garbage.zip").write_bytes(b"PK\3\4 definitely not a zip")
    got = reasons(read_source("scraped", tmp_path / "cut.tar.gz"))
    assert 0 < got[("kept", None)] < 30 and sum(v for (s, r), v in got.items() if r and r.startswith("corrupt_archive")) == 1
    got = reasons(read_source("scraped", tmp_path / "garbage.zip"))
    assert sum(got.values()) == 1 and next(iter(got))[1].startswith("corrupt_archive")


def test_license_texts_on_this_machine():
    expect = {"Apache-2.0": "apache-2.0", "GPL-2": "gpl-2.0", "GPL-3": "gpl-3.0", "LGPL-2.1": "lgpl-2.1",
              "LGPL-3": "lgpl-3.0", "MPL-2.0": "mpl-2.0", "BSD": "bsd-3-clause", "CC0-1.0": "cc0-1.0"}
    for name, spdx in expect.items():
        assert detect_license(open(f"/usr/share/common-licenses/{name}").read()) == spdx, name
    mit = "Copyright (c) 2020 A\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
    assert detect_license(mit) == "mit" and detect_license("All rights reserved.") is None
