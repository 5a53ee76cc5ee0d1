"""Repository documents (files of a repository together, in dependency order) and fill-in-the-middle.

Unit tests on hand-made repositories (chains, diamonds, cycles; one per language resolver) and on
real files of the standard library; end-to-end, one build of real repositories plus a Pile file with
`packing.documents = "repo"` and `fim.rate = 0.5`, decoded back to its files byte for byte, and the
same build with one CPU instead of four.
"""
from __future__ import annotations

import json
import math
import random
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from codecorpus.stages import fim
from codecorpus.stages.encode import Layout, encode_batch
from codecorpus.stages.imports import imports, provides
from codecorpus.stages.pack import read_shard, shard_documents
from codecorpus.stages.records import record_id
from codecorpus.stages.repo_order import cut, order_files
from codecorpus.stages.tag import LANGUAGE_TAGS
from codecorpus.tokenizer.bpe import load_tokenizer
from codecorpus.tokenizer.special import special_ids
from conftest import BUILD, STDLIB, codecorpus, make_pile, stdlib_files


def ordered(files: dict[str, str], language: str = "Python", repo: str = "", shuffle_seed: int | None = None):
    """The paths of a hand-made repository in dependency order (the input given in a shuffled order)."""
    paths = list(files)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(paths)
    found = order_files(paths, paths, [imports(files[p], language) for p in paths], [provides(files[p], language) for p in paths],
                        "dependencies", 0, repo)
    return [paths[i] for i in found.order], found, paths


def before(order: list[str], a: str, b: str) -> bool:
    return order.index(a) < order.index(b)


def test_chain_diamond_and_cycle_in_dependency_order():
    files = {
        "app/main.py": "from app import service\nimport app.config\n",
        "app/service.py": "from .models import User\nfrom . import db\n",
        "app/models.py": "from app.db import Base\n",
        "app/db.py": "from .config import URL\n",
        "app/config.py": "URL = 'x'\n",
        "app/cycle_a.py": "from . import cycle_b\n",
        "app/cycle_b.py": "from .cycle_a import thing\nfrom .config import URL\n",
        "app/lazy.py": "def f():\n    from app import main\nif TYPE_CHECKING:\n    from .service import S\n",
    }
    for seed in (None, 1, 2, 3):
        order, found, paths = ordered(files, shuffle_seed=seed)
        # the chain config ← db ← models ← service ← main, and the diamond main → service/config
        for imported, importer in [("app/config.py", "app/db.py"), ("app/db.py", "app/models.py"), ("app/models.py", "app/service.py"),
                                   ("app/db.py", "app/service.py"), ("app/service.py", "app/main.py"), ("app/config.py", "app/main.py"),
                                   ("app/config.py", "app/cycle_b.py"), ("app/config.py", "app/cycle_a.py")]:
            assert before(order, imported, importer), (seed, order)
        assert found.cycles_broken == 1 and sorted(order) == sorted(files)
        assert {paths[i] for i, c in enumerate(found.cycle) if c >= 0} == {"app/cycle_a.py", "app/cycle_b.py"}
        lazy = paths.index("app/lazy.py")
        assert found.depends_on[lazy] == set()      # imports in a function or under TYPE_CHECKING are not load-time
        assert order == ordered(files)[0]           # the same order whatever order the files came in


