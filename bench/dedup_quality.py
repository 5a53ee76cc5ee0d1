"""Near-dedup quality: what the stage removes, judged by exact Jaccard, on real multi-version code.

Corpus (built here): this interpreter's standard library and site-packages, plus two versions of
the same libraries — PyPI wheels (`pip download`) and npm tarballs (`npm pack`), read in memory —
which give real near-duplicates. Two sets of libraries: `tune` (the ones the stage's parameters were
chosen on) and `test` (chosen before any result on them; the default). Files go through the default
filters first, as in a build. The stage's own functions run, with the shuffles done in memory:
batch signatures, band keys (bands × rows from datasketch's rule), candidate pairs per bucket
(`bucket_pairs`), verification by the signatures (`with_signature`, `verified_edges`), files kept in
order (`keep_in_order`).

Judged by exact Jaccard:
- removals: each removed file against the kept file it is attributed to, over 5-grams of an
  independent tokenisation (Python's `re`: `\w+` runs and single punctuation; not the stage's
  byte-level tokens) and of the stage's shingles (target: ≥ 95% at ≥ 0.6);
- recall: of the pairs with Jaccard ≥ 0.8 (every LSH candidate, a wider LSH net at threshold − 0.25,
  and random pairs, judged on the stage's shingles), the share that lost a copy (target ≥ 0.99);
- apart: of the same-path pairs of two versions of a library with Jaccard < 0.5, the share that kept
  both (target ≥ 0.95); the same for every judged pair with Jaccard < 0.5.

    .venv/bin/python -m bench.dedup_quality [--set test|tune] [--threshold T] [--heads H]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from codecorpus.pipeline.config import FiltersConfig
from codecorpus.stages.filters import build_filters, first_reason
from codecorpus.stages.langid import language_of_path
from codecorpus.stages.minhash import band_keys, jaccard, shingle_sets, signatures
from codecorpus.stages.near_dedup import HEADS, bucket_pairs, keep_in_order, lsh_params, verified_edges, with_signature

import pyarrow as pa

CACHE = Path.home() / ".cache" / "codecorpus-bench" / "dedup"
SETS = {
    "tune": {"wheels": ["django==4.2.16", "django==5.1.3", "sqlalchemy==1.4.54", "sqlalchemy==2.0.36", "sympy==1.12", "sympy==1.13.3"],
             "npm": ["lodash@4.17.15", "lodash@4.17.21", "rxjs@6.6.7", "rxjs@7.8.1", "typescript@4.9.5", "typescript@5.4.5"]},
    # chosen before any result on them
    "test": {"wheels": ["flask==2.2.5", "flask==3.0.3", "pytest==7.4.4", "pytest==8.3.3", "sphinx==6.2.1", "sphinx==7.4.7",
                        "networkx==2.8.8", "networkx==3.3", "requests==2.28.2", "requests==2.32.3"],
             "npm": ["react-dom@17.0.2", "react-dom@18.3.1", "vue@3.3.4", "vue@3.4.38", "moment@2.29.4", "moment@2.30.1",
                     "d3@6.7.0", "d3@7.9.0", "webpack@5.88.0", "webpack@5.94.0"]},
}
KEEP = build_filters(FiltersConfig())
WORD = re.compile(r"\w+|[^\w\s]")


def fetch(which: str) -> Path:
    folder = CACHE / which
    folder.mkdir(parents=True, exist_ok=True)
    for spec in SETS[which]["wheels"]:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", str(folder), spec],
                       check=False)
    subprocess.run(["npm", "pack", "--silent", *SETS[which]["npm"]], cwd=folder, check=False, stdout=subprocess.DEVNULL)
    return folder


def corpus(folder: Path, installed: bool = True) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(names, texts, (library, path inside it) of each file; ("", "") outside the downloaded libraries)."""
    names, texts, where = [], [], []

    def add(name: str, data: bytes, library: str = "", inner: str = "") -> None:
        if not language_of_path(name, None) and not name.endswith(".h"):
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return
        if first_reason(KEEP, text) is None:
            names.append(name)
            texts.append(text)
            where.append((library, inner))

    roots = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]) if installed else (sysconfig.get_paths()["stdlib"],)
    for root in dict.fromkeys(roots):
        for path in sorted(Path(root).rglob("*")):
            if installed or "site-packages" not in path.parts:
                if path.is_file() and not path.is_symlink() and path.stat().st_size <= 102_400:
                    add(str(path), path.read_bytes())
    for wheel in sorted(folder.glob("*.whl")):
        library = wheel.name.split("-")[0].lower()
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if info.file_size <= 102_400:
                    add(f"{wheel.name}!{info.filename}", zf.read(info), library, info.filename)
    for tgz in sorted(folder.glob("*.tgz")):
        library = tgz.name.rsplit("-", 1)[0]
        with tarfile.open(tgz) as tf:
            for info in tf.getmembers():
                if info.isreg() and info.size <= 102_400:
                    add(f"{tgz.name}!{info.name}", tf.extractfile(info).read(), library, info.name)
    return names, texts, where


