"""MinHash signatures: the per-file pass's `band_rows` (one-permutation MinHash of a whole batch at once,
from the UTF-8 bytes, then band keys) against datasketch one document at a time — `update` per shingle
(the baseline) and `update_batch` per document, 256 permutations each, on the same shingles hashed
the same way. Both run on the same real documents (this interpreter's standard library) in the same
process. Prints MB/s and documents/s of each, and the ratio stage / baseline.

    .venv/bin/python -m bench.minhash [--files N]
"""
from __future__ import annotations

import argparse
import re
import sysconfig
import time
from pathlib import Path

import pyarrow as pa
import xxhash
from datasketch import MinHash

from codecorpus.stages.exact_dedup import add_content_hash
from codecorpus.stages.near_dedup import lsh_params
from codecorpus.stages.per_file import NearDedupSettings, band_rows
from codecorpus.stages.records import RECORD_SCHEMA

_TOKEN = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]+|[^\sA-Za-z0-9_\x80-\U0010ffff]")


def load(n: int) -> list[str]:
    paths = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))[:n]
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths]


def shingles(text: str, n: int) -> list[bytes]:
    tokens = _TOKEN.findall(text)
    return ["\0".join(tokens[i:i + n]).encode() for i in range(max(1, len(tokens) - n + 1))]


def baseline(texts: list[str], num_perm: int, ngram: int) -> None:
    for text in texts:
        m = MinHash(num_perm=num_perm, seed=1, hashfunc=xxhash.xxh32_intdigest)
        for g in shingles(text, ngram):
            m.update(g)


def baseline_batch(texts: list[str], num_perm: int, ngram: int) -> None:
    for text in texts:
        m = MinHash(num_perm=num_perm, seed=1, hashfunc=xxhash.xxh32_intdigest)
        m.update_batch(shingles(text, ngram))


def stage(texts: list[str], num_perm: int, ngram: int) -> None:
    bands, rows = lsh_params(0.7, num_perm)
    table = pa.Table.from_pylist([dict(id=str(i), source="b", repo="r", path=str(i), license=None, language="Python",
                                       text=t, size=len(t), rank_key=str(i), status="kept", reason=None)
                                  for i, t in enumerate(texts)], schema=RECORD_SCHEMA)
    band_rows(add_content_hash(table), NearDedupSettings(num_perm, ngram, 1, bands, rows))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=400)
    args = parser.parse_args()
    texts = load(args.files)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    results = {}
    for name, fn in (("datasketch loop (baseline)", baseline), ("datasketch update_batch", baseline_batch),
                     ("per_file.band_rows", stage)):
        t0 = time.perf_counter()
        fn(texts, 256, 5)
        seconds = time.perf_counter() - t0
        results[name] = seconds
        print(f"{name:<28} {len(texts) / seconds:8.1f} docs/s  {mb / seconds:6.2f} MB/s  ({len(texts)} docs, {mb:.1f} MB, 1 core)")
    base, batch, ours = results.values()
    print(f"ratio stage / baseline: {base / ours:.2f}x; stage / datasketch update_batch per file: {batch / ours:.2f}x")


if __name__ == "__main__":
    main()