@pytest.mark.parametrize("language, files, edges", [
    ("JavaScript", {"src/index.js": "import a from './util';\nconst b = require('../lib/b.js');\nimport 'react';\n",
                    "src/util/index.js": "export default 1;\n", "lib/b.js": "module.exports = 2;\n"},
     [("src/util/index.js", "src/index.js"), ("lib/b.js", "src/index.js")]),
    ("TypeScript", {"src/a.ts": "import { B } from './b.js';\nexport * from './c';\n", "src/b.ts": "export class B {}\n",
                    "src/c.tsx": "export const C = 1;\n"},
     [("src/b.ts", "src/a.ts"), ("src/c.tsx", "src/a.ts")]),
    ("Java", {"src/main/java/org/x/App.java": "package org.x;\nimport org.x.util.Strings;\nimport static org.x.util.Nums.max;\nimport java.util.List;\n",
              "src/main/java/org/x/util/Strings.java": "package org.x.util;\n",
              "src/main/java/org/x/util/Nums.java": "package org.x.util;\n"},
     [("src/main/java/org/x/util/Strings.java", "src/main/java/org/x/App.java"),
      ("src/main/java/org/x/util/Nums.java", "src/main/java/org/x/App.java")]),
    ("Kotlin", {"src/org/x/App.kt": "package org.x\nimport org.x.model.*\nimport kotlin.math.max\n", "src/org/x/model/User.kt": "package org.x.model\n",
                "src/org/x/model/Role.kt": "package org.x.model\n"},
     [("src/org/x/model/User.kt", "src/org/x/App.kt"), ("src/org/x/model/Role.kt", "src/org/x/App.kt")]),
    ("Scala", {"core/src/x/Main.scala": "package x\nimport x.json.{Reader, Writer => W}\n", "core/src/x/json/Reader.scala": "package x.json\n",
               "core/src/x/json/Writer.scala": "package x.json\n"},
     [("core/src/x/json/Reader.scala", "core/src/x/Main.scala"), ("core/src/x/json/Writer.scala", "core/src/x/Main.scala")]),
    ("C", {"src/main.c": '#include "util.h"\n#include "../include/api.h"\n#include <stdio.h>\n', "src/util.h": "int f(void);\n",
           "include/api.h": "#define API 1\n"},
     [("src/util.h", "src/main.c"), ("include/api.h", "src/main.c")]),
    ("C++", {"lib/net/socket.cc": '#include "net/socket.h"\n', "lib/net/socket.h": '#include "base/macros.h"\n', "lib/base/macros.h": "\n"},
     [("lib/net/socket.h", "lib/net/socket.cc"), ("lib/base/macros.h", "lib/net/socket.h")]),
    ("C#", {"App/Program.cs": "using System;\nusing Acme.Models;\nnamespace Acme { }\n", "App/Models/User.cs": "namespace Acme.Models\n{\n}\n"},
     [("App/Models/User.cs", "App/Program.cs")]),
    ("Go", {"cmd/tool/main.go": 'package main\nimport (\n  "fmt"\n  "github.com/acme/tool/internal/store"\n)\n',
            "internal/store/store.go": "package store\n", "internal/store/store_test.go": "package store\n"},
     [("internal/store/store.go", "cmd/tool/main.go")]),
    ("Rust", {"src/lib.rs": "pub mod parser;\nmod util;\n", "src/parser/mod.rs": "use crate::util::helpers::trim;\nuse super::util;\n",
              "src/util.rs": "pub mod helpers;\n", "src/util/helpers.rs": "pub fn trim() {}\n"},
     [("src/parser/mod.rs", "src/lib.rs"), ("src/util.rs", "src/lib.rs"), ("src/util/helpers.rs", "src/parser/mod.rs"),
      ("src/util.rs", "src/parser/mod.rs"), ("src/util/helpers.rs", "src/util.rs")]),
    ("PHP", {"public/index.php": "<?php\nrequire_once __DIR__ . '/../src/boot.php';\nuse App\\Http\\Kernel;\n", "src/boot.php": "<?php\n",
             "src/Http/Kernel.php": "<?php\nnamespace App\\Http;\n"},
     [("src/boot.php", "public/index.php"), ("src/Http/Kernel.php", "public/index.php")]),
])
def test_each_language_resolves_its_imports_to_files_of_the_repository(language, files, edges):
    order, found, paths = ordered(files, language)
    resolved = {(paths[j], paths[i]) for i, deps in enumerate(found.depends_on) for j in deps}
    assert resolved == set(edges)
    for imported, importer in edges:
        assert before(order, imported, importer)


def test_a_repository_named_after_its_package_resolves_absolute_imports():
    """The demo's layout: each folder of site-packages is a repository whose files are the package's."""
    files = {"__init__.py": "from email.utils import x\n", "utils.py": "import email.charset\n", "charset.py": "\n"}
    order, found, _ = ordered(files, repo="email")
    assert order == ["charset.py", "utils.py", "__init__.py"]
    assert ordered(files, repo="other")[1].depends_on == [set(), set(), set()]