def candidate_pairs(sigs: np.ndarray, present: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Every pair sharing an LSH bucket (the population recall is judged on)."""
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


def stage_removals(sigs: np.ndarray, present: np.ndarray, bands: int, rows: int, threshold: float, heads: int) -> pa.Table:
    """The stage's functions, each partition the whole corpus: REMOVED rows (ids are corpus indexes)."""
    rows_ix = np.flatnonzero(present)
    ids = pa.array([str(i) for i in rows_ix])
    ranks = pa.array([f"{i:08d}" for i in rows_ix])
    keys = band_keys(sigs[rows_ix], bands, rows)
    take = pa.array(np.repeat(np.arange(len(rows_ix)), bands))
    table = pa.table({"band_key": pa.array(keys.reshape(-1)), "id": ids.take(take), "rank_key": ranks.take(take)})
    signatures = pa.table({"id": ids, "signature": pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(2 * sigs.shape[1]), len(rows_ix), [None, pa.py_buffer(sigs[rows_ix].astype(np.uint16).tobytes())])})
    pairs = bucket_pairs(table, heads=heads)
    print(f"  candidate pairs: {pairs.num_rows:,}")
    edges = verified_edges(with_signature(pairs, signatures), signatures.rename_columns(["other_id", "signature"]), threshold)
    return keep_in_order(edges)


def word_grams(text: str, n: int = 5) -> set:
    tokens = WORD.findall(text)
    return {hash(tuple(tokens[i: i + n])) for i in range(max(1, len(tokens) - n + 1))}


