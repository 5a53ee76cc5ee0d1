"""Reading scraped repositories: real files, and every kind of bad input set aside with its reason."""
import os
from collections import Counter

import pyarrow as pa

from codecorpus.stages.read_scraped import list_files, list_repositories, read_files
from codecorpus.stages.summary import books_balance, merge, summarize


def ingest(root, max_file_bytes=1_000_000, exclude=()):
    rows = []
    for repo in list_repositories("scraped", [str(root)], 0, max_file_bytes, list(exclude)):
        rows += list_files(repo)
    return read_files(pa.Table.from_pylist(rows)) if rows else None


def by_path(table):
    return {(r["repo"], r["path"]): r for r in table.to_pylist()}


def test_reads_real_repositories(scraped_tree):
    table = ingest(scraped_tree)
    recs = by_path(table)
    rec = recs[("python__json", "decoder.py")]
    assert rec["status"] == "kept" and "JSONDecodeError" in rec["text"]
    assert rec["size"] == (scraped_tree / "python__json" / "decoder.py").stat().st_size
    assert len({r["id"] for r in recs.values()}) == len(recs)  # stable ids, one per file


def test_bad_input_is_counted_never_lost(tmp_path):
    root = tmp_path / "repos"
    repo = root / "owner__repo"
    (repo / "src").mkdir(parents=True)
    (repo / "node_modules" / "lib").mkdir(parents=True)
    (repo / ".git").mkdir()
    good = (repo / "src" / "ok.py")
    good.write_text(open(os.__file__).read())
    (repo / "src" / "empty.py").write_text("")
    latin1 = ("# Calcule la moyenne pondérée des éléments, très simplement.\n"
              "def moyenne(valeurs):\n    return sum(valeurs) / len(valeurs)  # déjà testé\n")
    (repo / "src" / "latin1.py").write_bytes(latin1.encode("latin-1"))
    (repo / "src" / "garbled.py").write_bytes(b"x = \x81\x8d\x8f\x90\x9d\n" * 4)
    (repo / "src" / "blob.py").write_bytes(b"abc\0def" * 10)
    (repo / "src" / "app.min.js").write_text("var a=1;")
    (repo / "node_modules" / "lib" / "index.js").write_text("module.exports = 1;\n")
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("top secret\n")
    (repo / "src" / "leak.py").symlink_to(outside)
    (repo / "src" / "loop_a.py").symlink_to(repo / "src" / "loop_b.py")
    (repo / "src" / "loop_b.py").symlink_to(repo / "src" / "loop_a.py")
    with open(repo / "src" / "huge.py", "wb") as fh:  # a 2 GB sparse file: never read
        fh.truncate(2 * 1024**3)
    vanishing = repo / "src" / "vanishing.py"
    vanishing.write_text("x = 1\n")

    rows = []
    for r in list_repositories("scraped", [str(root)], 0, 1_000_000):
        rows += list_files(r)
    vanishing.unlink()  # unreadable between listing and reading
    table = read_files(pa.Table.from_pylist(rows))
    got = {r["path"]: (r["status"], r["reason"]) for r in table.to_pylist()}
    assert got["src/ok.py"] == ("kept", None)
    assert got["src/empty.py"] == ("dropped", "empty")
    assert got["src/latin1.py"] == ("kept", None)        # not UTF-8: decoded from the detected encoding
    assert [r["text"] for r in table.to_pylist() if r["path"] == "src/latin1.py"] == [latin1]
    assert got["src/garbled.py"] == ("quarantined", "undecodable")
    assert got["src/blob.py"] == ("dropped", "binary")
    assert got["src/app.min.js"] == ("dropped", "minified")
    assert got["node_modules/lib/index.js"] == ("dropped", "vendored")
    assert got[".git/HEAD"] == ("dropped", "vcs_metadata")
    assert got["src/leak.py"] == ("quarantined", "symlink_outside_repository")
    assert got["src/loop_a.py"] == ("quarantined", "broken_or_looping_symlink")
    assert got["src/huge.py"] == ("dropped", "over_size_cap")
    assert got["src/vanishing.py"][0] == "quarantined" and got["src/vanishing.py"][1].startswith("unreadable")
    assert all("top secret" not in (r["text"] or "") for r in table.to_pylist())

    books = merge([summarize(table)])
    assert books_balance(books) and books["in"] == len(got)
    assert Counter(s for s, _ in got.values())["quarantined"] == sum(books["quarantined"].values())


def test_exclude_globs(scraped_tree):
    table = ingest(scraped_tree, exclude=["fork__json/*"])
    excluded = [r for r in table.to_pylist() if r["repo"] == "fork__json"]
    assert excluded and all(r["reason"] == "excluded_path" for r in excluded)


def test_owner_repo_layout(tmp_path):
    import shutil
    from conftest import STDLIB
    for owner, repo in (("python", "json"), ("python", "html"), ("fork", "json")):
        shutil.copytree(STDLIB / repo, tmp_path / owner / repo, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "python" / "README").write_text("loose file of the owner folder\n")
    repos = list_repositories("s", [str(tmp_path)], 0, 1_000_000, layout="owner/repo")
    names = {r["repo"] for r in repos}
    assert {"python/json", "python/html", "fork/json"} <= names
    rows = [f for r in repos for f in list_files(r)]
    table = read_files(pa.Table.from_pylist(rows))
    by = {(r["repo"], r["path"]) for r in table.to_pylist()}
    assert ("python/json", "decoder.py") in by and ("fork/json", "decoder.py") in by and ("python", "README") in by
    assert len(by) == table.num_rows                 # every file once