def test_documents_are_cut_at_file_boundaries_within_the_bound():
    sizes = [5, 5, 5, 20, 1, 1]
    docs = cut(sizes, header=2, max_tokens=10)
    assert docs == [0, 1, 2, 3, 4, 4]               # 2 + 5 + 1 EOD fits; 2 + 5 + 5 + 1 does not; 20 alone
    totals = {d: 2 + 1 + sum(s for s, x in zip(sizes, docs) if x == d) for d in set(docs)}
    assert all(t <= 10 for d, t in totals.items() if d != 3)


def real_batch(n: int = 60) -> pa.Table:
    files = stdlib_files(limit=n, min_bytes=1500)
    texts = [p.read_text(encoding="utf-8") for p in files] + ["s = '<fim_middle>é日本<|endoftext|>'\n" * 3]
    return pa.table({"id": [record_id("s", "r", f"f{i}") for i in range(len(texts))], "source": ["s"] * len(texts),
                     "repo": ["r"] * len(texts), "path": [f"p{i}.py" for i in range(len(texts))],
                     "language": ["Python"] * len(texts), "text": texts})


@pytest.fixture(scope="module")
def small_tok(tmp_path_factory):
    from codecorpus.tokenizer.bpe import train_bpe
    return train_bpe((p.read_text(encoding="utf-8") for p in stdlib_files(limit=60)), vocab_size=3000)


def test_fim_files_untransform_to_their_text_and_rate_zero_is_plain_encoding(small_tok):
    """Every transformed file decodes, un-permuted, to its text byte for byte (multi-byte characters
    included: cuts fall between code points); the tag stays in front; rate 0 is the plain encoding."""
    batch = real_batch()
    ids = special_ids(small_tok)

    def encode(text):
        return small_tok.encode(text, add_special_tokens=False).ids
    plain = encode_batch(batch, encode, ids, Layout())
    assert plain.column("tokens").to_pylist() == [encode(LANGUAGE_TAGS["Python"] + "\n" + t) + [ids["eod"]] for t in batch.column("text").to_pylist()]
    out = encode_batch(batch, encode, ids, Layout(fim=fim.FimSettings(rate=1.0, spm_rate=0.5, seed=7)))
    modes = out.column("fim").to_pylist()
    assert set(modes) == {"psm", "spm"}
    tag = encode(LANGUAGE_TAGS["Python"] + "\n")
    for text, tokens, mode in zip(batch.column("text").to_pylist(), out.column("tokens").to_pylist(), modes):
        assert tokens[:len(tag)] == tag and tokens[-1] == ids["eod"]
        got_mode, prefix, middle, suffix = fim.untransform(tokens[len(tag):-1], ids)
        assert got_mode == mode
        assert small_tok.decode(prefix) + small_tok.decode(middle) + small_tok.decode(suffix) == text
        body = [t for t in tokens if t not in (ids["fim_prefix"], ids["fim_middle"], ids["fim_suffix"])]
        assert body.count(ids["eod"]) == 1          # corpus text spelling a special token never becomes its id


def test_fim_rate_and_spm_share_on_real_ids_are_within_two_sigma():
    """The choice is a seeded hash of the file's id: over 20,000 ids of real paths, the transformed
    share and the SPM share of those match the configured ones within 2σ; so does the per-file rate
    inside chosen repositories."""
    paths = sorted(str(p.relative_to(STDLIB)) for p in STDLIB.rglob("*") if p.is_file())[:20_000]
    assert len(paths) >= 10_000
    ids = [record_id("stdlib", "python", p) for p in paths]
    settings = fim.FimSettings(rate=0.3, spm_rate=0.25, file_rate=0.6, seed=1234)
    modes = [fim.choose(settings, i) for i in ids]
    chosen = [m for m in modes if m]
    n = len(ids)
    assert abs(len(chosen) / n - 0.3) < 2 * math.sqrt(0.3 * 0.7 / n)
    assert abs(chosen.count("spm") / len(chosen) - 0.25) < 2 * math.sqrt(0.25 * 0.75 / len(chosen))
    repos = [f"repo{k % 400}" for k in range(n)]
    in_repos = [fim.choose(settings, i, r) for i, r in zip(ids, repos)]
    picked = {r for r, m in zip(repos, in_repos) if m}
    files_in_picked = [m for r, m in zip(repos, in_repos) if r in picked]
    assert abs(len(picked) / 400 - 0.3) < 2 * math.sqrt(0.3 * 0.7 / 400) + 1 / 400
    share = sum(1 for m in files_in_picked if m) / len(files_in_picked)
    assert abs(share - 0.6) < 2 * math.sqrt(0.6 * 0.4 / len(files_in_picked))
    assert fim.choose(fim.FimSettings(rate=0.0), ids[0]) is None


