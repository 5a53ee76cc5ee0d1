"""Near-dedup quality: precision and recall of MinHash LSH + connected components against exact Jaccard.

Corpus (built here, ≥ 20k real files): this interpreter's standard library and site-packages, plus
two versions of the same libraries — PyPI wheels (`pip download`) and npm tarballs (`npm pack`), read
in memory — which give real near-duplicates. Files go through the default filters first, as in a
build. The stage's own functions run: batch signatures, band keys (bands × rows from datasketch's
rule), buckets, every candidate a duplicate, union-find components.

Ground truth: exact Jaccard on the same shingle sets, for every LSH candidate pair, for every pair a
broader LSH net finds (threshold − 0.25), and for a random sample of other pairs. Reported:
precision of the candidate pairs (Jaccard ≥ threshold); recall = share of pairs with Jaccard ≥
threshold + 0.05 that end up in one cluster (target ≥ 0.95); share of pairs with Jaccard ≤
threshold − 0.1 left apart (target ≥ 90%).

    .venv/bin/python -m bench.dedup_quality [--threshold T] [--random-pairs N]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.config import FiltersConfig
from stages.filters import build_filters, first_reason
from stages.langid import language_of_path
from stages.minhash import band_keys, jaccard, shingle_sets, signatures
from stages.near_dedup import cluster_survivors, lsh_params

import pyarrow as pa

CACHE = Path.home() / ".cache" / "codecorpus-bench" / "dedup"
WHEELS = ["django==4.2.16", "django==5.1.3", "sqlalchemy==1.4.54", "sqlalchemy==2.0.36", "sympy==1.12", "sympy==1.13.3"]
NPM = ["lodash@4.17.15", "lodash@4.17.21", "rxjs@6.6.7", "rxjs@7.8.1", "typescript@4.9.5", "typescript@5.4.5"]
KEEP = build_filters(FiltersConfig())


def fetch() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    for spec in WHEELS:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(CACHE), spec],
                       check=False)
    subprocess.run(["npm", "pack", "--silent", *NPM], cwd=CACHE, check=False)


def corpus() -> tuple[list[str], list[str]]:
    names, texts = [], []

    def add(name: str, data: bytes) -> None:
        if not language_of_path(name, None) and not name.endswith(".h"):
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return
        if first_reason(KEEP, text) is None:
            names.append(name)
            texts.append(text)

    for root in dict.fromkeys((sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])):
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= 102_400:
                add(str(path), path.read_bytes())
    for wheel in sorted(CACHE.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.file_size <= 102_400:
                    add(f"{wheel.name}!{info.filename}", zf.read(info))
    for tgz in sorted(CACHE.glob("*.tgz")):
        with tarfile.open(tgz) as tf:
            for info in tf.getmembers():
                if info.isreg() and info.size <= 102_400:
                    add(f"{tgz.name}!{info.name}", tf.extractfile(info).read())
    return names, texts


def candidate_pairs(sigs: np.ndarray, present: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    buckets: dict[int, list[int]] = defaultdict(list)
    keys = band_keys(sigs, bands, rows)
    for i in np.flatnonzero(present):
        for key in keys[i].tolist():
            buckets[key].append(int(i))
    pairs = set()
    for members in buckets.values():
        if len(members) > 1:
            pairs.update((a, b) for k, b in enumerate(members) for a in members[:k])
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--num-perm", type=int, default=256)
    parser.add_argument("--random-pairs", type=int, default=200_000)
    parser.add_argument("--no-fetch", action="store_true")
    args = parser.parse_args()
    if not args.no_fetch:
        fetch()
    names, texts = corpus()
    print(f"corpus: {len(texts):,} real files after the default filters")
    start = time.perf_counter()
    sigs, present = signatures(texts, args.num_perm, 5, 1)
    bands, rows = lsh_params(args.threshold, args.num_perm)
    candidates = candidate_pairs(sigs, present, bands, rows)
    print(f"LSH {bands} bands × {rows} rows: {len(candidates):,} candidate pairs ({time.perf_counter() - start:.0f} s)")

    sets = shingle_sets(texts, 5)
    wide_bands, wide_rows = lsh_params(max(0.2, args.threshold - 0.25), args.num_perm)
    wide = candidate_pairs(sigs, present, wide_bands, wide_rows) - candidates
    rng = np.random.default_rng(0)
    random_pairs = {tuple(sorted(p)) for p in rng.integers(0, len(texts), size=(args.random_pairs, 2)).tolist() if p[0] != p[1]}
    judged = {p: jaccard(sets[p[0]], sets[p[1]]) for p in candidates | wide | random_pairs}
    print(f"pairs judged by exact Jaccard: {len(judged):,} (LSH candidates {len(candidates):,}, a wider LSH net "
          f"(threshold {args.threshold - 0.25:.2f}) {len(wide):,} more, random {len(random_pairs):,})")
    precision = np.mean([judged[p] >= args.threshold for p in candidates]) if candidates else float("nan")
    print(f"precision of the candidate pairs (Jaccard ≥ {args.threshold}): {precision:.3f}")

    for mode, edge_pairs in (("every candidate a duplicate (default)", candidates),
                             ("exact-Jaccard check (dedup.near.exact_jaccard)", {p for p in candidates if judged[p] >= args.threshold})):
        edges = pa.table({"id": [str(a) for a, _ in edge_pairs], "rank_key": [f"{a:08d}" for a, _ in edge_pairs],
                          "other_id": [str(b) for _, b in edge_pairs], "other_rank_key": [f"{b:08d}" for _, b in edge_pairs]})
        removed = cluster_survivors(edges)
        cluster = {int(i): int(v) for i, v in zip(removed.column("id").to_pylist(), removed.column("survivor_id").to_pylist())}
        same = lambda a, b: cluster.get(a, a) == cluster.get(b, b)   # noqa: E731
        high = [p for p, j in judged.items() if j >= args.threshold + 0.05]
        low = [p for p in candidates | random_pairs if judged[p] <= args.threshold - 0.1]
        low_wide = [p for p in wide if judged[p] <= args.threshold - 0.1]
        print(f"{mode}: {removed.num_rows:,} files removed")
        print(f"  recall: {np.mean([same(*p) for p in high]):.3f} of {len(high):,} pairs with Jaccard ≥ {args.threshold + 0.05:.2f} "
              "merged (target ≥ 0.95)")
        print(f"  apart: {np.mean([not same(*p) for p in low]):.3f} of {len(low):,} candidate and random pairs with Jaccard ≤ "
              f"{args.threshold - 0.1:.2f} not merged (target ≥ 0.90)")
        print(f"  apart, wider-net pairs only: {np.mean([not same(*p) for p in low_wide]):.3f} of {len(low_wide):,}")
        # Over all pairs of the corpus (the population the target speaks of): low pairs ≈ all pairs × the
        # random sample's low share; merged low pairs ≈ pairs inside clusters × a sample's low share.
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(texts)):
            members[cluster.get(i, i)].append(i)
        groups = [m for m in members.values() if len(m) > 1]
        inside = sum(len(m) * (len(m) - 1) // 2 for m in groups)
        weights = np.array([len(m) * (len(m) - 1) / 2 for m in groups]) / max(inside, 1)
        sample = []
        for g in rng.choice(len(groups), size=min(20_000, inside), p=weights) if groups else []:
            a, b = rng.choice(groups[g], size=2, replace=False)
            sample.append(jaccard(sets[a], sets[b]) <= args.threshold - 0.1)
        total = len(texts) * (len(texts) - 1) // 2
        low_total = total * np.mean([judged[p] <= args.threshold - 0.1 for p in random_pairs])
        merged_low = inside * (np.mean(sample) if sample else 0.0)
        print(f"  apart over all {total:,} pairs of the corpus (estimated): {1 - merged_low / low_total:.4f} "
              f"({inside:,} pairs inside clusters, {np.mean(sample) if sample else 0:.2f} of them low)")


if __name__ == "__main__":
    main()
