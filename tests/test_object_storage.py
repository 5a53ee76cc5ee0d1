"""S3-compatible object storage (`s3://bucket/prefix/…`), against a real S3 server (conftest.s3_store:
moto's server on 127.0.0.1, credentials checked): every source kind read from it gives the records
that the same files give from the local disk; a build with its input and run folder there — killed,
resumed on a cluster that loses a node — gives the disk build's shards; that run is read in place by
stats/query/show/serve and trained on through a local cache; a store that cannot be read is one line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from codecorpus.interface.browse import query
from codecorpus.interface.serve import make_app
from codecorpus.interface.show import Filters, matching
from codecorpus.pipeline.config import ConfigError, load_config
from codecorpus.stages import read_scraped, sources
from codecorpus.trainer.data import local_run
from codecorpus.trainer.errors import TrainerError
from conftest import MIXED, TINY_MODEL, build_and_kill, codecorpus


@pytest.fixture(scope="module")
def store_env(s3_store):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3_store["env"].items():
            mp.setenv(key, value)
        yield s3_store


@pytest.fixture(scope="module")
def inputs(mixed_input, store_env):
    """conftest.mixed_input (every source kind) on disk and under s3://corpus/mixed, with MIXED's
    config for each: (local config text, s3 config text)."""
    pafs.copy_files(str(mixed_input), "corpus/mixed", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=store_env["fs"])
    benchmarks = mixed_input.parent / "HumanEval.jsonl"
    return MIXED.format(root=mixed_input, benchmarks=benchmarks), MIXED.format(root="s3://corpus/mixed", benchmarks=benchmarks)


def read_all(source) -> pa.Table:
    """Every record of one configured source, as the build's per-file pass reads them (without Ray)."""
    folders, units = sources.plan(source, source.resolved_paths())
    tables = [read_scraped.read_files(pa.Table.from_pylist(read_scraped.list_files(f))) for f in folders]
    tables += [t for unit in units for t in sources.read_unit(pa.Table.from_pylist([unit]))]
    return pa.concat_tables(tables).sort_by("id")


def test_every_source_kind_reads_the_same_records_from_object_storage(inputs, tmp_path):
    configs = {}
    for name, text in zip(("local", "s3"), inputs):
        (tmp_path / f"{name}.toml").write_text(text)
        configs[name] = load_config(tmp_path / f"{name}.toml")
    for on_disk, in_store in zip(configs["local"].sources, configs["s3"].sources):
        assert [p.startswith("s3://corpus/mixed/") for p in in_store.resolved_paths()] == [True] * len(on_disk.resolved_paths())
        a, b = read_all(on_disk), read_all(in_store)
        assert a.num_rows > 20 and set(a.column("status").to_pylist()) >= {"kept"}
        assert b.equals(a), on_disk.name
    statuses = read_all(configs["s3"].sources[1]).column("reason").to_pylist()
    assert "truncated_or_corrupt" in statuses and "pile_set:Enron Emails" in statuses


def store_keys(fs: pafs.S3FileSystem, prefix: str) -> list[str]:
    return sorted(i.path for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
                  if i.type == pafs.FileType.File)


RUN_URL = "s3://corpus/runs/mixed"


@pytest.fixture(scope="module")
def built_in_store(inputs, store_env, tmp_path_factory) -> dict:
    """conftest.MIXED (every source kind and every path of a build), its input under s3://corpus/mixed
    and its run folder at RUN_URL: killed (-9, with its Ray) in the per-file pass, then the same
    command joining a three-node Ray cluster (Ray's cluster utilities: a head without CPUs and two
    worker nodes, so every task runs on a node with no run folder of its own), one of whose worker
    nodes is removed mid-stage. Returns what each command printed, the folder it ran in, and whether
    the node was lost."""
    from ray.cluster_utils import Cluster

    fs, prefix = store_env["fs"], RUN_URL[len("s3://"):]
    tmp = tmp_path_factory.mktemp("s3-build")
    work = tmp / "cwd"
    work.mkdir()
    (work / "s3.toml").write_text(inputs[1] + "files_per_partition = 8\n")     # many partitions to be killed between
    kept = lambda: len(store_keys(fs, f"{prefix}/stages/files/kept"))          # noqa: E731
    killed = build_and_kill(work / "s3.toml", RUN_URL, lambda: time.sleep(0.05) or kept() > 0, tmp / "killed.log", cwd=work)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    lost = threading.Event()
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        before, finished = kept(), threading.Event()

        def lose_a_node() -> None:
            while not finished.is_set():
                if kept() > before:                   # the resumed build writes partitions again: mid-stage
                    cluster.remove_node(doomed, allow_graceful=False)
                    lost.set()
                    return
                time.sleep(0.05)

        loser = threading.Thread(target=lose_a_node)
        loser.start()
        try:
            resumed = subprocess.run([sys.executable, "-m", "codecorpus", "build", "s3.toml", "--out", RUN_URL, "--address",
                                      cluster.address], capture_output=True, text=True, timeout=900, cwd=work)
        finally:
            finished.set()
            loser.join()
    finally:
        cluster.shutdown()
    (tmp / "resumed.log").write_text(resumed.stdout + resumed.stderr)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return {"killed": killed, "resumed": resumed.stdout, "cwd": work, "lost": lost.is_set()}


