"""`codecorpus build --base RUN`: new code added to a finished build, deduplicated against it.

The oracle is a full build of the base's input and the new input together (the base's source
listed first, so the base's copy of a duplicate is the one kept, as an increment must): every new
file must meet the same fate in the increment as there — kept, removed as a copy of a base file,
or removed as a copy of another new file.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from tests.conftest import BUILD, STDLIB, codecorpus
from tests.test_resume import build_and_kill

pytestmark = pytest.mark.slow

NEW_SOURCE = """
[[sources]]
name = "{name}"
paths = ["{path}"]
priority = {priority}
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_package(package: str, to: Path) -> Path:
    shutil.copytree(STDLIB / package, to, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    return to


def config(root: Path, name: str, sources: list[tuple[str, Path, int]], extra: str = "") -> Path:
    """BUILD's settings with these (name, folder, priority) sources instead of its one."""
    text = BUILD.format(repos="", cpus=2).split("[tokenizer]", 1)[1]
    cfg = root / f"{name}.toml"
    cfg.write_text("".join(NEW_SOURCE.format(name=n, path=p, priority=k) for n, p, k in sources) + "[tokenizer]" + text + extra)
    return cfg


def fates(run: Path) -> dict[str, str]:
    """Each file's fate after near dedup: `kept` or its dedup reason."""
    out = {}
    for stage in ("05_exact_dedup", "06_near_dedup"):
        t = pads.dataset(str(run / "stages" / stage), format="parquet").to_table(columns=["id", "status", "reason"])
        out.update({i: "kept" if s == "kept" else r for i, s, r in zip(*(t.column(c).to_pylist() for c in ("id", "status", "reason")))})
    return out


def names(*runs: Path) -> dict[str, str]:
    """id → repo/path of every file the per-file pass kept in these runs."""
    out = {}
    for run in runs:
        t = pads.dataset(str(run / "stages" / "files" / "kept"), format="parquet").to_table(columns=["id", "repo", "path"])
        out.update({i: f"{r}/{p}" for i, r, p in zip(*(t.column(c).to_pylist() for c in ("id", "repo", "path")))})
    return out


def clusters(run: Path) -> dict[str, tuple[str, str]]:
    """id → (the kept file it duplicates, the reason: an increment's table has one)."""
    t = pads.dataset(str(run / "stages" / "06_near_dedup.clusters"), format="parquet").to_table()
    reasons = t.column("reason").to_pylist() if "reason" in t.column_names else ["near_duplicate"] * t.num_rows
    return {i: (s, r) for i, s, r in zip(t.column("id").to_pylist(), t.column("survivor_id").to_pylist(), reasons)}


@pytest.fixture(scope="module")
def grown(corpus, run, tmp_path_factory):
    """The shared run as the base; increment +1 (killed in near dedup, then the same command again);
    a full build of both inputs; increment +2 on +1."""
    repos_root, repos = corpus
    root = tmp_path_factory.mktemp("increment")
    before = {p.name: sha256(p) for p in [run / "manifest.json", *sorted((run / "shards").iterdir())]}
    new = root / "new"
    for package in ("concurrent", "tomllib"):
        copy_package(package, new / f"python__{package}")
    copy_package("tomllib", new / "again__tomllib")                  # copies among the new files
    shutil.copytree(repos / "python__json", new / "mirror__json")    # exact copies of base files
    shutil.copytree(repos / "python__html", new / "edited__html")    # one of them lightly edited: a near copy
    parser = new / "edited__html" / "parser.py"
    parser.write_text(parser.read_text().replace("    def ", "    def  ", 5) + "\n# edited in the mirror\n")

    inc1 = config(root, "plus1", [("new", new, 1)])
    full = subprocess.Popen([sys.executable, "-m", "codecorpus", "build", str(config(root, "full", [("scraped", repos, 0), ("new", new, 1)])),
                             "--out", str(root / "full")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # meanwhile
    log = build_and_kill(inc1, root / "plus1", lambda: (root / "plus1" / "work" / "base_candidates").exists(), root / "kill.log",
                         "--base", str(run))
    resumed = codecorpus("build", str(inc1), "--out", str(root / "plus1"), "--base", str(run)).stdout
    new2 = root / "new2"
    shutil.copytree(new / "python__concurrent", new2 / "copy__concurrent")   # copies of +1's files
    shutil.copytree(repos / "python__json", new2 / "third__json")          # and of the base's
    copy_package("zoneinfo", new2 / "python__zoneinfo")
    codecorpus("build", str(config(root, "plus2", [("new2", new2, 2)])), "--out", str(root / "plus2"), "--base", str(root / "plus1"))
    printed, _ = full.communicate(timeout=900)
    assert full.returncode == 0, printed[-3000:]
    return root, before, log, resumed


def test_an_increment_gives_each_new_file_the_fate_a_full_build_gives_it(run, grown):
    root, before, _, _ = grown
    full, inc = fates(root / "full"), fates(root / "plus1")
    where = names(run, root / "plus1")
    base_ids = set(names(run))
    # the oracle's duplicates of base files: a base file has the content (exact) or is the kept file (near)
    full_clusters = clusters(root / "full")
    of_base = {i for i, (s, _) in full_clusters.items() if s in base_ids}
    kept_rows = pads.dataset(str(root / "full" / "stages" / "files" / "kept"), format="parquet").to_table(
        columns=["id", "source", "content_hash"]).to_pylist()
    base_hashes = {r["content_hash"] for r in kept_rows if r["source"] == "scraped"}
    of_base |= {r["id"] for r in kept_rows if r["source"] == "new" and r["content_hash"] in base_hashes}
    expected = {i: "duplicate_of_base" if i in of_base else f for i, f in full.items() if i in inc}
    assert inc == expected
    reasons = sorted(set(inc.values()))
    assert reasons == ["duplicate_of_base", "exact_duplicate", "kept"], reasons
    # copies of base files are attributed to them: mirror__json/x.py → python__json/x.py, the edited parser near
    attributed = {where[i]: (where[s], r) for i, (s, r) in clusters(root / "plus1").items()}
    assert attributed["mirror__json/decoder.py"] == ("python__json/decoder.py", "duplicate_of_base")
    assert attributed["edited__html/parser.py"] == ("python__html/parser.py", "duplicate_of_base")
    assert all(r == "duplicate_of_base" and s.split("/")[0] in ("python__json", "fork__json", "python__html")
               for s, r in attributed.values())
    # the base is never written; the increment's tokenizer is the base's; its manifest names the base
    assert before == {p.name: sha256(p) for p in [run / "manifest.json", *sorted((run / "shards").iterdir())]}
    manifest = json.loads((root / "plus1" / "manifest.json").read_text())
    assert manifest["tokenizer"]["sha256"] == json.loads((run / "manifest.json").read_text())["tokenizer"]["sha256"]
    assert manifest["base"]["chain"] == [{"path": str(run), "manifest_sha256": before["manifest.json"]}]
    stages = manifest["stages"]
    assert stages["05_exact_dedup"]["in"] == stages["04_clean"]["kept"]
    assert stages["08_tokenize"]["kept"] == sum(f == "kept" for f in inc.values()) == sum(s["files"] for s in manifest["shards"])


def test_an_increment_killed_mid_dedup_goes_on_where_it_stopped(grown):
    _, _, log, resumed = grown
    assert "06_near_dedup" not in log and "done:" not in log
    assert "04_clean        up to date" in resumed and "05_exact_dedup  up to date" in resumed
    assert "done:" in resumed


def test_a_chain_of_increments_and_a_trainer_reading_it(run, grown):
    root = grown[0]
    plus1, plus2 = root / "plus1", root / "plus2"
    where = names(run, plus1, plus2)
    attributed = {where[i]: where[s] for i, (s, _) in clusters(plus2).items()}
    assert attributed["copy__concurrent/futures/thread.py"] == "python__concurrent/futures/thread.py"   # a file of +1
    assert attributed["third__json/decoder.py"] == "python__json/decoder.py"                           # of the base
    assert set(fates(plus2).values()) == {"kept", "duplicate_of_base"}
    manifest = json.loads((plus2 / "manifest.json").read_text())
    assert [Path(r["path"]) for r in manifest["base"]["chain"]] == [run, plus1]

    from codecorpus.trainer.data import ShardSamples

    runs = [json.loads((r / "manifest.json").read_text()) for r in (run, plus1, plus2)]
    samples = ShardSamples(plus2, 128, manifest["tokenizer"]["eod_id"])
    assert len(samples) == sum(s["rows"] for m in runs for s in m["shards"]) * 4       # rows of 512 + 1: 4 windows of 128
    from codecorpus.trainer.data import check_shards       # what `train --dry-run` checks: every shard of the chain
    assert [path.parents[1] for path, _ in check_shards(plus2, manifest)] == [
        r for r, m in zip((run, plus1, plus2), runs) for _ in m["shards"]]


def test_a_base_that_cannot_be_one_is_refused_in_one_line_before_any_work(run, grown, tmp_path):
    from codecorpus.pipeline.config import load_config
    from codecorpus.pipeline.errors import BuildError
    from codecorpus.pipeline.chain import open_chain

    root = grown[0]
    before = sha256(run / "manifest.json")
    same = config(tmp_path, "same", [("new", root / "new", 1)])
    # through the command line: one line, exit 2, nothing written
    vocab = tmp_path / "vocab.toml"
    vocab.write_text(same.read_text().replace("vocab_size = 2048", "vocab_size = 4096"))
    proc = codecorpus("build", str(vocab), "--out", str(tmp_path / "out"), "--base", str(run), check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "built with other tokenizer settings (tokenizer.vocab_size = 2048 there, 4096 in this config)" in proc.stderr
    assert not (tmp_path / "out").exists()
    # the other refusals, as the command line checks them before it starts Ray
    (tmp_path / "empty").mkdir()
    removal = tmp_path / "removal"
    shutil.copytree(run, removal, ignore=shutil.ignore_patterns("stages", "shards"))
    manifest = json.loads((removal / "manifest.json").read_text())
    (removal / "manifest.json").write_text(json.dumps({**manifest, "opt_out": {"origin": str(run)}}))
    cases = [
        (same, tmp_path / "empty", "not a finished build"),
        (same.read_text() + "\n[dedup.near]\nnum_perm = 128\n", run, "dedup.near.num_perm = 256 there, 128 in this config"),
        (same.read_text().replace("seq_length = 512", "seq_length = 1024"), run, "packing.seq_length = 512 there, 1024"),
        (same, removal, "a removal (codecorpus remove)"),
        (same, tmp_path / "out", "the run being built"),
    ]
    for k, (cfg, base, said) in enumerate(cases):
        if isinstance(cfg, str):
            (tmp_path / f"case{k}.toml").write_text(cfg)
            cfg = tmp_path / f"case{k}.toml"
        out = base if said == "the run being built" else tmp_path / "out"
        with pytest.raises(BuildError, match=re.escape(said)):
            open_chain(base, load_config(cfg), out)
    # a run of the chain that changed since: refused when building on what was built on it
    plus1 = root / "plus1"
    shutil.copy(plus1 / "manifest.json", tmp_path / "plus1-manifest.json")
    try:
        (plus1 / "manifest.json").write_text((plus1 / "manifest.json").read_text() + "\n")
        with pytest.raises(BuildError, match="a run of its chain, is gone or changed since"):
            open_chain(root / "plus2", load_config(same), tmp_path / "out")
    finally:
        shutil.copy(tmp_path / "plus1-manifest.json", plus1 / "manifest.json")
    assert sha256(run / "manifest.json") == before
