"""MinHash + LSH near-deduplication (BigCode's recipe for code, SPEC §5).

Shingles are n-grams of code tokens (identifiers, numbers, operators and punctuation all kept:
code's structure matters). Each file's MinHash signature (stages.minhash, computed in the per-file
pass) is cut into `bands` × `rows` (datasketch's optimal parameters for the threshold) and each
band is hashed to a bucket key. Files sharing a bucket are candidates, every candidate is treated as a duplicate,
clusters are the connected components of the candidate pairs, and each cluster keeps the member
with the smallest `rank_key`.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch.lsh import _optimal_param

from stages.groups import sorted_runs
from stages.minhash import jaccard

EDGE_SCHEMA = pa.schema([("id", pa.string()), ("rank_key", pa.string()), ("other_id", pa.string()), ("other_rank_key", pa.string())])


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative rates (datasketch's rule)."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def without_exact_copies(buckets: pa.Table) -> pa.Table:
    """Band rows less the exact duplicates that exact dedup removes: files of equal content hash have
    equal shingles, hence equal bucket keys in every band, so each bucket holds every copy and keeps
    the one exact dedup keeps (smallest rank_key, id)."""
    buckets, starts, _ = sorted_runs(buckets, "band_key", ["content_hash", "rank_key", "id"])
    keys, hashes = buckets.column("band_key"), buckets.column("content_hash")
    n = buckets.num_rows
    first = np.ones(n, dtype=bool)
    if n > 1:
        same = pc.and_(pc.equal(keys.slice(1), keys.slice(0, n - 1)), pc.equal(hashes.slice(1), hashes.slice(0, n - 1)))
        first[1:] = ~same.to_numpy(zero_copy_only=False)
    return buckets.filter(pa.array(first))


def bucket_edges(buckets: pa.Table, threshold: float | None = None, exact_dedup: bool = False) -> pa.Table:
    """Candidate pairs of the buckets in `buckets` (each bucket's rows all there, as a hash partition
    by band_key holds them): a star around each bucket's smallest (rank_key, id), enough for the
    components. With the exact-Jaccard check (`threshold` set, shingle sets in the rows): every pair
    of a bucket whose shingle sets have Jaccard ≥ threshold instead."""
    if exact_dedup and buckets.num_rows > 1:
        buckets = without_exact_copies(buckets)
    if buckets.num_rows < 2:
        return EDGE_SCHEMA.empty_table()
    buckets, starts, first = sorted_runs(buckets, "band_key", ["rank_key", "id"])
    if threshold is not None and "shingles" in buckets.column_names:
        bounds = [*np.flatnonzero(starts).tolist(), buckets.num_rows]
        return pa.concat_tables([_similar_pairs(buckets.slice(a, b - a), threshold) for a, b in zip(bounds, bounds[1:])])
    ids, ranks = buckets.column("id"), buckets.column("rank_key")
    head_ids, head_ranks = ids.take(first), ranks.take(first)
    member = pc.and_(pa.array(~starts), pc.not_equal(ids, head_ids))
    return pa.table({"id": ids.filter(member), "rank_key": ranks.filter(member),
                     "other_id": head_ids.filter(member), "other_rank_key": head_ranks.filter(member)}, schema=EDGE_SCHEMA)


def _similar_pairs(bucket: pa.Table, threshold: float) -> pa.Table:
    ids, ranks = bucket.column("id").to_pylist(), bucket.column("rank_key").to_pylist()
    sets = [np.frombuffer(b, dtype=np.uint64) for b in bucket.column("shingles").to_pylist()]
    pairs = [(i, j) for i in range(len(ids)) for j in range(i) if ids[i] != ids[j] and jaccard(sets[i], sets[j]) >= threshold]
    return pa.table({"id": [ids[i] for i, _ in pairs], "rank_key": [ranks[i] for i, _ in pairs],
                     "other_id": [ids[j] for _, j in pairs], "other_rank_key": [ranks[j] for _, j in pairs]},
                    schema=EDGE_SCHEMA)


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


def cluster_summary(removed: pa.Table, top: int = 10, samples: int = 3) -> dict:
    """A mergeable summary of some removed files (rows of `cluster_survivors`: id, survivor_id,
    cluster_size) — any subset of rows, so it can be computed block by block. Clusters of size s
    contribute s − 1 rows, hence the histogram from row counts; a globally largest cluster is among
    the largest of every block holding its rows, hence top-k per block."""
    rows_by_size: dict[str, int] = {}
    members: dict[str, tuple[int, list[str]]] = {}
    for rid, survivor, size in zip(*(removed.column(c).to_pylist() for c in ("id", "survivor_id", "cluster_size"))):
        rows_by_size[str(size)] = rows_by_size.get(str(size), 0) + 1
        members.setdefault(survivor, (size, []))[1].append(rid)
    largest = sorted(members, key=lambda s: (-members[s][0], s))[:top]
    return {"removed": removed.num_rows, "rows_by_size": rows_by_size,
            "largest": [{"size": members[s][0], "survivor": s, "members": sorted(members[s][1])[:samples]} for s in largest]}


def merge_cluster_summaries(parts: list[dict], top: int = 10, samples: int = 3) -> dict:
    """The cluster report: cluster count, size histogram, the largest clusters with sample members (ids)."""
    rows_by_size: dict[int, int] = {}
    largest: dict[str, dict] = {}
    for part in parts:
        for size, n in part["rows_by_size"].items():
            rows_by_size[int(size)] = rows_by_size.get(int(size), 0) + n
        for c in part["largest"]:
            seen = largest.setdefault(c["survivor"], {"size": c["size"], "survivor": c["survivor"], "members": []})
            seen["members"] = sorted(seen["members"] + c["members"])[:samples]
    histogram = {str(size): n // (size - 1) for size, n in sorted(rows_by_size.items())}
    return {"clusters": sum(histogram.values()), "removed": sum(p["removed"] for p in parts), "size_histogram": histogram,
            "largest": sorted(largest.values(), key=lambda c: (-c["size"], c["survivor"]))[:top]}


def name_clusters(report: dict, names: pa.Table) -> dict:
    """The report with ids replaced by `repo/path` (`names`: id, repo, path of those ids)."""
    where = {i: f"{r}/{p}" for i, r, p in zip(*(names.column(c).to_pylist() for c in ("id", "repo", "path")))}
    return {**report, "largest": [{"size": c["size"], "survivor": where.get(c["survivor"], c["survivor"]),
                                   "members": sorted(where.get(m, m) for m in c["members"])} for c in report["largest"]]}
