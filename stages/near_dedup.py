"""MinHash + LSH near-deduplication (BigCode's recipe for code, SPEC §5).

Shingles are n-grams of code tokens (identifiers, numbers, operators and punctuation all kept:
code's structure matters). Each file gets a datasketch MinHash; its signature is cut into
`bands` × `rows` (datasketch's optimal parameters for the threshold) and each band is hashed to
a bucket key. Files sharing a bucket are candidates, every candidate is treated as a duplicate,
clusters are the connected components of the candidate pairs, and each cluster keeps the member
with the smallest `rank_key`.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from stages.records import mark

_CODE_TOKEN = re.compile(r"\w+|[^\w\s]")

BAND_SCHEMA = pa.schema([("band_key", pa.int64()), ("id", pa.string()), ("rank_key", pa.string())])
EDGE_SCHEMA = pa.schema([("id", pa.string()), ("rank_key", pa.string()), ("other_id", pa.string()), ("other_rank_key", pa.string())])


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative rates (datasketch's rule)."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def shingles(text: str, n: int) -> set[bytes]:
    tokens = _CODE_TOKEN.findall(text)
    if len(tokens) < n:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + n]).encode() for i in range(len(tokens) - n + 1)}


def shingle_hash(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


def signature(text: str, num_perm: int, ngram: int, seed: int) -> np.ndarray | None:
    grams = shingles(text, ngram)
    if not grams:
        return None
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    m.update_batch(list(grams))
    return m.hashvalues


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    return [
        xxhash.xxh64_intdigest(b.to_bytes(2, "little") + sig[b * rows : (b + 1) * rows].tobytes()) - (1 << 63)
        for b in range(bands)
    ]


def band_rows(batch: pa.Table, num_perm: int, ngram: int, seed: int, bands: int, rows: int) -> pa.Table:
    """One row per (file, band): the bucket key the file falls into for that band."""
    keys, ids, ranks = [], [], []
    for rid, rk, text in zip(*(batch.column(c).to_pylist() for c in ("id", "rank_key", "text"))):
        sig = signature(text, num_perm, ngram, seed)
        if sig is None:
            continue
        for key in band_keys(sig, bands, rows):
            keys.append(key)
            ids.append(rid)
            ranks.append(rk)
    return pa.table({"band_key": keys, "id": ids, "rank_key": ranks}, schema=BAND_SCHEMA)


def bucket_edges(bucket: pa.Table) -> pa.Table:
    """Candidate pairs of one bucket, as a star around its smallest member (enough for components)."""
    if bucket.num_rows < 2:
        return EDGE_SCHEMA.empty_table()
    bucket = bucket.take(pc.sort_indices(bucket, [("rank_key", "ascending"), ("id", "ascending")]))
    ids, ranks = bucket.column("id").to_pylist(), bucket.column("rank_key").to_pylist()
    pairs = [(i, r) for i, r in zip(ids[1:], ranks[1:]) if i != ids[0]]
    return pa.table({
        "id": [p[0] for p in pairs], "rank_key": [p[1] for p in pairs],
        "other_id": [ids[0]] * len(pairs), "other_rank_key": [ranks[0]] * len(pairs),
    }, schema=EDGE_SCHEMA)


def cluster_survivors(edges: pa.Table) -> pa.Table:
    """Connected components of the candidate pairs → (id, survivor_id, cluster_size) for every removed file."""
    parent: dict[str, str] = {}
    rank: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, ra, b, rb in zip(*(edges.column(c).to_pylist() for c in ("id", "rank_key", "other_id", "other_rank_key"))):
        for node, r in ((a, ra), (b, rb)):
            if node not in parent:
                parent[node] = node
                rank[node] = r
        root_a, root_b = find(a), find(b)
        if root_a != root_b:  # the root is always the member with the smallest (rank_key, id)
            lo, hi = sorted((root_a, root_b), key=lambda n: (rank[n], n))
            parent[hi] = lo
    roots = {node: find(node) for node in parent}
    sizes: dict[str, int] = {}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    removed = sorted((node, root) for node, root in roots.items() if node != root)
    return pa.table({
        "id": [n for n, _ in removed], "survivor_id": [r for _, r in removed],
        "cluster_size": [sizes[r] for _, r in removed],
    }, schema=pa.schema([("id", pa.string()), ("survivor_id", pa.string()), ("cluster_size", pa.int64())]))


def mark_near_duplicates(batch: pa.Table, removed_ids: set[str]) -> pa.Table:
    reasons = ["near_duplicate" if rid in removed_ids else None for rid in batch.column("id").to_pylist()]
    return mark(batch, reasons)


def cluster_report(removed: pa.Table, names: pa.Table, top: int = 10, samples: int = 3) -> dict:
    """Cluster count and size histogram, and the largest clusters with their survivor and sample members.

    `removed` comes from `cluster_survivors`; `names` maps the ids of those clusters to repo and path.
    """
    sizes: dict[str, int] = {}
    members: dict[str, list[str]] = {}
    for rid, survivor, size in zip(*(removed.column(c).to_pylist() for c in ("id", "survivor_id", "cluster_size"))):
        sizes[survivor] = size
        members.setdefault(survivor, []).append(rid)
    histogram: dict[int, int] = {}
    for size in sizes.values():
        histogram[size] = histogram.get(size, 0) + 1
    where = {i: f"{r}/{p}" for i, r, p in zip(*(names.column(c).to_pylist() for c in ("id", "repo", "path")))}
    largest = sorted(sizes, key=lambda s: (-sizes[s], s))[:top]
    return {
        "clusters": len(sizes),
        "removed": removed.num_rows,
        "size_histogram": {str(k): v for k, v in sorted(histogram.items())},
        "largest": [{"size": sizes[s], "survivor": where.get(s, s),
                     "members": [where.get(m, m) for m in sorted(members[s], key=lambda m: where.get(m, m))[:samples]]}
                    for s in largest],
    }
