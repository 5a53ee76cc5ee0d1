"""Repeated input is ordinary (a shard downloaded twice, two dumps that overlap) and must build: the
same Parquet file, Pile file and repository folder, each present twice under other names (and one
copy under the same name in another folder), give a build whose books balance and whose shards hold
each distinct file once — the same files and tokens as the input without its copies."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import STDLIB, codecorpus, make_codeparrot_parquet, make_pile, query, stdlib_files

from codecorpus.stages.summary import books_balance

CONFIG = """
[[sources]]
name = "scraped"
paths = [{scraped}]

[[sources]]
name = "pile"
kind = "pile"
paths = [{pile}]

[[sources]]
name = "codeparrot"
kind = "codeparrot"
paths = [{codeparrot}]

[tokenizer]
vocab_size = 2048
sample_bytes = 2_000_000

[packing]
seq_length = 512

[ray]
num_cpus = 2
"""


def inputs(root: Path, copies: bool) -> dict[str, list[Path]]:
    """Three sources of real code; with `copies`, each input file or folder is there again."""
    repos = root / "repos"
    shutil.copytree(STDLIB / "json", repos / "python__json", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(STDLIB / "email", repos / "python__email", ignore=shutil.ignore_patterns("__pycache__"))
    pile_files = stdlib_files("[a-m]*.py", min_bytes=2000)[:40]
    pile = make_pile(root / "pile" / "00.jsonl.zst", [("Github", p.read_text()) for p in pile_files])
    parquet = make_codeparrot_parquet(root / "cp" / "train-00000-of-00002.parquet", stdlib_files("[n-z]*.py", min_bytes=2000)[:40])
    found = {"scraped": [repos], "pile": [pile], "codeparrot": [parquet]}
    if copies:
        shutil.copytree(repos / "python__json", repos / "python__json_again")        # the same repository, renamed
        shutil.copytree(repos / "python__email", root / "more" / "python__email")    # the same name, another root
        found["scraped"].append(root / "more")
        (root / "pile" / "again").mkdir()
        shutil.copy(pile, root / "pile" / "again" / "00.jsonl.zst")                  # the same file name, another folder
        shutil.copy(pile, root / "pile" / "01.jsonl.zst")
        shutil.copy(parquet, root / "cp" / "train-00001-of-00002.parquet")
        shutil.copy(parquet, root / "cp" / "copy-of-train-00000.parquet")
        found["pile"], found["codeparrot"] = [root / "pile"], [root / "cp"]
    return found


def build(root: Path, copies: bool) -> Path:
    found = inputs(root, copies)
    cfg = root / "build.toml"
    cfg.write_text(CONFIG.format(**{k: ", ".join(json.dumps(str(p)) for p in v) for k, v in found.items()}))
    codecorpus("build", str(cfg), "--out", str(root / "run"))
    return root / "run"


def kept_files(run: Path) -> tuple[int, int, str, int]:
    """(files kept, distinct texts kept, a digest of the kept texts in order of their hashes, files in
    the shards). Token counts are not compared: the tokenizer is trained on a sample chosen by id."""
    sql = "SELECT count(*) AS n, count(DISTINCT text) AS d, md5(string_agg(md5(text), ',' ORDER BY md5(text))) AS h FROM kept"
    row = query(run, sql)[0]
    manifest = json.loads((run / "manifest.json").read_text())
    return row["n"], row["d"], row["h"], sum(s["files"] for s in manifest["shards"])


@pytest.mark.slow
def test_each_input_twice_builds_the_same_corpus_as_once(tmp_path):
    once = build(tmp_path / "once", copies=False)
    twice = build(tmp_path / "twice", copies=True)
    stats = json.loads((twice / "stats.json").read_text())
    assert stats["status"] == "complete"
    assert all(books_balance(b) for b in stats["stages"].values())
    ingest = stats["stages"]["01_ingest"]["by_source"]
    ingest_once = json.loads((once / "stats.json").read_text())["stages"]["01_ingest"]["by_source"]
    assert ingest["codeparrot"]["in"] == 3 * ingest_once["codeparrot"]["in"]         # every copy was read…
    assert ingest["pile"]["in"] == 3 * ingest_once["pile"]["in"]
    assert stats["stages"]["05_exact_dedup"]["dropped"]["exact_duplicate"] > 0       # …and the copies went as duplicates
    files, distinct, texts, in_shards = kept_files(twice)
    assert files == distinct == in_shards                                            # each distinct file once, in the shards
    assert (files, texts) == kept_files(once)[0:3:2]                                 # the same files as the input once
