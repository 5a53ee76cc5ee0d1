import os
import subprocess
import sys
from pathlib import Path

import pytest

from codecorpus.pipeline.config import ConfigError, load_config

GOOD = """
[[sources]]
name = "code"
paths = ["{path}"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text.format(path=tmp_path))
    return p


def test_defaults_follow_the_recipes(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert (cfg.filters.min_bytes, cfg.filters.max_bytes) == (1024, 102400)
    assert (cfg.filters.max_line_length, cfg.filters.max_mean_line_length, cfg.filters.min_alnum_fraction) == (1000, 100, 0.25)
    assert (cfg.dedup.near.num_perm, cfg.dedup.near.ngram, cfg.dedup.near.threshold) == (256, 5, 0.7)
    assert cfg.tokenizer.vocab_size == 52224 and cfg.packing.seq_length == 2048
    assert len(cfg.languages.include) == 23


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD + "[filters]\nmax_line_lenght = 10\n"))
    msg = str(err.value)
    assert "filters.max_line_lenght" in msg and "max_line_length" in msg and "\n" not in msg


def test_bad_value_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"filters\.min_alnum_fraction"):
        load_config(write(tmp_path, GOOD + "[filters]\nmin_alnum_fraction = 2\n"))


def test_bad_source_kind_lists_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"sources\.0\.kind.*'scraped'"):
        load_config(write(tmp_path, GOOD.replace('name = "code"', 'name = "code"\nkind = "ftp"')))


def test_unknown_language_lists_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"languages\.include.*Klingon.*Python"):
        load_config(write(tmp_path, GOOD + '[languages]\ninclude = ["Python", "Klingon"]\n'))


def test_missing_input_folder_fails_before_work(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(write(tmp_path, GOOD.replace("{path}", "{path}/nope")))


def test_cli_reports_a_config_error_in_one_line(tmp_path):
    cfg = write(tmp_path, GOOD + "[dedup.near]\nthreshold = 1.5\n")
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "build", str(cfg), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "dedup.near.threshold" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_stats_on_a_folder_that_is_not_a_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "codecorpus", "stats", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a codecorpus run" in proc.stderr


def test_tokenizer_sample_is_language_balanced():
    from codecorpus.pipeline.tokens import sample_fractions
    fractions = sample_fractions({"Python": 90_000_000, "C++": 9_000_000, "C": 1_000_000}, 20_000_000, 0.5)
    sampled = {"Python": 90e6 * fractions["Python"], "C++": 9e6 * fractions["C++"], "C": 1e6 * fractions["C"]}
    assert sampled["Python"] <= 10_000_000 + 1 and fractions["C"] == fractions["C++"] == 1.0
    assert sum(sampled.values()) <= 20_000_000 + 1


def test_codegeex_tokenizer_needs_its_files(tmp_path):
    with pytest.raises(ConfigError, match=r"tokenizer.*vocab_file"):
        load_config(write(tmp_path, GOOD + '[tokenizer]\nkind = "codegeex"\n'))


def test_a_build_starts_its_own_ray_even_when_a_stale_cluster_is_recorded(tmp_path):
    """`ray start` and test clusters record their address in <ray tmp>/ray_current_cluster and Ray joins
    whatever that file names. Without --address a build starts its own local Ray with the configured CPUs
    and Arrow's allocator in its workers returning freed pages."""
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))   # short: Ray's socket paths live under it
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("192.0.2.2:52227")   # a cluster long gone
    cfg = write(tmp_path, GOOD + "\n[ray]\nnum_cpus = 1\n")
    script = ("import os, sys, ray\nfrom codecorpus.pipeline.ray_runtime import init_ray\nfrom codecorpus.pipeline.config import load_config\n"
              "init_ray(load_config(sys.argv[1]), None)\nprint(int(ray.cluster_resources()['CPU']))\n"
              "print(ray.get(ray.remote(lambda: os.environ.get('MIMALLOC_PURGE_DECOMMITS')).remote()))\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
    proc = subprocess.run([sys.executable, "-c", script, str(cfg)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-2:] == ["1", "1"]
