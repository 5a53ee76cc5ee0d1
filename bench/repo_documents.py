"""Repository documents on real repositories no one here wrote: are imports read before the files
that use them, what does it cost, and does a huge repository stay within a worker's bounds?

1. Order. Test packages, chosen before any result was looked at (the resolvers were written
   against hand-made repositories and tuned on the stdlib's asyncio/email/json and site-packages'
   rich/click/jinja2/pydantic_core, none of which is here): per language, from bench/langid_data's
   sources (Debian source packages, npm, PyPI sdists), each package one repository (every file of it,
   C headers included). One build with
   `packing.documents = "repo"`, dependency order, and a document bound no repository reaches, then
   per language from stages/09_documents: import statements and the share resolved to a file of the
   repository, dependency edges, the share whose imported file comes before the importing file in
   its document (all edges, and edges outside an import cycle), and cycles broken.
2. Time. The demo (configs/demo.toml) built with file documents and with repository documents
   (one after the other, same machine): wall time and the ratio.
3. Memory. The standard library as ONE repository (~2,000 files, far above a 32,768-token
   document bound), built with repository documents, then its documents and pack steps run again
   (a new bound) with file documents' pack as the baseline: the peak resident memory of every Ray
   worker process during those steps, sampled every 50 ms.

    .venv/bin/python -m bench.repo_documents [--skip-demo] [--skip-memory]
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pyarrow.dataset as pads

from bench.langid_data import fetch, members

ROOT = Path(__file__).resolve().parents[1]
TEST_PACKAGES = {   # the first choice's jq, commons-lang3 and rust-nom sources are not on the Debian mirror: replaced
    "Python": [("sdist", "requests==2.32.3"), ("sdist", "flask==3.0.3")],
    "JavaScript/TypeScript": [("npm", "rxjs@7.8.2"), ("npm", "zod@3.23.8"), ("npm", "moment@2.30.1")],
    "Java": [("src", "jsoup"), ("src", "commons-io")],
    "Scala": [("src", "json4s")],
    "C/C++": [("src", "libuv1"), ("src", "leveldb"), ("src", "re2")],
    "C#": [("src", "newtonsoft-json")],
    "Go": [("src", "golang-github-spf13-cobra"), ("src", "golang-github-gin-gonic-gin")],
    "Rust": [("src", "rust-clap"), ("deb", "librust-nom-dev")],
    "PHP": [("src", "composer"), ("deb", "php-monolog")],
}
FAMILY = {"JavaScript": "JavaScript/TypeScript", "TypeScript": "JavaScript/TypeScript", "C": "C/C++", "C++": "C/C++"}


def codecorpus(*args: str) -> float:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "codecorpus", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    return time.time() - t0


def write_repositories(root: Path) -> None:
    """Each test package as a folder of its files (the archive's top folder dropped)."""
    for packages in TEST_PACKAGES.values():
        fetch(packages)
        for kind, name in packages:
            folder = root / name.split("@")[0].split("==")[0].replace("/", "_")
            for path, data in members(kind, name, every_file=True):
                rel = path.split("/", 1)[1] if kind in ("src", "npm", "sdist") and "/" in path else path.lstrip("/")
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)


def order_figures(run: Path) -> None:
    docs = pads.dataset(run / "stages" / "09_documents").to_table().to_pylist()
    where = {d["id"]: (d["repo"], d["document"], d["position"]) for d in docs}
    cycle = {d["id"]: d["cycle"] for d in docs}
    rows: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    for d in docs:
        r = rows[FAMILY.get(d["language"], d["language"])]
        r["files"] += 1
        r["imports"] += d["references"]
        r["resolved"] += d["resolved"]
        r["cycles broken"] += d["broke_cycle"]
        for t in d["depends_on"]:
            ahead = where[t] < where[d["id"]]
            r["edges"] += 1
            r["before"] += ahead
            if d["cycle"] < 0 or cycle[t] != d["cycle"]:
                r["edges outside cycles"] += 1
                r["before outside"] += ahead
    total = defaultdict(int)
    print(f"\n{'language':<24}{'files':>7}{'imports':>9}{'resolved':>10}{'edges':>8}{'before':>8}{'outside cycles':>16}"
          f"{'before':>8}{'cycles broken':>15}")
    for lang, r in sorted(rows.items()) + [("all", total)]:
        if lang != "all":
            for k, v in r.items():
                total[k] += v
        print(f"{lang:<24}{r['files']:>7,}{r['imports']:>9,}{r['resolved'] / max(1, r['imports']):>10.3f}{r['edges']:>8,}"
              f"{r['before'] / max(1, r['edges']):>8.3f}{r['edges outside cycles']:>16,}"
              f"{r['before outside'] / max(1, r['edges outside cycles']):>8.3f}{r['cycles broken']:>15,}")


