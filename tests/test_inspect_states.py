"""`show`, `query` and `serve` read a run in any state: killed in the middle of its per-file pass, and
failed (every input quarantined, so no stage was ever published) — when its rejects matter most."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import codecorpus
from test_resume import SMALL_PARTITIONS, build_and_kill, config, parquet_parts

pytestmark = pytest.mark.slow


def query(run: Path, sql: str) -> list[dict]:
    return [json.loads(line) for line in codecorpus("query", str(run), sql, "--json").stdout.splitlines()]


def served(run: Path, *paths: str) -> list[int]:
    """HTTP status of each page of `codecorpus serve RUN`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "codecorpus", "serve", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        statuses = []
        for path in paths:
            for _ in range(150):
                try:
                    statuses.append(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).status)
                    break
                except urllib.error.HTTPError as exc:
                    statuses.append(exc.code)
                    break
                except OSError:
                    assert server.poll() is None, server.stderr.read()
                    time.sleep(0.2)
        return statuses
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_run_killed_in_its_per_file_pass(corpus, tmp_path):
    cfg, out = config(corpus, "inspect-killed", SMALL_PARTITIONS), tmp_path / "killed"
    build_and_kill(cfg, out, lambda: parquet_parts(out / "stages" / "files.partial" / "kept") >= 2, tmp_path / "log")
    assert not (out / "stages" / "files").exists()
    assert query(out, "SELECT 1 AS one") == [{"one": 1}]
    files = query(out, "SELECT count(*) AS n FROM files")[0]["n"]
    assert files > 0                                                      # the partitions written so far
    assert query(out, "SELECT count(*) AS n FROM kept")[0]["n"] == files  # nothing deduplicated yet
    assert query(out, "SELECT count(*) AS n FROM stage_06_near_dedup")[0]["n"] == 0
    shown = [json.loads(line) for line in codecorpus("show", str(out), "--json", "--limit", "3").stdout.splitlines()]
    assert len(shown) == 3 and all(f["text"] for f in shown)
    assert served(out, "/", "/files", "/files?stage=01_ingest") == [200, 200, 200]


def test_a_run_whose_build_failed(tmp_path):
    pile = tmp_path / "broken.jsonl"
    pile.write_text('{"text": "not closed\n' + "not json at all\n")
    cfg = tmp_path / "broken.toml"
    cfg.write_text(f'[[sources]]\nname = "pile"\nkind = "pile"\npaths = ["{pile}"]\n\n[ray]\nnum_cpus = 1\n')
    out = tmp_path / "failed"
    proc = codecorpus("build", str(cfg), "--out", str(out), check=False)
    assert proc.returncode == 2 and "no records left after stage 01_ingest" in proc.stderr
    assert json.loads((out / "stats.json").read_text())["status"] == "failed"
    assert query(out, "SELECT stage, status, reason, count(*) AS n FROM rejects GROUP BY ALL") == [
        {"stage": "01_ingest", "status": "quarantined", "reason": "invalid_json", "n": 2}]
    listed = codecorpus("show", str(out), "--stage", "01_ingest", "--json").stdout.splitlines()
    assert [json.loads(line)["reason"] for line in listed] == ["invalid_json", "invalid_json"]
    assert served(out, "/", "/files?stage=01_ingest&reason=invalid_json") == [200, 200]
