"""MinHash + LSH near-deduplication (BigCode's recipe for code: 5-gram shingles, 256 permutations,
threshold 0.7), without chains.

Shingles are n-grams of code tokens (identifiers, numbers, operators and punctuation all kept:
code's structure matters). Each file's MinHash signature (stages.minhash, computed in the per-file
pass) is cut into `bands` × `rows` (those that minimise the false positive and negative rates at
the threshold, `lsh_params`) and each band is hashed to a bucket key. Files sharing a bucket are candidates — only candidates: LSH lets
through pairs well below the threshold, and connected components of candidates chain A~B~C, so a
file would go because it resembles a file that resembles another. Here:

1. `bucket_pairs`: the candidate pairs of each bucket: every member with the bucket's first `HEADS`
   files in survivor order, where its kept file is (a bucket of up to HEADS + 1 files: every pair).
2. `with_signature` / `verified_edges`: each pair's Jaccard estimated from the two signatures (the share
   of agreeing bins, ±0.03 at 256 bins: no text needed); only pairs at or above the threshold are
   edges. (Exact Jaccard on the shingle sets instead, as an option: `bucket_pairs` with a threshold.)
3. `keep_in_order`: within each component of the edges, files are taken in survivor order (source
   priority, license, repo, path); a file is removed when it is an edge's later end and the earlier
   end is kept, and is attributed to the most similar such kept file. A file close to no kept file
   stays. Every removal is then next to a file that stays, by construction.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages.components import labels_of, record_ids
from codecorpus.stages.groups import sorted_runs
from codecorpus.stages.minhash import jaccard

PAIR_SCHEMA = pa.schema([("id", pa.string()), ("rank_key", pa.string()), ("other_id", pa.string()), ("other_rank_key", pa.string())])
EDGE_SCHEMA = PAIR_SCHEMA.append(pa.field("similarity", pa.float64()))
REMOVED = pa.schema([("id", pa.string()), ("survivor_id", pa.string()), ("cluster_size", pa.int64()),
                     ("similarity", pa.float64())])


@functools.lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
               false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows), bands × rows ≤ num_perm, minimising the weighted sum of the false positive rate
    (the chance that a pair of Jaccard s < threshold shares a bucket, 1 − (1 − s^r)^b, integrated over
    s in [0, threshold]) and the false negative rate (the chance that a pair above it shares none,
    integrated over [threshold, 1]): the rule of Leskovec et al.'s Mining of Massive Datasets ch. 3,
    as datasketch's MinHashLSH applies it (tests check that both choose alike). The first (b, r) in
    order reaching the minimum wins.

    Both integrals in closed form, for every (b, r) at once: with u = s^r, ∫₀ᵗ (1 − s^r)^b ds =
    B(1/r, b+1) · I_{t^r}(1/r, b+1) / r (the regularised incomplete beta function), where numerical
    quadrature of each pair took the driver 0.25 s."""
    from scipy.special import beta, betainc   # here: importing it costs every worker 0.15 s, and only the driver calls this

    b, r = (np.array(v, dtype=np.float64) for v in zip(*((b, r) for b in range(1, num_perm + 1)
                                                           for r in range(1, num_perm // b + 1))))
    whole = beta(1 / r, b + 1) / r                            # ∫₀¹ (1 − s^r)^b ds
    below = whole * betainc(1 / r, b + 1, threshold ** r)     # ∫₀ᵗ (1 − s^r)^b ds
    false_positive = threshold - below                        # ∫₀ᵗ 1 − (1 − s^r)^b ds
    false_negative = whole - below                            # ∫ₜ¹ (1 − s^r)^b ds
    best = int(np.argmin(false_positive * false_positive_weight + false_negative * false_negative_weight))
    return int(b[best]), int(r[best])


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


HEADS = 2   # each member of a bucket is paired with the bucket's first HEADS files in survivor order


def bucket_pairs(buckets: pa.Table, exact_dedup: bool = False, threshold: float | None = None, heads: int = HEADS) -> pa.Table:
    """The candidate pairs of the buckets in `buckets` (each bucket's rows all there, as a hash
    partition by band_key holds them), each once, the later file in survivor order as `id`. With
    `threshold` and shingle sets in the rows (the exact-Jaccard option): only the pairs whose
    shingle sets have Jaccard ≥ threshold, with it as `similarity`."""
    if exact_dedup and buckets.num_rows > 1:
        buckets = without_exact_copies(buckets)
    if buckets.num_rows < 2:
        return (EDGE_SCHEMA if threshold is not None else PAIR_SCHEMA).empty_table()
    buckets, starts, first = sorted_runs(buckets, "band_key", ["rank_key", "id"])
    n = buckets.num_rows
    partners = np.minimum(np.arange(n) - first, heads)
    later = np.repeat(np.arange(n), partners)
    earlier = first[later] + (np.arange(len(later)) - np.repeat(np.cumsum(partners) - partners, partners))
    ids, ranks = buckets.column("id"), buckets.column("rank_key")
    pairs = pa.table({"id": ids.take(later), "rank_key": ranks.take(later),
                      "other_id": ids.take(earlier), "other_rank_key": ranks.take(earlier)})
    if threshold is not None:
        sets = [np.frombuffer(b, dtype=np.uint64) for b in buckets.column("shingles").to_pylist()]
        similarity = np.array([jaccard(sets[i], sets[j]) for i, j in zip(later.tolist(), earlier.tolist())])
        pairs = pairs.append_column("similarity", pa.array(similarity, pa.float64())).filter(pa.array(similarity >= threshold))
        return pairs.group_by(EDGE_SCHEMA.names[:4]).aggregate([("similarity", "max")]).rename_columns(EDGE_SCHEMA.names)
    return pairs.group_by(PAIR_SCHEMA.names).aggregate([]).select(PAIR_SCHEMA.names)


def with_signature(pairs: pa.Table, signatures: pa.Table) -> pa.Table:
    """Candidate pairs (a hash partition by `id`), each once, with the signature of their `id` file
    (`signatures`: id, signature — the same partition)."""
    pairs = pairs.group_by(PAIR_SCHEMA.names).aggregate([]).select(PAIR_SCHEMA.names)
    return pairs.join(signatures.select(["id", "signature"]), "id", join_type="inner")


def verified_edges(pairs: pa.Table, signatures: pa.Table, threshold: float) -> pa.Table:
    """Pairs with their `id`'s signature (a hash partition by `other_id`) → the pairs whose
    signatures agree in at least `threshold` of their bins, with that share as `similarity`."""
    other = signatures.rename_columns(["other_id", "other_signature"])
    joined = pairs.join(other, "other_id", join_type="inner").combine_chunks()
    if joined.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    similarity = np.mean(_bins(joined.column("signature")) == _bins(joined.column("other_signature")), axis=1)
    edges = joined.select(EDGE_SCHEMA.names[:4]).append_column("similarity", pa.array(similarity, pa.float64()))
    return edges.filter(pa.array(similarity >= threshold)).sort_by([("id", "ascending"), ("other_id", "ascending")])


def _bins(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size binary column of stored signatures (stages.per_file: 16 bits a bin) as a (rows, bins) array."""
    arr = column.combine_chunks()
    width = arr.type.byte_width
    data = np.frombuffer(arr.buffers()[1], dtype=np.uint8)[arr.offset * width: (arr.offset + len(arr)) * width]
    return data.view(np.uint16).reshape(len(arr), width // 2)


def with_component(edges: pa.Table, members: pa.Table) -> pa.Table:
    """Edges (a hash partition by `id`) with the label of their component (`members`: id, survivor_id
    of every component member but its smallest, the same partition; both ends share a component)."""
    joined = edges.join(members, "id", join_type="left outer")
    component = pc.coalesce(joined.column("survivor_id"), joined.column("id"))
    return joined.select(EDGE_SCHEMA.names).append_column("component", component)


def keep_in_order(edges: pa.Table) -> pa.Table:
    """Whole components of verified edges (id, rank_key, other_id, other_rank_key, similarity) → the
    removed files (REMOVED): files in survivor order, each removed when an earlier neighbour is kept,
    attributed to its most similar kept earlier neighbour; `cluster_size` = the kept file and the files
    attributed to it."""
    if edges.num_rows == 0:
        return REMOVED.empty_table()
    u = labels_of(edges.column("rank_key"), edges.column("id"))
    v = labels_of(edges.column("other_rank_key"), edges.column("other_id"))
    nodes = pc.unique(pa.chunked_array([*u.chunks, *v.chunks])).sort()
    iu, iv = pc.index_in(u, nodes).to_numpy(), pc.index_in(v, nodes).to_numpy()
    later, earlier = np.maximum(iu, iv), np.minimum(iu, iv)
    similarity = edges.column("similarity").to_numpy()
    order = np.lexsort((earlier, -similarity, later))
    kept = np.ones(len(nodes), dtype=bool)
    kept_by = np.full(len(nodes), -1)
    kept_similarity = np.zeros(len(nodes))
    for node, other, s in zip(later[order].tolist(), earlier[order].tolist(), similarity[order].tolist()):
        if kept[node] and kept[other]:      # the first kept earlier neighbour in this order is the most similar
            kept[node], kept_by[node], kept_similarity[node] = False, other, s
    removed = np.flatnonzero(~kept)
    sizes = np.bincount(kept_by[removed], minlength=len(nodes)) + 1
    ids = record_ids(nodes)
    return pa.table({"id": ids.take(removed), "survivor_id": ids.take(kept_by[removed]),
                     "cluster_size": pa.array(sizes[kept_by[removed]], pa.int64()),
                     "similarity": pa.array(kept_similarity[removed], pa.float64())}, schema=REMOVED).sort_by("id")


def similarity_bin(similarity: float) -> str:
    """The histogram bin (0.05 wide, named by its lower edge) of an estimated similarity."""
    return f"{min(int(similarity * 20 + 1e-9), 19) / 20:.2f}"


def cluster_summary(removed: pa.Table, top: int = 10, samples: int = 3) -> dict:
    """A mergeable summary of some removed files (rows of REMOVED) — any subset of rows, so it can be
    computed block by block. Clusters (a kept file and the files attributed to it) of size s
    contribute s − 1 rows, hence the size histogram from row counts; a globally largest cluster is
    among the largest of every block holding its rows, hence top-k per block."""
    rows_by_size: dict[str, int] = {}
    similarity: dict[str, int] = {}
    members: dict[str, tuple[int, list[str]]] = {}
    for rid, survivor, size, sim in zip(*(removed.column(c).to_pylist() for c in ("id", "survivor_id", "cluster_size", "similarity"))):
        rows_by_size[str(size)] = rows_by_size.get(str(size), 0) + 1
        bin_ = similarity_bin(sim)
        similarity[bin_] = similarity.get(bin_, 0) + 1
        members.setdefault(survivor, (size, []))[1].append(rid)
    largest = sorted(members, key=lambda s: (-members[s][0], s))[:top]
    return {"removed": removed.num_rows, "rows_by_size": rows_by_size, "similarity": similarity,
            "largest": [{"size": members[s][0], "survivor": s, "members": sorted(members[s][1])[:samples]} for s in largest]}


def merge_cluster_summaries(parts: list[dict], top: int = 10, samples: int = 3) -> dict:
    """The cluster report: cluster count, size histogram, the removed files' similarity to their kept
    file (histogram by 0.05), the largest clusters with sample members (ids)."""
    rows_by_size: dict[int, int] = {}
    similarity: dict[str, int] = {}
    largest: dict[str, dict] = {}
    for part in parts:
        for size, n in part["rows_by_size"].items():
            rows_by_size[int(size)] = rows_by_size.get(int(size), 0) + n
        for b, n in part["similarity"].items():
            similarity[b] = similarity.get(b, 0) + n
        for c in part["largest"]:
            seen = largest.setdefault(c["survivor"], {"size": c["size"], "survivor": c["survivor"], "members": []})
            seen["members"] = sorted(seen["members"] + c["members"])[:samples]
    histogram = {str(size): n // (size - 1) for size, n in sorted(rows_by_size.items())}
    return {"clusters": sum(histogram.values()), "removed": sum(p["removed"] for p in parts), "size_histogram": histogram,
            "similarity_histogram": dict(sorted(similarity.items())),
            "largest": sorted(largest.values(), key=lambda c: (-c["size"], c["survivor"]))[:top]}


def name_clusters(report: dict, names: pa.Table) -> dict:
    """The report with ids replaced by `repo/path` (`names`: id, repo, path of those ids)."""
    where = {i: f"{r}/{p}" for i, r, p in zip(*(names.column(c).to_pylist() for c in ("id", "repo", "path")))}
    return {**report, "largest": [{"size": c["size"], "survivor": where.get(c["survivor"], c["survivor"]),
                                   "members": sorted(where.get(m, m) for m in c["members"])} for c in report["largest"]]}
