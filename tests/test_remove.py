"""`codecorpus remove`: a finished run without the files of repositories that opted out.

Checked on the shared build by decoding: each shard's documents (its ids split at EOD) are compared
with the base's, and the removed files are found in the base's shards by their own token ids (read
from the base's 08_tokenize records), not by what `remove` reports.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from codecorpus.stages.pack import shard_documents
from tests.conftest import codecorpus

pytestmark = pytest.mark.slow

OPT_OUT = "# owners who asked to be removed\nfork__*\n\npython__xmlrpc/client.py\n"


def documents(shard: Path, eod: int) -> list[tuple[int, ...]]:
    return [tuple(d.tolist()) for d in shard_documents(shard, eod)]


def file_documents(run: Path, keep) -> dict[str, tuple[int, ...]]:
    """id → the token ids of a tokenized file of `run` (without its EOD) for the files `keep(repo, path)` selects."""
    table = pads.dataset(str(run / "stages" / "08_tokenize"), format="parquet").to_table(columns=["id", "repo", "path", "tokens"])
    return {i: tuple(t[:-1]) for i, r, p, t in zip(*(table.column(c).to_pylist() for c in ("id", "repo", "path", "tokens")))
            if keep(r, p)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def opted_out(repo: str, path: str) -> bool:
    return repo.startswith("fork__") or f"{repo}/{path}" == "python__xmlrpc/client.py"


@pytest.fixture(scope="module")
def removed(run, tmp_path_factory):
    """The shared run's base state, and a removal of one repository and one file from it."""
    root = tmp_path_factory.mktemp("remove")
    before = {p.name: sha256(p) for p in [run / "manifest.json", *sorted((run / "shards").iterdir())]}
    (root / "opt-out.txt").write_text(OPT_OUT)
    proc = codecorpus("remove", str(run), "--repos", str(root / "opt-out.txt"), "--out", str(root / "cut"))
    return root, before, proc.stdout


def test_removed_files_are_gone_every_other_file_stays_and_untouched_shards_keep_their_bytes(run, removed):
    root, before, _ = removed
    cut = root / "cut"
    base_manifest = json.loads((run / "manifest.json").read_text())
    manifest = json.loads((cut / "manifest.json").read_text())
    eod = base_manifest["tokenizer"]["eod_id"]
    gone = file_documents(run, opted_out)
    assert len(gone) >= 3
    # the base is never written
    assert {p.name: sha256(p) for p in [run / "manifest.json", *sorted((run / "shards").iterdir())]} == before
    held = {e["shard"]: Counter(documents(run / "shards" / e["shard"], eod)) for e in base_manifest["shards"]}
    touched = {name for name, docs in held.items() if any(docs[d] for d in gone.values())}
    assert touched and len(touched) < len(held), "the test needs shards with and without removed files"
    new = {e["shard"]: e for e in manifest["shards"]}
    for name, docs in held.items():
        if name not in touched:     # byte for byte the base's shard
            assert new[name]["sha256"] == base_manifest["shards"][[e["shard"] for e in base_manifest["shards"]].index(name)]["sha256"]
            assert sha256(cut / "shards" / name) == before[name]
            assert (cut / "shards" / name).stat().st_ino == (run / "shards" / name).stat().st_ino   # not rewritten: a hard link
            continue
        expected = docs - Counter(gone.values())
        got = Counter(documents(cut / "shards" / name, eod))
        assert got == expected and sum(got.values()) == new[name]["files"]
        assert sha256(cut / "shards" / name) == new[name]["sha256"] != before[name]
    # every file that is not removed is in the new shards exactly once
    everything = Counter(d for name in new for d in documents(cut / "shards" / name, eod))
    kept = file_documents(run, lambda r, p: not opted_out(r, p))
    assert everything == Counter(kept.values())


