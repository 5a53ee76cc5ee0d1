"""Builds that survive: kill -9 and resume, config changes, --force, a full disk. Every build here must
give the same shards as the uninterrupted one (`run`, from conftest). A Ray node lost mid-stage:
test_object_storage (a cluster without a shared filesystem, where it matters most)."""
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import BUILD, build_and_kill, codecorpus, query, served, wait_for

pytestmark = pytest.mark.slow


def shard_hashes(run: Path) -> list[str]:
    return [s["sha256"] for s in json.loads((run / "manifest.json").read_text())["shards"]]


def config(corpus, name: str, extra: str = "") -> Path:
    root, repos = corpus
    path = root / f"{name}.toml"
    path.write_text(BUILD.format(repos=repos, cpus=2) + extra)
    return path


def parquet_parts(folder: Path) -> int:
    return len(list(folder.glob("*.parquet"))) if folder.is_dir() else 0


SMALL_PARTITIONS = "files_per_partition = 8\n"   # appended to BUILD's [ray]: many partitions to be killed between


def test_kill_minus_9_at_three_points_then_resume(corpus, run):
    root, _ = corpus
    cfg, out = config(corpus, "killed", SMALL_PARTITIONS), root / "killed"
    stages = out / "stages"
    points = {
        "in the per-file pass": lambda: parquet_parts(stages / "files.partial" / "kept") >= 1,
        "in near-dedup after its candidate pairs": lambda: (out / "work" / "near_dedup_edges.fingerprint").is_file(),
        # the step has begun (this small input is one ~16 MB partition: no moment holds a finished one)
        "tokenizing": lambda: (stages / "08_tokenize.partial").is_dir(),
    }
    logs = []
    for i, point in enumerate(points.values()):
        logs.append(build_and_kill(cfg, out, point, root / f"killed-{i}.log"))
        if i == 0:
            readable_mid_per_file_pass(out)
    edges_written = (out / "work" / "near_dedup_edges.fingerprint").stat().st_mtime_ns
    final = codecorpus("build", str(cfg), "--out", str(out)).stdout

    # partitions of 8 files instead of 512: the same shards
    assert shard_hashes(out) == shard_hashes(run)
    # Each run went on from where the one before it was killed: finished steps skipped...
    assert "per-file pass   resuming:" in logs[1]
    for step in ("01_ingest", "02_language", "03_filter", "04_clean", "05_exact_dedup"):
        assert f"{step:<15} up to date" in logs[2] + final
    for step in ("06_near_dedup", "07_tag", "tokenizer"):
        assert f"{step:<15} up to date" in final
    # ...a half-written stage kept its finished partitions, and near-dedup its candidate pairs.
    assert (out / "work" / "near_dedup_edges.fingerprint").stat().st_mtime_ns == edges_written
    assert json.loads((out / "stats.json").read_text())["status"] == "complete"


def readable_mid_per_file_pass(out: Path) -> None:
    """`query`, `show` and `serve` on a run killed in its per-file pass: the partitions written so far."""
    assert not (out / "stages" / "files").exists()
    assert query(out, "SELECT 1 AS one") == [{"one": 1}]
    files = query(out, "SELECT count(*) AS n FROM files")[0]["n"]
    assert files > 0 and query(out, "SELECT count(*) AS n FROM kept")[0]["n"] == files     # nothing deduplicated yet
    assert query(out, "SELECT count(*) AS n FROM stage_06_near_dedup")[0]["n"] == 0
    shown = [json.loads(line) for line in codecorpus("show", str(out), "--json", "--limit", "1").stdout.splitlines()]
    assert len(shown) == 1 and shown[0]["text"]
    assert served(out, "/", "/files", "/files?stage=01_ingest") == [200, 200, 200]


def test_a_config_change_reruns_what_follows_and_force_reruns_all(corpus, run):
    root, _ = corpus
    out = root / "changed"
    shutil.copytree(run, out)
    again = codecorpus("build", str(config(corpus, "same")), "--out", str(out)).stdout
    assert again.count("up to date") == 10

    # a near-dedup setting: the per-file pass and exact dedup stay, near dedup and what follows re-run
    distributed = codecorpus("build", str(config(corpus, "dist", '[dedup.near]\ncomponents = "distributed"\n')),
                             "--out", str(out)).stdout
    for step in ("01_ingest", "04_clean", "05_exact_dedup"):
        assert f"{step:<15} up to date" in distributed
    for step in ("06_near_dedup", "07_tag", "08_tokenize"):
        assert f"{step:<15} in " in distributed
    assert shard_hashes(out) == shard_hashes(run)          # the same components either way

    # a filter threshold: the per-file pass runs again, and everything after it
    changed = codecorpus("build", str(config(corpus, "changed", "[filters]\nmax_line_length = 120\n")), "--out", str(out)).stdout
    assert "up to date" not in changed
    before = json.loads((run / "stats.json").read_text())["stages"]["03_filter"]["dropped"]
    after = json.loads((out / "stats.json").read_text())["stages"]["03_filter"]["dropped"]
    assert after.get("max_line_length", 0) > before.get("max_line_length", 0)

    forced = codecorpus("build", str(config(corpus, "same")), "--out", str(out), "--force").stdout
    assert "up to date" not in forced
    assert shard_hashes(out) == shard_hashes(run)


def test_a_full_disk_mid_stage_stops_clearly_and_resumes(corpus, run):
    """The disk fills while stage 08 writes (its partition files land on /dev/full, which fails every
    write with ENOSPC): the build stops with one line, the steps before it stay, and once there is
    space the same command finishes with the same shards."""
    root, _ = corpus
    cfg, out = config(corpus, "full"), root / "full"
    partial = out / "stages" / "08_tokenize.partial"
    planted: list[Path] = []

    def fill_the_disk() -> None:
        wait_for(lambda: (partial / "FINGERPRINT").is_file())
        for upstream in sorted((out / "stages" / "files" / "kept").glob("*.parquet")):
            tmp = partial / f"{upstream.stem}.0000.parquet.tmp"
            try:
                tmp.symlink_to("/dev/full")
                planted.append(tmp)
            except FileExistsError:
                pass

    filler = threading.Thread(target=fill_the_disk)
    filler.start()
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(cfg), "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    filler.join()
    assert planted
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("codecorpus: error: step 08_tokenize: cannot write: ") and "No space left on device" in message
    assert "run the same command again to resume" in message
    state = json.loads((out / "state.json").read_text())
    assert {"01-04_per_file", "05_exact_dedup", "06_near_dedup", "tokenizer"} <= set(state) and "08_tokenize" not in state
    assert json.loads((out / "stats.json").read_text())["status"] == "failed"

    for link in planted:   # space again
        link.unlink(missing_ok=True)
    resumed = codecorpus("build", str(cfg), "--out", str(out)).stdout
    assert f"{'06_near_dedup':<15} up to date" in resumed
    assert shard_hashes(out) == shard_hashes(run)


def test_output_folder_not_writable_fails_before_any_work(corpus, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(config(corpus, "nowhere")),
                           "--out", str(blocker / "run")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"codecorpus: error: output folder {blocker / 'run'} is not writable: Not a directory"
    assert "Ray" not in proc.stdout + proc.stderr and time.time() - started < 30


def test_a_second_build_in_the_same_folder_is_refused(corpus, run, tmp_path):
    import fcntl

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(config(corpus, "busy")), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"another codecorpus build is running in {out}")