class PeakWorkerMemory:
    """The largest resident set of any Ray worker process under a command, sampled every 50 ms."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    def watch(self, pid: int) -> None:
        def loop():
            parent = psutil.Process(pid)
            while not self._stop.is_set():
                try:
                    for child in parent.children(recursive=True):
                        try:
                            if child.name().startswith("ray::") or "default_worker" in " ".join(child.cmdline()):
                                self.peak = max(self.peak, child.memory_info().rss)
                        except psutil.Error:
                            pass
                except psutil.Error:
                    return
                time.sleep(0.05)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measured(*args: str) -> tuple[float, int]:
    proc = subprocess.Popen([sys.executable, "-m", "codecorpus", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)
    mem = PeakWorkerMemory()
    t0 = time.time()
    mem.watch(proc.pid)
    out, _ = proc.communicate()
    mem.stop()
    if proc.returncode:
        raise SystemExit(out[-3000:])
    return time.time() - t0, mem.peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        repos = tmp / "repos"
        write_repositories(repos)
        print(f"test repositories: {', '.join(sorted(p.name for p in repos.iterdir()))}")
        cfg = tmp / "order.toml"
        cfg.write_text(f'[[sources]]\nname = "test"\npaths = ["{repos}"]\n\n[tokenizer]\nvocab_size = 8192\n'
                       f'sample_bytes = 8_000_000\n\n[packing]\ndocuments = "repo"\nmax_document_tokens = 1_000_000_000\n')
        seconds = codecorpus("build", str(cfg), "--out", str(tmp / "order"))
        found = json.loads((tmp / "order" / "manifest.json").read_text())["documents"]
        print(f"build {seconds:.0f}s: {found}")
        order_figures(tmp / "order")

        if not args.skip_demo:
            demo = (ROOT / "configs" / "demo.toml").read_text()
            times = {}
            for kind in ("file", "repo"):
                path = tmp / f"demo-{kind}.toml"
                path.write_text(demo.replace("[packing]\n", f'[packing]\ndocuments = "{kind}"\n'))
                times[kind] = codecorpus("build", str(path), "--out", str(tmp / f"demo-{kind}"))
            print(f"\ndemo build: file documents {times['file']:.1f}s, repository documents {times['repo']:.1f}s "
                  f"(×{times['repo'] / times['file']:.2f})")

        if not args.skip_memory:
            big = tmp / "one-repo"
            shutil.copytree(sysconfig.get_paths()["stdlib"], big / "stdlib",
                            ignore=shutil.ignore_patterns("__pycache__", "site-packages", "dist-packages", "test", "tests"))
            base = (f'[[sources]]\nname = "big"\npaths = ["{big}"]\n\n[tokenizer]\nvocab_size = 8192\nsample_bytes = 8_000_000\n\n'
                    f'[shards]\ntarget_bytes = 8_388_608\n\n[packing]\n')
            peaks = {}
            for kind, bound in (("repo", 32_768), ("repo", 32_000), ("file", 32_768), ("file", 32_000)):
                path = tmp / "big.toml"
                path.write_text(base + f'documents = "{kind}"\nmax_document_tokens = {bound}\n')
                seconds, peak = measured("build", str(path), "--out", str(tmp / f"big-{kind}"))
                peaks[(kind, bound)] = (seconds, peak)
            run = tmp / "big-repo"
            docs = pads.dataset(run / "stages" / "09_documents").to_table(columns=["tokens", "document"])
            tokens = sum(docs.column("tokens").to_pylist())
            print(f"\none repository of {docs.num_rows:,} files, {tokens:,} tokens, cut into "
                  f"{max(docs.column('document').to_pylist()) + 1:,} documents of ≤ 32,000 tokens")
            for kind in ("repo", "file"):
                seconds, peak = peaks[(kind, 32_000)]
                print(f"  {kind} documents: documents + pack steps again {seconds:.1f}s, peak Ray worker RSS {peak / 2**20:,.0f} MiB "
                      f"(whole build: {peaks[(kind, 32_768)][1] / 2**20:,.0f} MiB)")


if __name__ == "__main__":
    main()