def test_books_manifest_and_stats_of_the_removal(run, removed):
    root, _, stdout = removed
    manifest = json.loads((root / "cut" / "manifest.json").read_text())
    base = json.loads((run / "manifest.json").read_text())
    books = manifest["stages"]["10_opt_out"]
    gone = file_documents(run, opted_out)
    assert books["in"] == base["stages"]["08_tokenize"]["kept"]
    assert books["dropped"] == {"opted_out": len(gone)} and books["kept"] == books["in"] - len(gone)
    assert manifest["opt_out"]["patterns"] == ["fork__*", "python__xmlrpc/client.py"]
    assert manifest["opt_out"]["base_manifest_sha256"] == sha256(run / "manifest.json")
    assert manifest["tokens"]["total"] == base["tokens"]["total"] - sum(len(d) + 1 for d in gone.values())
    assert manifest["rows"] == sum(e["rows"] for e in manifest["shards"])
    listed = pads.dataset(str(root / "cut" / "stages" / "10_opt_out")).to_table()
    assert sorted(listed.column("id").to_pylist()) == sorted(gone) and set(listed.column("reason").to_pylist()) == {"opted_out"}
    assert f"dropped {len(gone):>8,}" in stdout
    stats = json.loads(codecorpus("stats", str(root / "cut"), "--json").stdout)
    assert stats["manifest"]["stages"]["10_opt_out"]["dropped"] == {"opted_out": len(gone)}
    shown = codecorpus("show", str(root / "cut"), check=False)
    assert shown.returncode == 2 and "codecorpus remove" in shown.stderr and str(run) in shown.stderr
    again = codecorpus("remove", str(run), "--repos", str(root / "opt-out.txt"), "--out", str(root / "cut"))
    assert "up to date" in again.stdout


def test_a_chain_of_removals_keeps_every_earlier_removal(run, removed):
    root, _, _ = removed
    (root / "more.txt").write_text("python__wsgiref\n")
    codecorpus("remove", str(root / "cut"), "--repos", str(root / "more.txt"), "--out", str(root / "cut2"))
    manifest = json.loads((root / "cut2" / "manifest.json").read_text())
    eod = manifest["tokenizer"]["eod_id"]
    both = lambda r, p: opted_out(r, p) or r == "python__wsgiref"   # noqa: E731
    got = Counter(d for e in manifest["shards"] for d in documents(root / "cut2" / "shards" / e["shard"], eod))
    assert got == Counter(file_documents(run, lambda r, p: not both(r, p)).values())
    assert manifest["stages"]["10_opt_out"]["dropped"] == {"opted_out": len(file_documents(run, both))}
    assert manifest["opt_out"]["base"] == str((root / "cut").resolve())


@pytest.mark.parametrize("case", ["empty", "nothing", "unfinished", "exists", "only removed"])
def test_refusals_are_one_line_and_change_nothing(run, removed, tmp_path, case):
    root, _, _ = removed
    patterns, base, out = tmp_path / "p.txt", run, tmp_path / "out"
    patterns.write_text({"empty": "# nobody\n\n", "nothing": "python__html\nno_such_repo\n", "only removed": "fork__json\n"}
                        .get(case, "python__html\n"))
    if case == "unfinished":
        base = tmp_path / "unfinished"
        base.mkdir()
        (base / "stats.json").write_text('{"status": "running", "stages": {}}')
    if case == "exists":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    if case == "only removed":
        base = root / "cut"
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    proc = codecorpus("remove", str(base), "--repos", str(patterns), "--out", str(out), check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert {"empty": "no patterns", "nothing": "no_such_repo", "unfinished": "not a finished run", "exists": "exists",
            "only removed": "removed already"}[case] in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing


def test_a_removal_killed_midway_is_redone_by_the_same_command(run, removed, tmp_path):
    root, _, _ = removed
    out = tmp_path / "cut"
    partial = tmp_path / "cut.partial"
    command = [sys.executable, "-m", "codecorpus", "remove", str(run), "--repos", str(root / "opt-out.txt"), "--out", str(out)]
    for _ in range(5):         # the window is short: kill -9 as soon as the partial folder appears
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not partial.exists():
            time.sleep(0.001)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        proc.wait()
        subprocess.run(["rm", "-rf", str(out)], check=True)
    else:
        pytest.fail("remove finished five times before it could be killed")
    assert not out.exists()
    codecorpus(*command[3:])
    cut = json.loads((root / "cut" / "manifest.json").read_text())["shards"]
    assert [e["sha256"] for e in json.loads((out / "manifest.json").read_text())["shards"]] == [e["sha256"] for e in cut]
    assert not partial.exists()