@pytest.mark.slow
def test_a_build_into_object_storage_killed_then_resumed_on_a_cluster_losing_a_node_gives_the_disk_builds_shards(
        built_in_store, mixed_run, store_env):
    """The build in the store (built_in_store) goes on from the partitions in the store and gives the
    shards of the build on disk, byte for byte, though a node was lost mid-stage. Nothing is written
    to the local disk, no temporary object is left in the store, Ray's log is uploaded."""
    fs, prefix = store_env["fs"], RUN_URL[len("s3://"):]
    assert "01_ingest" not in built_in_store["killed"]                 # killed before the per-file pass ended
    resumed = built_in_store["resumed"]
    assert re.search(r"per-file pass +resuming: [1-9]\d* of \d+ partitions already written", resumed), resumed
    assert built_in_store["lost"]
    local = json.loads((mixed_run / "manifest.json").read_text())
    s3 = json.loads(fs.open_input_stream(f"{prefix}/manifest.json").read())
    assert s3["shards"] == local["shards"] and local["rows"] > 0               # names, rows and sha256 of every shard
    assert {k: v["kept"] for k, v in s3["stages"].items()} == {k: v["kept"] for k, v in local["stages"].items()}
    assert sorted(os.listdir(built_in_store["cwd"])) == ["s3.toml"]           # no local run folder, no log beside it
    keys = store_keys(fs, prefix)
    assert [k for k in keys if re.search(r"\.(tmp|partial|old)\b|/work/shuffle/|FINGERPRINT", k)] == []
    assert f"{prefix}/build.log" in keys and f"{prefix}/shards/{local['shards'][0]['shard']}" in keys


def books(stats: dict) -> dict:
    return {stage: {k: v for k, v in b.items() if k != "seconds"} for stage, b in stats["stages"].items()}


@pytest.mark.slow
def test_stats_query_show_and_serve_read_a_run_in_object_storage(built_in_store, mixed_run):
    """Read in place (Arrow datasets over S3 under DuckDB): the answers the same build gives from the disk."""
    stats = json.loads(codecorpus("stats", RUN_URL, "--json").stdout)
    assert stats["stats"]["status"] == "complete"
    assert books(stats["stats"]) == books(json.loads((mixed_run / "stats.json").read_text()))
    for sql in ("SELECT stage, reason, count(*) AS n FROM rejects GROUP BY ALL ORDER BY ALL",
                "SELECT count(*), sum(size), min(id) FROM kept", "SELECT * FROM clusters ORDER BY id",
                "SELECT * FROM shards", "SELECT * FROM documents ORDER BY id", "SELECT count(*) FROM stage_08_tokenize"):
        assert query(RUN_URL, sql) == query(str(mixed_run), sql), sql
    assert query(RUN_URL, "SELECT count(*) FROM clusters")[1][0][0] > 0
    shown = [list(matching(where, Filters(stage="03_filter", limit=3))) for where in (str(mixed_run), RUN_URL)]
    assert shown[1] == shown[0] and len(shown[0]) == 3 and all(r["text"] for r in shown[0])   # what `show` prints
    page = make_app(RUN_URL).test_client().get("/")
    assert page.status_code == 200 and "Near duplicates removed" in page.get_data(as_text=True)


