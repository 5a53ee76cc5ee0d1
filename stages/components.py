"""Connected components of the near-duplicate graph by iterated large-star / small-star
(Kiveris et al., "Connected Components in MapReduce and Beyond", 2014), as functions on Arrow
tables that a shuffle (group by node) runs in parallel — no process ever holds all edges.

A node's label sorts like its survivor rule, (rank_key, id), so each component converges to a
star around its smallest member, whose id then names the component (near dedup then decides,
component by component, which files go: stages.near_dedup.keep_in_order). Edges are (u, v) label
pairs.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

EDGES = pa.schema([("u", pa.string()), ("v", pa.string())])
REMOVED = pa.schema([("id", pa.string()), ("survivor_id", pa.string()), ("cluster_size", pa.int64())])


def label(rank_key: str, record_id: str) -> str:
    """Sorts as (rank_key, id): the rank key's own NULs become \\x01 so that NUL can end it."""
    return rank_key.replace("\0", "\x01") + "\0" + record_id


def from_candidate_pairs(batch: pa.Table) -> pa.Table:
    """near_dedup's edges (id, rank_key, other_id, other_rank_key, …) as label edges."""
    return pa.table({"u": labels_of(batch.column("rank_key"), batch.column("id")),
                     "v": labels_of(batch.column("other_rank_key"), batch.column("other_id"))}, schema=EDGES)


def labels_of(rank_keys: pa.ChunkedArray, ids: pa.ChunkedArray) -> pa.ChunkedArray:
    """`label` of whole columns, in Arrow."""
    return pc.binary_join_element_wise(pc.replace_substring(rank_keys, "\0", "\x01"), ids, "\0")


def both_directions(batch: pa.Table) -> pa.Table:
    return pa.table({"u": pa.concat_arrays([batch.column("u").combine_chunks(), batch.column("v").combine_chunks()]),
                     "v": pa.concat_arrays([batch.column("v").combine_chunks(), batch.column("u").combine_chunks()])},
                    schema=EDGES)


def larger_first(batch: pa.Table) -> pa.Table:
    """Each edge keyed by its larger end (small-star groups a node with its smaller neighbours)."""
    u, v = batch.column("u"), batch.column("v")
    u_larger = pc.greater(u, v)
    return pa.table({"u": pc.if_else(u_larger, u, v), "v": pc.if_else(u_larger, v, u)}, schema=EDGES)


def _distinct(u: pa.ChunkedArray | pa.Array, v: pa.ChunkedArray | pa.Array) -> pa.Table:
    edges = pa.table({"u": u, "v": v}, schema=EDGES)
    return edges.group_by(["u", "v"]).aggregate([]).select(["u", "v"]).sort_by([("u", "ascending"), ("v", "ascending")])


def _smallest(edges: pa.Table) -> pa.Table:
    """(u, m): each node u of `edges` and the smallest of u and its neighbours there."""
    per_node = edges.group_by("u").aggregate([("v", "min")])
    u, v_min = per_node.column("u"), per_node.column("v_min")
    return pa.table({"u": u, "m": pc.if_else(pc.less(v_min, u), v_min, u)})


def _without_loops(edges: pa.Table) -> pa.Table:
    return edges.filter(pc.not_equal(edges.column("u"), edges.column("v")))


def large_star(edges: pa.Table) -> pa.Table:
    """Edges holding every neighbour of each of their nodes u (a hash partition by u): link every
    larger neighbour of u to the smallest of u and its neighbours."""
    edges = _without_loops(edges)
    joined = edges.filter(pc.greater(edges.column("v"), edges.column("u"))).join(_smallest(edges), "u", join_type="inner")
    return _distinct(joined.column("v"), joined.column("m"))


def small_star(edges: pa.Table) -> pa.Table:
    """Edges keyed by their larger end, holding every smaller neighbour of each of their nodes u:
    link u and each of those neighbours to the smallest of them."""
    edges = _without_loops(edges)
    smallest = _smallest(edges)
    joined = edges.join(smallest, "u", join_type="inner")
    joined = joined.filter(pc.not_equal(joined.column("v"), joined.column("m")))
    roots = smallest.filter(pc.not_equal(smallest.column("u"), smallest.column("m")))
    return _distinct(pa.chunked_array([*joined.column("v").chunks, *roots.column("u").chunks], pa.string()),
                     pa.chunked_array([*joined.column("m").chunks, *roots.column("m").chunks], pa.string()))


def fingerprint(batch: pa.Table) -> pa.Table:
    """An order-free digest of a block of edges (their count and the sum of their hashes)."""
    total = sum(xxhash.xxh64_intdigest(f"{u}\0\0{v}".encode()) for u, v in
                zip(batch.column("u").to_pylist(), batch.column("v").to_pylist())) % (1 << 64)
    return pa.table({"edges": [batch.num_rows], "digest": [str(total)]})


def removed_of_star(stars: pa.Table) -> pa.Table:
    """Converged components (every member linked to its smallest, all of a star's edges here, as a hash
    partition by v holds them) → the removed files, their survivor and the cluster size."""
    stars = _distinct(*_without_loops(stars).columns)
    sizes = stars.group_by("v").aggregate([("u", "count")])
    stars = stars.join(sizes, "v", join_type="inner").sort_by([("u", "ascending")])
    return pa.table({"id": record_ids(stars.column("u")), "survivor_id": record_ids(stars.column("v")),
                     "cluster_size": pc.add(stars.column("u_count"), 1).cast(pa.int64())}, schema=REMOVED)


def record_ids(labels: pa.ChunkedArray) -> pa.ChunkedArray:
    """The id after a label's separator (the rank key part holds no NUL)."""
    return pc.list_element(pc.split_pattern(labels, "\0", max_splits=1), 1)
