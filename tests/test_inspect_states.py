"""`show`, `query` and `serve` read a failed run (every input quarantined, so no stage was ever
published) — when its rejects matter most. A run killed in the middle of its per-file pass is read
the same way in test_resume (the kill test's first kill)."""
from __future__ import annotations

import json

import pytest
from conftest import codecorpus, query, served

pytestmark = pytest.mark.slow


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
