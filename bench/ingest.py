"""Readers' throughput (MB/s per core of uncompressed text) and the Pile reader's memory while a
multi-GB `.jsonl.zst` streams.

Text: this interpreter's standard library and site-packages source files (real code), written
here in each source's shape: a Pile `.jsonl.zst`, a CodeParrot github-code Parquet file, a folder
of repositories and a `.tar.gz` of one. Each reader runs in this one process (one core), producing
the pipeline's Arrow record tables; the figure is uncompressed text bytes per second. Then a Pile
file of --gb GB of text is streamed through the reader while the resident memory is sampled: peak
RSS at 10%, 50% and 100% of the stream shows whether memory stays flat. Target: Pile ≥ 50 MB/s.

    .venv/bin/python -m bench.ingest [--mb N] [--gb G]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from codecorpus.stages.read_archive import read_archive
from codecorpus.stages.read_codeparrot import read_parquet_row_group, row_groups
from codecorpus.stages.read_pile import read_pile_file
from codecorpus.stages.read_scraped import list_files, list_repositories, read_files

CAP = 1_000_000


def source_files(mb: float) -> list[Path]:
    files, total = [], 0
    for root in dict.fromkeys((sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])):
        for path in sorted(Path(root).rglob("*")):
            if path.suffix in (".py", ".c", ".h", ".js", ".pyi") and path.is_file() and 0 < path.stat().st_size < CAP:
                files.append(path)
                total += path.stat().st_size
                if total > mb * 1e6:
                    return files
    return files


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def text_bytes(tables) -> int:
    total = 0
    for table in tables:
        total += sum(len(t.encode()) for t in table.column("text").to_pylist() if t)
    return total


def timed(name: str, produce) -> float:
    start = time.perf_counter()
    nbytes = text_bytes(produce())
    seconds = time.perf_counter() - start
    rate = nbytes / seconds / 1e6
    print(f"  {name:<28} {nbytes / 1e6:8.1f} MB in {seconds:6.2f} s   {rate:7.1f} MB/s per core")
    return rate


def write_pile(path: Path, texts: list[str], target_bytes: float) -> int:
    """Cycle the texts into a .jsonl.zst of at least target_bytes of text; returns the text bytes."""
    written = 0
    with open(path, "wb") as fh, zstandard.ZstdCompressor(level=1).stream_writer(fh) as out:
        while written < target_bytes:
            for i, text in enumerate(texts):
                out.write((json.dumps({"text": text, "meta": {"pile_set_name": "Github" if i % 10 else "ArXiv"}}) + "\n").encode())
                written += len(text.encode())
                if written >= target_bytes:
                    break
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=150, help="text per reader for the throughput figures")
    parser.add_argument("--gb", type=float, default=2.0, help="text in the Pile file streamed for the memory figure")
    args = parser.parse_args()
    files = source_files(args.mb)
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    print(f"{len(files):,} real source files, {sum(len(t.encode()) for t in texts) / 1e6:.0f} MB")
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        pile = work / "pile.jsonl.zst"
        write_pile(pile, texts, args.mb * 1e6)
        table = pa.table({"repo_name": [f"{p.parent.name}" for p in files], "path": [p.name for p in files],
                          "code": texts, "license": ["mit"] * len(files)})
        pq.write_table(table, work / "github-code.parquet", row_group_size=2000)
        repos = work / "repos"
        for i, (path, text) in enumerate(zip(files, texts)):
            target = repos / f"repo{i // 200:04d}" / f"{i}_{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        with tarfile.open(work / "repo.tar.gz", "w:gz", compresslevel=1) as tf:
            tf.add(repos, arcname="repo-main")

        print("readers (one process):")
        rates = {
            "pile .jsonl.zst": timed("pile .jsonl.zst", lambda: read_pile_file("pile", str(pile), 0, ["Github", "ArXiv"], CAP)),
            "codeparrot parquet": timed("codeparrot parquet", lambda: (
                t for g in row_groups(str(work / "github-code.parquet"))
                for t in read_parquet_row_group("cp", str(work / "github-code.parquet"), g, 0, CAP))),
            "scraped folder": timed("scraped folder", lambda: (
                read_files(pa.Table.from_pylist(list_files(r))) for r in list_repositories("s", [str(repos)], 0, CAP)
                if not r["top_level_only"])),
            "scraped .tar.gz": timed("scraped .tar.gz", lambda: read_archive("s", str(work / "repo.tar.gz"), 0, CAP)),
        }

        print(f"streaming a {args.gb:.1f} GB (text) Pile file:")
        big = work / "big.jsonl.zst"
        total = write_pile(big, texts, args.gb * 1e9)
        print(f"  written: {total / 1e9:.2f} GB of text, {big.stat().st_size / 1e9:.2f} GB compressed")
        del texts, table
        marks, seen, peak, base = {0.1: None, 0.5: None, 1.0: None}, 0, 0.0, rss_mb()
        start = time.perf_counter()
        for batch in read_pile_file("pile", str(big), 0, ["Github", "ArXiv"], CAP):
            seen += sum(len(t.encode()) for t in batch.column("text").to_pylist() if t)
            peak = max(peak, rss_mb())
            for m in marks:
                if marks[m] is None and seen >= m * total * 0.999:
                    marks[m] = peak
        seconds = time.perf_counter() - start
        print(f"  {seen / 1e9:.2f} GB in {seconds:.1f} s ({seen / seconds / 1e6:.1f} MB/s); RSS before {base:.0f} MB, "
              + ", ".join(f"peak at {int(m * 100)}%: {v:.0f} MB" for m, v in marks.items() if v is not None))
        growth = (marks[1.0] or peak) - (marks[0.1] or peak)
        print(f"  RSS growth from 10% to 100% of the stream: {growth:+.0f} MB (flat when near 0)")
        print(f"Pile reader: {rates['pile .jsonl.zst']:.1f} MB/s per core vs target 50 MB/s "
              f"({rates['pile .jsonl.zst'] / 50:.2f}× the target)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
