"""Connected components of the near-duplicate graph by iterated large-star / small-star
(Kiveris et al., "Connected Components in MapReduce and Beyond", 2014), as functions on Arrow
tables that a shuffle (group by node) runs in parallel — no process ever holds all edges.

A node's label sorts like its survivor rule, (rank_key, id), so each component converges to a
star around its smallest member: the file that is kept. Edges are (u, v) label pairs.
"""
from __future__ import annotations

import pyarrow as pa
import xxhash

EDGES = pa.schema([("u", pa.string()), ("v", pa.string())])
REMOVED = pa.schema([("id", pa.string()), ("survivor_id", pa.string()), ("cluster_size", pa.int64())])


def label(rank_key: str, record_id: str) -> str:
    """Sorts as (rank_key, id): the rank key's own NULs become \\x01 so that NUL can end it."""
    return rank_key.replace("\0", "\x01") + "\0" + record_id


def record_id_of(node: str) -> str:
    return node.rsplit("\0", 1)[1]


def from_candidate_pairs(batch: pa.Table) -> pa.Table:
    """near_dedup's candidate pairs (id, rank_key, other_id, other_rank_key) as label edges."""
    cols = [batch.column(c).to_pylist() for c in ("id", "rank_key", "other_id", "other_rank_key")]
    return pa.table({"u": [label(r, i) for i, r, _, _ in zip(*cols)], "v": [label(r, i) for _, _, i, r in zip(*cols)]},
                    schema=EDGES)


def both_directions(batch: pa.Table) -> pa.Table:
    return pa.table({"u": pa.concat_arrays([batch.column("u").combine_chunks(), batch.column("v").combine_chunks()]),
                     "v": pa.concat_arrays([batch.column("v").combine_chunks(), batch.column("u").combine_chunks()])},
                    schema=EDGES)


def larger_first(batch: pa.Table) -> pa.Table:
    """Each edge keyed by its larger end (small-star groups a node with its smaller neighbours)."""
    pairs = [(max(u, v), min(u, v)) for u, v in zip(batch.column("u").to_pylist(), batch.column("v").to_pylist())]
    return pa.table({"u": [p[0] for p in pairs], "v": [p[1] for p in pairs]}, schema=EDGES)


def _edges(pairs: set[tuple[str, str]]) -> pa.Table:
    ordered = sorted(pairs)
    return pa.table({"u": [a for a, _ in ordered], "v": [b for _, b in ordered]}, schema=EDGES)


def large_star(group: pa.Table) -> pa.Table:
    """One node u with all its neighbours: link every larger neighbour to the smallest of u and its neighbours."""
    u = group.column("u")[0].as_py()
    neighbours = set(group.column("v").to_pylist()) - {u}
    m = min(neighbours | {u})
    return _edges({(v, m) for v in neighbours if v > u})


def small_star(group: pa.Table) -> pa.Table:
    """One node u with its smaller neighbours: link u and each of them to the smallest."""
    u = group.column("u")[0].as_py()
    smaller = set(group.column("v").to_pylist()) - {u}
    m = min(smaller | {u})
    return _edges({(v, m) for v in smaller | {u} if v != m})


def fingerprint(batch: pa.Table) -> pa.Table:
    """An order-free digest of a block of edges (their count and the sum of their hashes)."""
    total = sum(xxhash.xxh64_intdigest(f"{u}\0\0{v}".encode()) for u, v in
                zip(batch.column("u").to_pylist(), batch.column("v").to_pylist())) % (1 << 64)
    return pa.table({"edges": [batch.num_rows], "digest": [str(total)]})


def removed_of_star(group: pa.Table) -> pa.Table:
    """A converged component (every member linked to its smallest, grouped by it) → the removed files."""
    root = group.column("v")[0].as_py()
    members = sorted(set(group.column("u").to_pylist()) - {root})
    return pa.table({"id": [record_id_of(m) for m in members], "survivor_id": [record_id_of(root)] * len(members),
                     "cluster_size": [len(members) + 1] * len(members)}, schema=REMOVED)
