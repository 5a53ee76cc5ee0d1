"""What a build costs besides its work: `codecorpus build` on a small input against Ray's own start
and stop, each in a fresh process, one after the other, best of --repeat.

Input: eight packages of this interpreter's standard library as scraped repositories (json, email,
http, urllib, xmlrpc, wsgiref, html, logging: ~70 files, 1.3 MB), the end-to-end tests' corpus.
Baseline: `python -c "import ray; ray.init(...); ray.shutdown()"` with the build's settings — the
floor any Ray build pays. Reported: both wall times; the build's steps as it printed them (the
per-file pass, dedup, tokenizer training and tokenize are its work, however small here); its fixed
cost (wall time less those steps) and that cost less Ray's own start and stop.

    .venv/bin/python -m bench.fixed_costs [--repeat 3] [--cpus 2]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PACKAGES = ("json", "email", "http", "urllib", "xmlrpc", "wsgiref", "html", "logging")
WORK_STEPS = ("per-file pass", "05_exact_dedup", "06_near_dedup", "tokenizer", "08_tokenize")
RAY_ALONE = ("import logging, sys, ray\n"
             "ray.init(address='local', num_cpus=int(sys.argv[1]), include_dashboard=False, logging_level=logging.ERROR,"
             " log_to_driver=False)\nray.shutdown()\n")


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"{cmd[:4]} failed: {proc.stderr[-2000:]}")
    return time.time() - started, proc.stdout


def step_seconds(printed: str) -> dict[str, float]:
    """Each step's seconds from the build's own lines (the per-file pass's summary line; a stage's books line)."""
    seconds = {}
    for line in printed.splitlines():
        name = line[2:17].strip()
        found = re.search(r"\(([\d.]+)s\)$", line) or re.search(r", ([\d.]+)s$", line)
        if name in WORK_STEPS and found:
            seconds[name] = float(found.group(1))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fixed-costs-"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for package in PACKAGES:
        shutil.copytree(stdlib / package, root / "repos" / f"python__{package}",
                        ignore=shutil.ignore_patterns("__pycache__", "test*"))
    config = root / "small.toml"
    config.write_text(f'[[sources]]\nname = "scraped"\npaths = ["{root / "repos"}"]\n\n[tokenizer]\nvocab_size = 2048\n'
                      f'sample_bytes = 4_000_000\n\n[packing]\nseq_length = 512\n\n[ray]\nnum_cpus = {args.cpus}\n')
    ray_runs, builds = [], []
    for _ in range(args.repeat):
        ray_runs.append(timed([sys.executable, "-c", RAY_ALONE, str(args.cpus)])[0])
        builds.append(timed([sys.executable, "-m", "codecorpus", "build", str(config), "--out", str(root / "run"), "--force"]))
    ray_alone = min(ray_runs)
    wall, printed = min(builds)
    steps = step_seconds(printed)
    fixed = wall - sum(steps.values())
    print(f"input: {len(PACKAGES)} standard-library packages as repositories; {args.cpus} CPUs; best of {args.repeat}")
    print(f"Ray alone (start + stop, fresh process)    {ray_alone:6.1f} s")
    print(f"codecorpus build                           {wall:6.1f} s   ({wall / ray_alone:.1f}× Ray alone)")
    for name in WORK_STEPS:
        print(f"  {name:<15} {steps.get(name, 0.0):6.1f} s")
    print(f"fixed cost (wall − the steps above)        {fixed:6.1f} s")
    print(f"fixed cost beyond Ray's own start and stop {fixed - ray_alone:6.1f} s")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