def exact(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", choices=sorted(SETS), default="test")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--num-perm", type=int, default=256)
    parser.add_argument("--heads", type=int, default=HEADS)
    parser.add_argument("--random-pairs", type=int, default=100_000)
    parser.add_argument("--without-installed", action="store_true",
                        help="leave this interpreter's site-packages out (it may hold a third copy of a library)")
    args = parser.parse_args()
    folder = fetch(args.set)
    names, texts, where = corpus(folder, installed=not args.without_installed)
    print(f"corpus (the standard library{'' if args.without_installed else ', site-packages'}; {args.set} libraries: {', '.join(SETS[args.set]['wheels'] + SETS[args.set]['npm'])}): "
          f"{len(texts):,} real files after the default filters")
    start = time.perf_counter()
    sigs, present = signatures(texts, args.num_perm, 5, 1)
    bands, rows = lsh_params(args.threshold, args.num_perm)
    removed = stage_removals(sigs, present, bands, rows, args.threshold, args.heads)
    print(f"the stage ({bands} bands × {rows} rows, each file paired with the first {args.heads} of its bucket): {removed.num_rows:,} files removed "
          f"({time.perf_counter() - start:.0f} s)")
    gone = {int(i) for i in removed.column("id").to_pylist()}

    sets = shingle_sets(texts, 5)
    kept_of = [(int(r), int(k), s) for r, k, s in zip(*(removed.column(c).to_pylist() for c in ("id", "survivor_id", "similarity")))]
    independent = np.array([exact(word_grams(texts[r]), word_grams(texts[k])) for r, k, _ in kept_of])
    ours = np.array([jaccard(sets[r], sets[k]) for r, k, _ in kept_of])
    estimated = np.array([s for _, _, s in kept_of])
    print(f"removals: {np.mean(independent >= 0.6):.4f} have exact Jaccard ≥ 0.6 with their kept file (independent 5-grams; "
          f"target ≥ 0.95), {np.mean(independent >= 0.5):.4f} ≥ 0.5, {np.mean(independent >= 0.7):.4f} ≥ 0.7; on the stage's "
          f"shingles {np.mean(ours >= 0.6):.4f} ≥ 0.6, {np.mean(ours >= args.threshold):.4f} ≥ {args.threshold}")
    print(f"  estimate − exact (stage's shingles): mean {np.mean(estimated - ours):+.4f}, sd {np.std(estimated - ours):.4f}")
    below = [(names[r], names[k], j, s) for (r, k, s), j in zip(kept_of, independent) if j < 0.6]
    for r, k, j, s in below[:8]:
        print(f"    {j:.2f} (estimated {s:.2f})  {r}  ~  {k}")

    candidates = candidate_pairs(sigs, present, bands, rows)
    wide_bands, wide_rows = lsh_params(max(0.2, args.threshold - 0.25), args.num_perm)
    rng = np.random.default_rng(0)
    random_pairs = {tuple(sorted(p)) for p in rng.integers(0, len(texts), size=(args.random_pairs, 2)).tolist() if p[0] != p[1]}
    judged = {p: jaccard(sets[p[0]], sets[p[1]]) for p in candidates | candidate_pairs(sigs, present, wide_bands, wide_rows) | random_pairs}
    high = [p for p, j in judged.items() if j >= 0.8]
    print(f"recall: {np.mean([p[0] in gone or p[1] in gone for p in high]):.4f} of {len(high):,} pairs with Jaccard ≥ 0.8 "
          f"lost a copy (target ≥ 0.99)")
    by_path = defaultdict(list)
    for i, w in enumerate(where):
        if w[0]:
            by_path[w].append(i)
    same_path = [(a, b) for files in by_path.values() for k, b in enumerate(files) for a in files[:k]]
    low_same = [p for p in same_path if jaccard(sets[p[0]], sets[p[1]]) < 0.5]
    both = np.mean([p[0] not in gone and p[1] not in gone for p in low_same]) if low_same else float("nan")
    print(f"apart: {both:.4f} of {len(low_same):,} same-path pairs of two versions with Jaccard < 0.5 kept both (target ≥ 0.95)")
    attributed = {int(r): (int(k), s) for r, k, s in kept_of}
    lost = [x for p in low_same for x in p if x in gone]
    to_partner = sum(attributed[x][0] in p for p in low_same for x in p if x in gone)
    elsewhere = [jaccard(sets[x], sets[attributed[x][0]]) for x in lost]
    print(f"  the {len(lost)} copies those pairs lost: {to_partner} as duplicates of their pair partner; the others of a third file, "
          f"exact Jaccard with it ≥ 0.6 for {np.mean(np.array(elsewhere) >= 0.6) if lost else float('nan'):.3f} "
          "(a newer copy of the library installed here, a generated .d.ts of a .ts)")
    low = [p for p, j in judged.items() if j < 0.5]
    merged = sum(attributed.get(a, (None,))[0] == b or attributed.get(b, (None,))[0] == a for a, b in low)
    print(f"apart: {len(low) - merged:,} of {len(low):,} judged pairs (candidates, wider net, random) with Jaccard < 0.5 "
          "were not removed one as a duplicate of the other")


if __name__ == "__main__":
    main()
