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
from datasketch.minhash import _SCHEME_LEGACY, _SCHEME_WIDTHS, _fmix
from datasketch.minhash import _max_hash as _MAX_HASH, _mersenne_prime as _MERSENNE_PRIME

from stages.groups import sorted_runs
from stages.records import RECORD_SCHEMA, mark

_CODE_TOKEN = re.compile(r"\w+|[^\w\s]")

BAND_SCHEMA = pa.schema([("band_key", pa.int64()), ("id", pa.string()), ("rank_key", pa.string())])
EDGE_SCHEMA = pa.schema([("id", pa.string()), ("rank_key", pa.string()), ("other_id", pa.string()), ("other_rank_key", pa.string())])


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and negative rates (datasketch's rule)."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def shingles(text: str, n: int) -> list[tuple[str, ...]]:
    """The n-grams of code tokens, in order (a file shorter than n tokens is one shingle)."""
    tokens = _CODE_TOKEN.findall(text)
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# A shingle's hash combines its tokens' 32-bit xxhashes polynomially (mod 2^32), then mixes the
# result (murmur3's finaliser): computable for all shingles of a batch at once with numpy, and by
# `shingle_hash` one shingle at a time — the function datasketch is given in the equality test.
_MULT = 0x9E3779B1
_MASK = 0xFFFFFFFF


def _mix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def shingle_hash(shingle: tuple[str, ...]) -> int:
    h = 0
    for token in shingle:
        h = (h * _MULT + xxhash.xxh32_intdigest(token.encode("utf-8", "surrogatepass"))) & _MASK
    return int(_mix32(h))


def _token_hashes(tokens: list[str], cache: dict[str, int]) -> np.ndarray:
    for token in set(tokens).difference(cache):     # each distinct token hashed once per batch
        cache[token] = xxhash.xxh32_intdigest(token.encode("utf-8", "surrogatepass"))
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def _shingle_hashes(th: np.ndarray, n: int) -> np.ndarray:
    """The hashes of all n-grams of one file's token hashes (vectorised `shingle_hash`)."""
    k = min(n, len(th))
    h = np.zeros(len(th) - k + 1, dtype=np.uint64)
    for j in range(k):
        h = (h * _MULT + th[j : len(th) - k + 1 + j]) & _MASK
    return _mix32(h)


def signatures(texts: list[str], num_perm: int, ngram: int, seed: int, chunk: int = 1 << 15) -> list[np.ndarray | None]:
    """datasketch MinHash signatures (same scheme, permutations and bits as `MinHash(num_perm, seed)` with
    `shingle_hash`) of many files at once: the shingle hashes of the whole batch are permuted together,
    chunk by chunk, and reduced per file."""
    empty = MinHash(num_perm=num_perm, seed=seed)
    perm_a, perm_b = empty.permutations
    cache: dict[str, int] = {}
    per_file = [_shingle_hashes(_token_hashes(_CODE_TOKEN.findall(t), cache), ngram) if t else np.empty(0, np.uint64)
                for t in texts]
    out: list[np.ndarray | None] = [None if len(h) == 0 else empty.hashvalues.copy() for h in per_file]
    flat = np.concatenate(per_file) if per_file else np.empty(0, np.uint64)
    owner = np.repeat(np.arange(len(per_file)), [len(h) for h in per_file])
    for start in range(0, len(flat), chunk):
        hv, who = flat[start : start + chunk], owner[start : start + chunk]
        # (num_perm, chunk): each permutation a contiguous row, so that the per-file minimum runs along rows
        if empty.scheme == _SCHEME_LEGACY:
            phv = np.bitwise_and((perm_a[:, None] * hv[None, :] + perm_b[:, None]) % _MERSENNE_PRIME, _MAX_HASH)
        else:   # datasketch ≥ 2: murmur3's finaliser, then an affine map mod 2^width
            mixed = _fmix(hv.astype(empty.hashvalues.dtype), _SCHEME_WIDTHS[empty.scheme])
            phv = perm_a[:, None] * mixed[None, :] + perm_b[:, None]
        bounds = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        for file_index, low in zip(who[bounds], np.minimum.reduceat(phv, bounds, axis=1).T):
            np.minimum(out[file_index], low, out=out[file_index])
    return out


def signature(text: str, num_perm: int, ngram: int, seed: int) -> np.ndarray | None:
    return signatures([text], num_perm, ngram, seed)[0]


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    return [
        xxhash.xxh64_intdigest(b.to_bytes(2, "little") + sig[b * rows : (b + 1) * rows].tobytes()) - (1 << 63)
        for b in range(bands)
    ]


def shingle_set(text: str, ngram: int) -> np.ndarray:
    """The file's distinct shingle hashes, sorted (uint32): what the exact-Jaccard check compares."""
    return np.unique(_shingle_hashes(_token_hashes(_CODE_TOKEN.findall(text), {}), ngram)).astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter) if len(a) + len(b) else 1.0


def band_rows(batch: pa.Table, num_perm: int, ngram: int, seed: int, bands: int, rows: int,
              exact_jaccard: bool = False) -> pa.Table:
    """One row per (file, band): the bucket key the file falls into for that band (and, for the
    exact-Jaccard check, the file's shingle set)."""
    keys, ids, ranks, sets = [], [], [], []
    texts = batch.column("text").to_pylist()
    sigs = signatures(texts, num_perm, ngram, seed)
    for rid, rk, sig, text in zip(batch.column("id").to_pylist(), batch.column("rank_key").to_pylist(), sigs, texts):
        if sig is None:
            continue
        packed = shingle_set(text, ngram).tobytes() if exact_jaccard else None
        for key in band_keys(sig, bands, rows):
            keys.append(key)
            ids.append(rid)
            ranks.append(rk)
            sets.append(packed)
    table = pa.table({"band_key": keys, "id": ids, "rank_key": ranks}, schema=BAND_SCHEMA)
    return table.append_column("shingles", pa.array(sets, pa.large_binary())) if exact_jaccard else table


def bucket_edges(buckets: pa.Table, threshold: float | None = None) -> pa.Table:
    """Candidate pairs of the buckets in `buckets` (each bucket's rows all there, as a hash partition
    by band_key holds them): a star around each bucket's smallest (rank_key, id), enough for the
    components. With the exact-Jaccard check (`threshold` set, shingle sets in the rows): every pair
    of a bucket whose shingle sets have Jaccard ≥ threshold instead."""
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
    sets = [np.frombuffer(b, dtype=np.uint32) for b in bucket.column("shingles").to_pylist()]
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


def mark_near_duplicates(batch: pa.Table, removed_ids: set[str]) -> pa.Table:
    reasons = ["near_duplicate" if rid in removed_ids else None for rid in batch.column("id").to_pylist()]
    return mark(batch, reasons)


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


def mark_joined(batch: pa.Table) -> pa.Table:
    """Records left-joined with the removed ids (column `removed_survivor`, null when not removed)."""
    reasons = ["near_duplicate" if s is not None else None for s in batch.column("removed_survivor").to_pylist()]
    return mark(batch.select([c for c in RECORD_SCHEMA.names if c in batch.column_names]), reasons)
