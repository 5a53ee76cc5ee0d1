"""build → stats → train on a small real corpus (stdlib packages as scraped repositories), on real Ray."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import BUILD, STDLIB, TINY_MODEL, build, codecorpus, codecorpus_in_a_terminal
from codecorpus.stages.pack import read_shard
from codecorpus.stages.summary import books_balance
from codecorpus.tokenizer.bpe import load_tokenizer

pytestmark = pytest.mark.slow

TRAIN = TINY_MODEL + """
[train]
steps = 8
batch_size = 2
learning_rate = 1e-3
warmup_steps = 2
decay_steps = 20
log_every = 1
out_dir = "{out}"
"""


@pytest.fixture(scope="module")
def run_one_cpu(corpus):
    """One CPU, small Ray blocks, and near-dup components by distributed large-star/small-star rounds
    instead of union-find."""
    return build(*corpus, "run1", cpus=1, extra='target_block_bytes = 65536\n[dedup.near]\ncomponents = "distributed"\n')


def test_the_terminal_shows_progress_and_no_ray_line(run):
    """The shared build ran in a pseudo-terminal: each partitioned step had a live progress line
    (partitions done of all, files, MB, rate, ETA), the books' lines stayed, and none of Ray's own
    lines reached the terminal (they are in the run's build.log)."""
    import re
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", (run.parent / "run2.terminal.txt").read_text())
    lines = [line.strip() for line in re.split(r"[\r\n]+", shown) if line.strip()]
    progress = [l for l in lines if re.search(r"\d+/\d+ [\d,]+ files [\d.,]+ MB [\d.,]+ MB/s .*ETA", l)]
    assert {l.split()[0] for l in progress} >= {"per-file", "08_tokenize"}, lines[:40]
    assert any(l.startswith("06_near_dedup") and "kept" in l for l in lines)
    assert lines[-1].startswith("done:")
    ray_line = re.compile(r"\b(INFO|WARNING|WARN|ERROR)\b|raylet|[Tt]oken authentication|Ray instance|Dataset|"
                          r"Progress bars|\(pid=|ray\.|worker", re.I)
    assert [l for l in lines if ray_line.search(l)] == []
    logged = (run / "build.log").read_text()
    assert "Ray" in logged and ray_line.search(logged), logged[:2000]      # where Ray's own lines went


def test_shards_load_and_decode(run):
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] == 2048 and manifest["row_length"] == 513
    assert len(manifest["shards"]) >= 2
    tok = load_tokenizer(run / "tokenizer" / "tokenizer.json")
    total_rows = 0
    for entry in manifest["shards"]:
        table = read_shard(run / "shards" / entry["shard"])
        rows = np.stack(table.column("input_ids").to_numpy(zero_copy_only=False))
        assert rows.shape == (entry["rows"], 513) and rows.max() < 2048
        total_rows += len(rows)
    assert total_rows == manifest["rows"]
    text = tok.decode(rows.reshape(-1).tolist(), skip_special_tokens=False)
    assert "# language: Python\n" in text and "<|endoftext|>" in text


def test_ray_data_reads_the_shards(run):
    """pipeline.shards.read_shards: the shards as a Ray Dataset, the same rows as pyarrow reads."""
    script = (
        "import sys, numpy as np, ray\n"
        "from codecorpus.pipeline.shards import read_shards\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False)\n"
        "rows = np.concatenate([b['input_ids'] for b in read_shards(sys.argv[1]).iter_batches(batch_size=256, batch_format='numpy')])\n"
        "np.save(sys.argv[2], rows)\n")
    out = run / "ray_rows.npy"
    subprocess.run([sys.executable, "-c", script, str(run), str(out)], check=True, timeout=300)
    manifest = json.loads((run / "manifest.json").read_text())
    expected = np.concatenate([np.stack(read_shard(run / "shards" / s["shard"]).column("input_ids").to_numpy(zero_copy_only=False))
                               for s in manifest["shards"]])
    got = np.load(out)   # Ray Data may yield blocks out of order: compare the rows as a multiset
    assert got.shape == expected.shape and sorted(map(bytes, got)) == sorted(map(bytes, expected))


