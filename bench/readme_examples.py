"""Regenerate the README's example outputs from real runs of the current code.

Runs the demo build into a fresh folder, `codecorpus stats` on it, then the resume example: a second
build killed (SIGKILL) once the per-file pass has written some partitions, the same command again,
and once more (every step up to date). Each block between `<!-- example:NAME -->` and
`<!-- /example -->` in README.md is replaced by what those commands printed (long tables cut to the
lines the README keeps). Takes about three minutes on 2 cores.

    .venv/bin/python -m bench.readme_examples [--readme README.md] [--work runs/readme]
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

CONFIG = "configs/demo.toml"
STATS_KEEP = re.compile(r"dropped|quarantined|clusters|sizes:|\d×|Python|C\+\+|│ C |language|redacted|assigned_secret|MindSpore|codecorpus export")


def codecorpus(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"codecorpus {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def killed_during_the_per_file_pass(out: Path, after_partitions: int = 60) -> None:
    """Start a build and kill -9 it once `after_partitions` partitions of the per-file pass are written."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "build", CONFIG, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    partial = out / "stages" / "files.partial" / "kept"
    while proc.poll() is None:
        if partial.is_dir() and len(list(partial.glob("*.parquet"))) >= after_partitions:
            break
        time.sleep(0.2)
    import os
    os.killpg(proc.pid, signal.SIGKILL)     # the build and the Ray it started
    proc.wait()
    time.sleep(2)


def shorten(text: str, out: Path, display: str) -> str:
    return text.replace(str(out), display).rstrip("\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--work", default="runs/readme")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    demo, resumed = work / "demo", work / "resumed"
    blocks: dict[str, str] = {}

    build = shorten(codecorpus("build", CONFIG, "--out", str(demo)), demo, "runs/demo")
    stats = shorten(codecorpus("stats", str(demo)), demo, "runs/demo")
    kept = [line for line in stats.splitlines() if STATS_KEEP.search(line) and not line.startswith(("┏", "┡", "└"))]
    blocks["build"] = (f"$ codecorpus build {CONFIG} --out runs/demo\n{build.split(chr(10), 1)[1]}\n\n"
                       f"$ codecorpus stats runs/demo          (excerpts)\n" + "\n".join(kept))

    killed_during_the_per_file_pass(resumed)
    again = shorten(codecorpus("build", CONFIG, "--out", str(resumed)), resumed, "runs/demo").splitlines()[1:]
    third = shorten(codecorpus("build", CONFIG, "--out", str(resumed)), resumed, "runs/demo").splitlines()[1:]
    cmd = f"$ codecorpus build {CONFIG} --out runs/demo"
    blocks["resume"] = "\n".join([f"{cmd}       # kill -9 during the per-file pass", cmd, *again, cmd, *third])

    readme = Path(args.readme)
    text = readme.read_text()
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- example:{name} -->\n```\n).*?(\n```\n<!-- /example -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{readme}: no <!-- example:{name} --> block")
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    readme.write_text(text)
    print(f"{readme}: {', '.join(blocks)} regenerated from runs under {work}")


if __name__ == "__main__":
    main()