# -- end to end ------------------------------------------------------------------------------

REPO_FIM = """
[packing]
seq_length = 512
documents = "repo"
max_document_tokens = 6000

[fim]
rate = 0.5
spm_rate = 0.5
file_rate = 0.5

[[sources]]
name = "specials"
paths = ["{specials}"]

[[sources]]
name = "packages"
paths = ["{packages}"]

[[sources]]
name = "pile"
kind = "pile"
paths = ["{pile}"]
"""


slow = pytest.mark.slow


@pytest.fixture(scope="module")
def repo_runs(corpus):
    """The shared corpus's repositories, two packages as repositories named after them, a repository
    whose file spells the special tokens, and a Pile file, built as repository documents with FIM, with four CPUs and with one."""
    root, repos = corpus
    extra = root / "documents-input"
    shutil.rmtree(extra, ignore_errors=True)
    specials = extra / "specials" / "tricky"
    specials.mkdir(parents=True)
    (specials / "spells.py").write_text("".join(f"s{i} = '<fim_prefix><fim_middle><fim_suffix><|file_sep|><|repo_name|>"
                                                f"<|endoftext|> {i}'\n" for i in range(40)))
    for package in ("asyncio", "importlib"):       # repositories named after their package: absolute imports resolve
        shutil.copytree(STDLIB / package, extra / "packages" / package, ignore=shutil.ignore_patterns("__pycache__"))
    pile = make_pile(extra / "pile" / "github.jsonl", [("Github", p.read_text(encoding="utf-8"))
                                                       for p in stdlib_files(limit=12, min_bytes=2000)])
    runs = {}
    for cpus in (4, 1):
        cfg = root / f"repo{cpus}.toml"
        base = BUILD.format(repos=repos, cpus=cpus).replace("[packing]\nseq_length = 512\n", "")
        cfg.write_text(base + REPO_FIM.format(specials=extra / "specials", packages=extra / "packages", pile=pile))
        codecorpus("build", str(cfg), "--out", str(root / f"repo{cpus}"))
        runs[cpus] = root / f"repo{cpus}"
    return runs


@slow
def test_same_shards_with_one_and_four_cpus(repo_runs):
    a, b = (json.loads((repo_runs[c] / "manifest.json").read_text()) for c in (4, 1))
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]] and len(a["shards"]) >= 2
    assert a["documents"] == b["documents"] and a["fim"] == b["fim"]


def _documents_of(run):
    """The shards decoded: each document's ids (EOD-terminated runs), in shard order."""
    manifest = json.loads((run / "manifest.json").read_text())
    flat = np.concatenate([np.stack(read_shard(run / "shards" / s["shard"]).column("input_ids").to_numpy(zero_copy_only=False)).reshape(-1)
                           for s in manifest["shards"]]).astype(np.int64)
    return manifest, flat