def test_books_balance_and_duplicates_are_removed(run):
    out = json.loads(codecorpus("stats", str(run), "--json").stdout)
    stages = out["stats"]["stages"]
    assert list(stages) == ["01_ingest", "02_language", "03_filter", "04_clean", "05_exact_dedup", "06_near_dedup", "07_tag",
                            "08_tokenize"]
    assert all(books_balance(b) for b in stages.values())
    fork = [p for p in (STDLIB / "json").glob("*.py") if 1024 <= p.stat().st_size <= 102400]
    assert stages["05_exact_dedup"]["dropped"].get("exact_duplicate", 0) >= len(fork) - 1   # the fork's unchanged files
    assert stages["06_near_dedup"]["dropped"].get("near_duplicate", 0) >= 1                # its edited decoder.py
    for stage, b in stages.items():
        nxt = list(stages.values())[list(stages).index(stage) + 1] if stage != "08_tokenize" else None
        if nxt:
            assert nxt["in"] == b["kept"]
    table = codecorpus("stats", str(run)).stdout
    assert "06_near_dedup" in table and "NO" not in table
    removed = stages["05_exact_dedup"]["in"] - stages["05_exact_dedup"]["kept"]
    assert "Duplicates removed (files, % of those in)" in table
    assert re.search(rf"source scraped\s*│\s*{removed:,} \({100 * removed / stages['05_exact_dedup']['in']:.1f}%\)", table)


def test_train_from_the_shards(run, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TRAIN.format(out=tmp_path / "ckpt"))
    out = codecorpus("train", str(cfg), "--data", str(run)).stdout
    losses = [float(line.split("loss ")[1].split()[0]) for line in out.splitlines() if line.startswith("step")]
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert (tmp_path / "ckpt" / "rank_0" / "step_0000008.ckpt").is_file()


def test_same_bytes_with_one_cpu(run, run_one_cpu):
    shas = [json.loads((r / "manifest.json").read_text())["shards"] for r in (run, run_one_cpu)]
    assert shas[0] == shas[1]
    clusters = [json.loads((r / "stats.json").read_text())["stages"]["06_near_dedup"]["clusters"] for r in (run, run_one_cpu)]
    assert clusters[0] == clusters[1] and clusters[0]["removed"] > 0