@pytest.mark.slow
def test_train_reads_a_run_in_object_storage_through_a_local_cache(built_in_store, mixed_run, tmp_path, monkeypatch):
    """`train --data s3://…` trains on a local copy holding the run's own shards; a second start
    fetches nothing."""
    monkeypatch.setenv("CODECORPUS_CACHE", str(tmp_path / "cache"))
    manifest = json.loads((mixed_run / "manifest.json").read_text())
    (tmp_path / "tiny.toml").write_text(TINY_MODEL + f'[train]\nsteps = 3\nbatch_size = 2\nout_dir = "{tmp_path / "out"}"\n')
    said = codecorpus("train", str(tmp_path / "tiny.toml"), "--data", RUN_URL).stdout
    shards = len(manifest["shards"])
    assert f"({shards} of {shards} shard(s) fetched, sha256 checked)" in said, said
    losses = [json.loads(line)["loss"] for line in (tmp_path / "out" / "rank_0" / "steps.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(0 < x < 20 for x in losses)
    cache = tmp_path / "cache" / "runs" / "corpus" / "runs" / "mixed"
    for entry in manifest["shards"]:                # the trainer read these files: the disk build's bytes
        assert (cache / "shards" / entry["shard"]).read_bytes() == (mixed_run / "shards" / entry["shard"]).read_bytes()
    again = []
    assert local_run(RUN_URL, echo=again.append) == str(cache)
    assert f"(0 of {shards} shard(s) fetched" in again[0]                # the second start fetches nothing
    with pytest.raises(TrainerError, match="s3://corpus/runs/nothing-here: no manifest.json"):
        local_run("s3://corpus/runs/nothing-here")


@pytest.mark.parametrize("case", ["missing bucket", "wrong secret key", "endpoint that does not answer"])
def test_a_store_that_cannot_be_read_is_one_line_naming_the_source(case, inputs, tmp_path, monkeypatch):
    text = inputs[1].replace("s3://corpus/", "s3://no-such-bucket/") if case == "missing bucket" else inputs[1]
    if case == "wrong secret key":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
    if case == "endpoint that does not answer":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")          # the discard port: nothing listens
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.toml")
    message = str(err.value)
    assert "\n" not in message and "sources[github].paths" in message
    expected = {"missing bucket": "s3://no-such-bucket/mixed/repos does not exist",     # S3 answers a HEAD (no body) with
                "wrong secret key": "AWS Error (ACCESS_DENIED|SIGNATURE_DOES_NOT_MATCH)",   # 403, a listing with the reason
                "endpoint that does not answer": "NETWORK_CONNECTION"}[case]
    assert re.search(expected, message), message


def test_the_cli_refuses_before_any_work(inputs, tmp_path, store_env):
    (tmp_path / "c.toml").write_text(inputs[1])
    env = {**store_env["env"], "AWS_SECRET_ACCESS_KEY": "not-the-key"}
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "AWS Error ACCESS_DENIED" in lines[0], lines
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("out, says", [
    ("s3://no-such-bucket/run", "output folder s3://no-such-bucket/run is not writable: AWS Error NO_SUCH_BUCKET"),
    ("s3://corpus/someone", "output folder s3://corpus/someone is not empty and not a codecorpus run (it holds notes.txt)"),
    ("s3://corpus/someone/notes.txt", "output s3://corpus/someone/notes.txt is an object, not a folder")])
def test_an_output_in_object_storage_that_cannot_be_a_run_is_refused_in_one_line(out, says, inputs, tmp_path, store_env):
    with store_env["fs"].open_output_stream("corpus/someone/notes.txt") as fh:
        fh.write(b"mine\n")
    (tmp_path / "c.toml").write_text(inputs[0])
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(tmp_path / "c.toml"), "--out", out],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "\n" not in proc.stderr.strip(), proc.stderr
    assert proc.stderr.startswith(f"codecorpus: error: {says}"), proc.stderr
    assert store_keys(store_env["fs"], "corpus/someone") == ["corpus/someone/notes.txt"]      # nothing written beside it


def test_a_source_mixing_local_and_s3_paths_is_refused(tmp_path):
    (tmp_path / "c.toml").write_text('[[sources]]\nname = "x"\npaths = ["s3://corpus/a", "/tmp"]\n')
    with pytest.raises(ConfigError, match=r"sources.*paths.*all local or all s3://"):
        load_config(tmp_path / "c.toml")