@slow
def test_decoding_the_shards_gives_back_headers_paths_and_files(repo_runs):
    """Every repository document is `<|repo_name|>NAME\\n` then, per file in its order,
    `<|file_sep|>PATH\\n` + tag line + text (FIM files un-permuted); every kept file is in exactly one
    document; Pile files stay file documents in the same shards."""
    run = repo_runs[4]
    manifest, flat = _documents_of(run)
    tok = load_tokenizer(run / "tokenizer" / "tokenizer.json")
    ids = special_ids(tok)
    texts = {r["id"]: r for r in pads.dataset(run / "stages" / "files" / "kept").to_table(
        columns=["id", "source", "repo", "path", "language", "text"]).to_pylist()}
    kept = {r["id"]: r for r in pads.dataset(run / "stages" / "08_tokenize").to_table(columns=["id", "status", "fim", "source"]).to_pylist()
            if r["status"] == "kept"}
    docs = pads.dataset(run / "stages" / "09_documents").to_table().to_pylist()
    by_doc = {}
    for d in docs:
        by_doc.setdefault((d["source"], d["repo"], d["document"]), []).append(d)
    assert sorted(d["id"] for d in docs) == sorted(i for i, r in kept.items() if r["source"] != "pile")   # each exactly once

    def text_of(tokens):
        """A file's ids (tag + text, perhaps FIM) back to its text."""
        tokens = list(tokens)
        if ids["fim_prefix"] not in tokens:
            return tok.decode(tokens)
        at = tokens.index(ids["fim_prefix"])
        mode, prefix, middle, suffix = fim.untransform(tokens[at:], ids)
        return tok.decode(tokens[:at]) + tok.decode(prefix) + tok.decode(middle) + tok.decode(suffix)

    ends = np.flatnonzero(flat == ids["eod"])
    seen_repo_docs, seen_pile, start = set(), 0, 0
    for end in ends:
        doc = flat[start:end].tolist()
        start = end + 1
        if not doc:
            continue                                  # padding
        if doc[0] != ids["repo_name"]:
            assert any(text_of(doc) == LANGUAGE_TAGS[r["language"]] + "\n" + r["text"]
                       for r in texts.values() if r["source"] == "pile")
            seen_pile += 1
            continue
        seps = [i for i, t in enumerate(doc) if t == ids["file_sep"]]
        name = tok.decode(doc[1:seps[0]])
        files = [doc[a + 1:b] for a, b in zip(seps, seps[1:] + [len(doc)])]
        key = next(k for k in by_doc if k[1] + "\n" == name and [d["id"] for d in sorted(by_doc[k], key=lambda d: d["position"])]
                   and k not in seen_repo_docs and len(by_doc[k]) == len(files)
                   and all(tok.decode(f).startswith(d["path"] + "\n") for f, d in zip(files, sorted(by_doc[k], key=lambda d: d["position"]))))
        seen_repo_docs.add(key)
        for f, d in zip(files, sorted(by_doc[key], key=lambda d: d["position"])):
            r = texts[d["id"]]
            head = tok.encode(d["path"] + "\n").ids
            assert f[:len(head)] == head
            assert text_of(f[len(head):]) == LANGUAGE_TAGS[r["language"]] + "\n" + r["text"]
    assert seen_repo_docs == set(by_doc) and seen_pile == sum(1 for r in kept.values() if r["source"] == "pile") > 0
    spells = next(d for d in docs if d["path"] == "spells.py")     # its text spells every special token, 40 times
    tokens = pads.dataset(run / "stages" / "08_tokenize").to_table(filter=pads.field("id") == spells["id"]).column("tokens")[0].as_py()
    structural = {ids["file_sep"]: 1, ids["fim_prefix"]: 1, ids["fim_middle"]: 1, ids["fim_suffix"]: 1}
    assert all(tokens.count(i) <= structural.get(i, 0) for i in ids.values()) and tokens.count(ids["file_sep"]) == 1
    fims = [r["fim"] for r in kept.values()]
    assert {"psm", "spm"} <= set(fims) and manifest["fim"]["psm_files"] == fims.count("psm")


@slow
def test_imports_come_before_their_importers_and_the_bound_holds(repo_runs):
    run = repo_runs[4]
    docs = pads.dataset(run / "stages" / "09_documents").to_table().to_pylist()
    where = {d["id"]: (d["document"], d["position"]) for d in docs}
    cycle = {d["id"]: d["cycle"] for d in docs}
    outside = [(where[t] < where[d["id"]]) for d in docs for t in d["depends_on"] if d["cycle"] < 0 or cycle[t] != d["cycle"]]
    assert len(outside) > 50 and all(outside)
    assert any(d["broke_cycle"] for d in docs if d["repo"] == "asyncio")   # asyncio's modules import each other
    sizes = {}
    for d in docs:
        key = (d["source"], d["repo"], d["document"])
        sizes[key] = sizes.get(key, d["header_tokens"] + 1) + d["tokens"]
    counts = {k: sum(1 for d in docs if (d["source"], d["repo"], d["document"]) == k) for k in sizes}
    assert all(n <= 6000 or counts[k] == 1 for k, n in sizes.items())
    assert max(d["document"] for d in docs) >= 1       # a repository larger than the bound was cut
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["documents"]["documents"] == len(sizes) and manifest["documents"]["files"] == len(docs)