def test_every_near_duplicate_removed_is_next_to_a_file_kept(run):
    """The clusters name, for each removed near duplicate, a file that stayed and their estimated
    similarity (≥ the threshold); the exact Jaccard of their shingles agrees; stats shows the histogram."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from codecorpus.stages.minhash import jaccard, shingle_sets

    removed = pads.dataset(run / "stages" / "06_near_dedup.clusters", format="parquet").to_table()
    near = pads.dataset(run / "stages" / "06_near_dedup", format="parquet").to_table(columns=["id", "status", "reason"])
    status = dict(zip(near.column("id").to_pylist(), near.column("status").to_pylist()))
    assert removed.num_rows == sum(r == "near_duplicate" for r in near.column("reason").to_pylist()) > 0
    assert all(status[k] == "kept" for k in removed.column("survivor_id").to_pylist())
    assert pc.min(removed.column("similarity")).as_py() >= 0.7
    ids = set(removed.column("id").to_pylist()) | set(removed.column("survivor_id").to_pylist())
    kept = pads.dataset(run / "stages" / "files" / "kept", format="parquet").to_table(
        columns=["id", "text"], filter=pc.field("id").isin(pa.array(sorted(ids))))
    text = dict(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist()))
    pairs = list(zip(removed.column("id").to_pylist(), removed.column("survivor_id").to_pylist(),
                     removed.column("similarity").to_pylist()))
    errors = [jaccard(*shingle_sets([text[a], text[b]], 5)) - s for a, b, s in pairs]
    assert max(abs(e) for e in errors) < 0.12 and abs(np.mean(errors)) < 0.02
    shown = codecorpus("stats", str(run)).stdout
    assert "Removed files by their estimated Jaccard similarity to the kept file" in shown
    assert sum(int(n) for n in re.findall(r"0\.\d\d–\d\.\d\d\s*│\s*([\d,]+)", shown.replace(",", ""))) == removed.num_rows


def test_stats_json_html_and_compare(corpus, run, run_one_cpu):
    root, _ = corpus
    stats = json.loads(codecorpus("stats", str(run), "--json").stdout)["stats"]
    hist = stats["stages"]["03_filter"]["histograms"]
    assert sum(hist["size"]["in"]) == stats["stages"]["03_filter"]["in"]
    assert sum(hist["size"]["kept"]) == stats["stages"]["03_filter"]["kept"]
    assert stats["stages"]["06_near_dedup"]["clusters"]["clusters"] >= 1

    page = root / "report.html"
    codecorpus("stats", str(run), "--html", str(page))
    assert page.stat().st_size > 10_000 and "data:image/png;base64," in page.read_text()

    other = run_one_cpu
    diff = json.loads(codecorpus("stats", str(run), "--compare", str(other), "--json").stdout)
    assert diff["stages"]["07_tag"]["kept"][0] == diff["stages"]["07_tag"]["kept"][1]
    assert "Δ" in codecorpus("stats", str(run), "--compare", str(other)).stdout


def test_html_renders_in_headless_chromium(corpus, run):
    import os
    import shutil
    root, _ = corpus
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        assert not os.environ.get("CI"), "CI installs Debian's chromium (.ci/run); it is missing"
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = root / "report-chromium.html"
    codecorpus("stats", str(run), "--html", str(page))
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={root / 'chrome-profile'}", "--virtual-time-budget=5000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    marker = proc.stdout.split('data-selfcheck="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
    check = json.loads(marker)
    assert check["images"] >= 5 and check["loaded"] == check["images"] and check["errors"] == []


def test_stats_lose_no_figure_at_80_columns_or_in_a_pipe(run):
    """Every count of the funnel and every cluster size is printed whole, in a terminal of 80 columns
    (a table too wide is continued as a second table) and in a pipe."""
    import re
    stats = json.loads((run / "stats.json").read_text())["stages"]
    terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", codecorpus_in_a_terminal("stats", str(run), columns=80))
    for shown in (terminal, codecorpus("stats", str(run)).stdout):
        assert "…" not in shown
        cells = {c.strip() for line in shown.splitlines() for c in re.split(r"[│┃]", line)}
        for books in stats.values():
            for key in ("in", "kept", "in_bytes", "kept_bytes"):
                assert f"{books[key]:,}" in cells, (key, books[key])
        sizes = stats["06_near_dedup"]["clusters"]["size_histogram"]
        assert all(f"{k}×{v:,}" in shown.split() or f"{k}×{v:,}," in shown.split() for k, v in sizes.items())
    assert max(len(line) for line in terminal.splitlines()) <= 80


def test_stats_of_a_build_still_running(run, tmp_path):
    stats = json.loads((run / "stats.json").read_text())
    stats["status"] = "running"
    stats["stages"] = dict(list(stats["stages"].items())[:3])  # as if the build were at its fourth stage
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "stats.json").write_text(json.dumps(stats))
    out = codecorpus("stats", str(partial)).stdout
    assert "running" in out and "03_filter" in out and "06_near_dedup" not in out


def _stop_processes_under(temp_dir: str) -> None:
    """Kill the processes of the Ray cluster whose files live under `temp_dir` (and their children)."""
    import psutil
    ours = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in proc.info["cmdline"] or []):
            ours += [proc, *proc.children(recursive=True)]
    for proc in ours:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(ours, timeout=30)


def test_build_joins_a_running_ray_cluster(corpus, run, tmp_path):
    """`ray start --head` by hand, then `codecorpus build --address`: the same shards as a local Ray."""
    import os
    import socket
    import sys as _sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import tempfile
    ray_bin = str(Path(_sys.executable).with_name("ray"))
    # Ray ≥ 2.59 authenticates with a token; the cluster and the build must agree on the mode (README),
    # and this cluster has a token of its own (a fresh machine has no ~/.ray/auth_token)
    import secrets
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")      # short: Ray's socket paths live under it
    start = subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                            "--disable-usage-stats", f"--temp-dir={temp_dir}"], capture_output=True, text=True, env=env, timeout=300)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        root, repos = corpus
        cfg = root / "cluster.toml"
        cfg.write_text(BUILD.format(repos=repos, cpus=1))   # num_cpus is ignored when joining a cluster
        proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(cfg), "--out", str(tmp_path / "cluster-run"),
                               "--address", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    finally:
        _stop_processes_under(temp_dir)      # this test's cluster only: never `ray stop`, which stops every Ray here
    shards = [json.loads((r / "manifest.json").read_text())["shards"] for r in (run, tmp_path / "cluster-run")]
    assert shards[0] == shards[1]


def test_export_mindrecord_reads_back_in_mindspore(run, tmp_path):
    out = codecorpus("export", str(run), "--format", "mindrecord", "--out", str(tmp_path / "mr")).stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert f"{manifest['rows']:,} rows" in out
    import mindspore.dataset as msds
    ds = msds.MindDataset(str(tmp_path / "mr" / "corpus.mindrecord"), columns_list=["input_ids"], shuffle=False)
    rows = [r["input_ids"] for r in ds.create_dict_iterator(output_numpy=True)]
    assert len(rows) == manifest["rows"] and all(r.dtype == np.int32 and r.shape == (513,) for r in rows)
    first = read_shard(run / "shards" / manifest["shards"][0]["shard"]).column("input_ids")[0].values.to_numpy()
    assert np.array_equal(rows[0], first.astype(np.int32))


def test_build_with_codegeex_tokenizer(corpus, tmp_path):
    from test_tokenizer import gpt2_style_files
    root, repos = corpus
    vocab_file, merges_file, base = gpt2_style_files(tmp_path)
    cfg = root / "codegeex.toml"
    cfg.write_text(BUILD.format(repos=repos, cpus=2).replace(
        "[tokenizer]\nvocab_size = 2048", f'[tokenizer]\nkind = "codegeex"\nvocab_file = "{vocab_file}"\nmerges_file = "{merges_file}"'))
    codecorpus("build", str(cfg), "--out", str(tmp_path / "cg"))
    manifest = json.loads((tmp_path / "cg" / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] == base + 143 + 6 and manifest["tokenizer"]["eod_id"] == base - 1   # + 6 special
    rows = np.stack(read_shard(tmp_path / "cg" / "shards" / manifest["shards"][0]["shard"]).column("input_ids")
                    .to_numpy(zero_copy_only=False))
    assert rows.max() < base + 143 and np.isin(rows, [base + 7 + n for n in range(2, 11)]).any()  # whitespace-run ids
    tok = load_tokenizer(tmp_path / "cg" / "tokenizer" / "tokenizer.json")
    assert "# language: Python\n" in tok.decode(rows[0].tolist())


def test_one_build_from_pile_codeparrot_and_archives(mixed_run):
    """All three kinds of source in one build: the books balance per source at every stage."""
    stats = json.loads((mixed_run / "stats.json").read_text())
    ingest = stats["stages"]["01_ingest"]
    assert set(ingest["by_source"]) == {"github", "pile", "codeparrot"}
    for stage in stats["stages"].values():
        assert books_balance(stage)
        for per_source in stage["by_source"].values():
            assert per_source["in"] == per_source["kept"] + per_source["dropped"] + per_source["quarantined"]
    assert 20 < ingest["dropped"]["pile_set:Enron Emails"] <= 40       # 20 in the whole file, some in the cut one
    assert ingest["quarantined"]["truncated_or_corrupt"] == 1
    assert stats["stages"]["03_filter"]["dropped"]["license_not_allowed:gpl-3.0"] > 0
    langs = stats["stages"]["02_language"]["by_source"]["pile"]
    assert langs["kept"] > 0.9 * (ingest["by_source"]["pile"]["kept"])       # path-less Python identified from content
    manifest = json.loads((mixed_run / "manifest.json").read_text())
    assert set(manifest["tokens"]["by_source"]) == {"github", "pile", "codeparrot"}
    assert stats["stages"]["06_near_dedup"]["dropped"]["near_duplicate"] >= 1          # the fork in clean.json.gz
    clean = stats["stages"]["04_clean"]
    assert clean["dropped"]["benchmark:HumanEval/HumanEval/7"] >= 2          # decoder.py and its fork's copy
    assert clean["redactions"]["aws_access_key_id"] == 1 and clean["redactions"]["email"] >= 1
    shards_text = load_tokenizer(mixed_run / "tokenizer" / "tokenizer.json").decode(
        np.concatenate([np.stack(read_shard(mixed_run / "shards" / s["shard"]).column("input_ids").to_numpy(zero_copy_only=False)).ravel()
                        for s in manifest["shards"]]).tolist())
    assert "AKIA2E0A8F3B244C9986" not in shards_text and "ops.lead@acme-robotics.io" not in shards_text
    assert "<KEY>" in shards_text and "def py_scanstring" not in shards_text
    # the quality rules ran inside the build: signals on every file they judged, kept or dropped, and SQL filters by them
    run = str(mixed_run)
    judged = json.loads(codecorpus("query", run, "SELECT count(*) AS n, count(quality.content_language) AS c FROM files "
                                   "WHERE quality IS NOT NULL", "--json").stdout)
    assert judged["n"] == stats["stages"]["04_clean"]["kept"] and judged["c"] > 0.5 * judged["n"]   # the Pile's have no path
    rows = [json.loads(line) for line in codecorpus("query", run, "SELECT path, reason, quality.python_parses AS parses FROM rejects "
                                                    "WHERE stage = '03_filter' AND quality IS NOT NULL", "--json").stdout.splitlines()]
    assert rows and all(r["reason"] not in ("too_small", "too_large") for r in rows)      # judged: passed CodeGeeX's filters
    shown = [json.loads(line) for line in codecorpus("show", run, "--where", "quality.alpha_share > 0.6", "--limit", "0", "--json")
             .stdout.splitlines()]
    assert shown and all(r["quality"]["alpha_share"] > 0.6 for r in shown)
    bad = codecorpus("show", run, "--where", "quality.no_such_signal > 1", check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--where" in bad.stderr