@slow
def test_query_show_and_stats_say_where_a_file_went(repo_runs):
    run = repo_runs[4]
    def query(sql):
        return [json.loads(line) for line in codecorpus("query", str(run), sql, "--json").stdout.splitlines()]
    rows = query("SELECT repo, document, position, path, tokens FROM documents WHERE repo = 'asyncio' ORDER BY document, position")
    assert rows and rows[0]["position"] == 0 and {"repo", "document", "position", "path", "tokens"} <= set(rows[0])
    file_id = query("SELECT id FROM documents WHERE path = 'events.py' AND repo = 'asyncio'")[0]["id"]
    shown = codecorpus("show", str(run), "--id", file_id).stdout
    assert "document" in shown and "position" in shown
    stats = codecorpus("stats", str(run)).stdout
    assert "fill-in-the-middle" in stats and "repository documents" in stats


def _cut_out(doc: bytes, piece: bytes) -> tuple[bytes, bool]:
    """`doc` (int32 ids as bytes) without the ids `piece`, where they occur on an id boundary."""
    at = doc.find(piece)
    while at >= 0 and at % 4:
        at = doc.find(piece, at + 1)
    return (doc[:at] + doc[at + len(piece):], True) if at >= 0 else (doc, False)


@slow
def test_remove_cuts_files_out_of_repository_documents(repo_runs, tmp_path):
    """`codecorpus remove` on repository documents: the first file of a document, one inside another,
    the last of a third and a whole repository are opted out; every document of the new shards is the base's with those files' ids cut out (the
    header and the EOD stay; a document left without files is gone), and nothing else changes."""
    run = repo_runs[1]
    manifest = json.loads((run / "manifest.json").read_text())
    ids = special_ids(load_tokenizer(run / "tokenizer" / "tokenizer.json"))
    docs = pads.dataset(run / "stages" / "09_documents").to_table().to_pylist()
    sizes = {}
    for d in docs:
        sizes[(d["source"], d["repo"], d["document"])] = sizes.get((d["source"], d["repo"], d["document"]), 0) + 1
    doc_of = lambda d: (d["source"], d["repo"], d["document"])   # noqa: E731
    chosen, used = [], {("scraped", "python__wsgiref")}
    for at in (0, 1, -1):         # a document's first file, one inside, its last: each of another repository
        d = next(d for d in sorted(docs, key=lambda d: d["id"]) if sizes[doc_of(d)] >= 3 and (d["source"], d["repo"]) not in used
                 and d["position"] == (at if at >= 0 else sizes[doc_of(d)] - 1))
        chosen.append(d)
        used.add((d["source"], d["repo"]))
    (tmp_path / "opt-out.txt").write_text("".join(f"{d['repo']}/{d['path']}\n" for d in chosen) + "python__wsgiref\n")
    codecorpus("remove", str(run), "--repos", str(tmp_path / "opt-out.txt"), "--out", str(tmp_path / "cut"))
    gone = {d["id"] for d in chosen} | {d["id"] for d in docs if d["repo"] == "python__wsgiref"}
    tokens = pads.dataset(run / "stages" / "08_tokenize").to_table(columns=["id", "tokens"])
    pieces = [np.asarray(t, np.int32).tobytes() for i, t in zip(tokens.column("id").to_pylist(), tokens.column("tokens").to_pylist())
              if i in gone]
    assert len(pieces) == len(gone) >= 5
    expected, cuts = [], 0
    for shard in manifest["shards"]:
        for doc in shard_documents(run / "shards" / shard["shard"], ids["eod"]):
            doc = doc.astype(np.int32).tobytes()
            for piece in pieces:
                doc, found = _cut_out(doc, piece)
                cuts += found
            left = np.frombuffer(doc, np.int32)
            if left[0] == ids["repo_name"] and ids["file_sep"] not in left:
                continue                                 # every file of the document removed
            expected.append(doc)
    assert cuts == len(gone)
    cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    got = [d.astype(np.int32).tobytes() for s in cut["shards"] for d in shard_documents(tmp_path / "cut" / "shards" / s["shard"], ids["eod"])]
    assert sorted(got) == sorted(expected)
    assert cut["stages"]["10_opt_out"]["dropped"] == {"opted_out": len(gone)}
