"""Exact and near dedup on real code: fixed survivor rule, MinHash signatures, components."""
import random

import numpy as np
import pytest
import pyarrow as pa

from codecorpus.stages import minhash
from codecorpus.stages.exact_dedup import add_content_hash, keep_first_of_group
from codecorpus.stages.near_dedup import HEADS, bucket_pairs, keep_in_order, lsh_params, verified_edges, with_signature
from codecorpus.stages.per_file import NearDedupSettings, band_rows as _band_rows
from codecorpus.stages.records import RECORD_SCHEMA, rank_key


def band_rows(table, num_perm, ngram, seed, bands, rows):
    return _band_rows(add_content_hash(table), NearDedupSettings(num_perm, ngram, seed, bands, rows))[0]


def near_dedup_by_hand(table, block=None, threshold=0.7, exact_dedup=False):
    """The near-dedup stage's functions over blocks of `block` rows, with the shuffles done by hand
    (buckets grouped by band key; the whole table one partition by id): the removed files."""
    bands, rows = lsh_params(threshold, 256)
    block = block or table.num_rows
    parts = [_band_rows(add_content_hash(table.slice(i, block)), NearDedupSettings(256, 5, 1, bands, rows))
             for i in range(0, table.num_rows, block)]
    keyed, signatures = pa.concat_tables([p[0] for p in parts]), pa.concat_tables([p[1] for p in parts])
    groups = {}
    for i, key in enumerate(keyed.column("band_key").to_pylist()):
        groups.setdefault(key, []).append(i)
    pairs = pa.concat_tables([bucket_pairs(keyed.take(ix), exact_dedup=exact_dedup) for ix in groups.values()])
    edges = verified_edges(with_signature(pairs, signatures), signatures.rename_columns(["other_id", "signature"]), threshold)
    return keep_in_order(edges)


def union_find(edges):
    """Connected components by union-find, the reference for the distributed rounds: (id, survivor_id,
    cluster_size) of every member but each component's smallest (rank_key, id)."""
    parent, rank = {}, {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, ra, b, rb in zip(*(edges.column(c).to_pylist() for c in ("id", "rank_key", "other_id", "other_rank_key"))):
        for node, r in ((a, ra), (b, rb)):
            if node not in parent:
                parent[node], rank[node] = node, r
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            lo, hi = sorted((root_a, root_b), key=lambda n: (rank[n], n))
            parent[hi] = lo
    roots = {node: find(node) for node in parent}
    sizes = {}
    for root in roots.values():
        sizes[root] = sizes.get(root, 0) + 1
    removed = sorted((node, root) for node, root in roots.items() if node != root)
    return pa.table({"id": [n for n, _ in removed], "survivor_id": [r for _, r in removed],
                     "cluster_size": [sizes[r] for _, r in removed]},
                    schema=pa.schema([("id", pa.string()), ("survivor_id", pa.string()), ("cluster_size", pa.int64())]))


def greedy_by_hand(edges):
    """keep_in_order's rule written the slow, obvious way: the reference for its tests."""
    label = lambda r, i: (r, i)   # noqa: E731
    rows = edges.to_pylist()
    nodes = sorted({label(r["rank_key"], r["id"]) for r in rows} | {label(r["other_rank_key"], r["other_id"]) for r in rows})
    kept, removed = set(), {}
    for node in nodes:
        near = []
        for r in rows:
            ends = {label(r["rank_key"], r["id"]), label(r["other_rank_key"], r["other_id"])}
            if node in ends and len(ends) == 2:
                (other,) = ends - {node}
                if other < node and other in kept:
                    near.append((-r["similarity"], other))
        if near:
            sim, other = min(near)
            removed[node[1]] = (other[1], -sim)
        else:
            kept.add(node)
    return removed


def records(items):
    rows = [dict(id=f"id{i}", source="s", repo=repo, path=path, license=None, language="Python", text=text,
                 size=len(text), rank_key=rank_key(prio, repo, path), status="kept", reason=None)
            for i, (prio, repo, path, text) in enumerate(items)]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def test_exact_survivor_is_fixed_not_arrival_order(stdlib_texts):
    code = stdlib_texts[0]
    items = [(1, "b", "x.py", code), (0, "z", "y.py", code.replace("\n", "  \n")), (1, "a", "x.py", code)]
    for order in (items, items[::-1]):
        batch = add_content_hash(records(order))
        assert len(set(batch.column("content_hash").to_pylist())) == 1  # whitespace-normalised
        out = keep_first_of_group(batch).to_pylist()
        kept = [r for r in out if r["status"] == "kept"]
        assert [(r["repo"], r["path"]) for r in kept] == [("z", "y.py")]  # priority 0 wins
        assert sum(r["reason"] == "exact_duplicate" for r in out) == 2


def test_signatures_estimate_jaccard_on_real_edits(stdlib_texts):
    """Agreement of two signatures estimates the exact Jaccard of the shingle sets (one-permutation
    MinHash with densification): unbiased, and within ±0.09 (3σ at 256 bins) on real edited files;
    files in one batch get the signatures they get alone."""
    rng = np.random.default_rng(2)
    errors = []
    for i, text in enumerate(stdlib_texts[:40]):
        edited = _edit(text, float(rng.uniform(0.0, 0.5)), seed=i)
        sig, present = minhash.signatures([text, edited], 256, 5, 1)
        exact = minhash.jaccard(*minhash.shingle_sets([text, edited], 5))
        errors.append(minhash.estimated_jaccard(sig[0], sig[1]) - exact)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.02 and np.abs(errors).max() < 0.09
    batch, present = minhash.signatures(stdlib_texts[:12] + ["x", "", "   \n"], 256, 5, 3)
    assert present.tolist() == [True] * 13 + [False, False]
    for i, text in enumerate(stdlib_texts[:12]):
        assert np.array_equal(minhash.signatures([text], 256, 5, 3)[0][0], batch[i])


def test_whitespace_does_not_change_shingles_and_punctuation_counts():
    a = "def f(x):\n    return x + 1\n"
    b = "def  f( x ):\n\treturn x+1"
    assert np.array_equal(*minhash.shingle_sets([a, b], 5))
    assert not np.array_equal(*minhash.shingle_sets([a, a.replace("+", "-")], 5))


def _edit(text, rate, seed):
    rng = random.Random(seed)
    lines = text.splitlines()
    for i in rng.sample(range(len(lines)), int(len(lines) * rate)):
        lines[i] = lines[i] + "  # edited"
    return "\n".join(lines)


def test_near_duplicates_cluster_and_others_do_not(stdlib_texts):
    bands, rows = lsh_params(0.7, 256)
    assert bands * rows <= 256
    base = stdlib_texts[2]
    items = [(0, "orig", "m.py", base), (1, "fork1", "m.py", _edit(base, 0.03, 1)), (1, "fork2", "m.py", _edit(base, 0.03, 2))]
    items += [(0, f"other{i}", "o.py", t) for i, t in enumerate(stdlib_texts[3:20])]
    removed = near_dedup_by_hand(records(items)).to_pylist()
    assert {r["id"] for r in removed} == {"id1", "id2"}
    assert {r["survivor_id"] for r in removed} == {"id0"}
    assert all(r["cluster_size"] == 3 and 0.8 < r["similarity"] < 1 for r in removed)


def _edges(rows):
    return pa.table({"id": [r[0] for r in rows], "rank_key": [r[1] for r in rows], "other_id": [r[2] for r in rows],
                     "other_rank_key": [r[3] for r in rows], "similarity": [r[4] for r in rows]})


def test_no_chains_a_file_goes_only_next_to_a_kept_file():
    """a~b and b~c but not a~c: b goes (next to a, kept), c stays — it resembles only b, which went.
    d resembles both a and e (kept, more similar): it is attributed to the most similar kept file."""
    edges = _edges([("b", "2", "a", "1", 0.8), ("c", "3", "b", "2", 0.9), ("f", "6", "e", "0", 0.75),
                    ("d", "4", "a", "1", 0.72), ("d", "4", "e", "0", 0.95)])
    removed = {r["id"]: (r["survivor_id"], r["similarity"], r["cluster_size"]) for r in keep_in_order(edges).to_pylist()}
    assert removed == {"b": ("a", 0.8, 2), "d": ("e", 0.95, 3), "f": ("e", 0.75, 3)}


def test_a_large_bucket_pairs_each_file_with_its_first_files_only():
    n = 100
    bucket = pa.table({"band_key": [7] * n, "id": [f"f{i:03d}" for i in range(n)],
                       "rank_key": [rank_key(0, "r", f"p{i:03d}.py") for i in range(n)]})
    pairs = bucket_pairs(bucket)
    assert pairs.num_rows == sum(min(p, HEADS) for p in range(n))
    assert set(pairs.column("other_id").to_pylist()) == {f"f{i:03d}" for i in range(HEADS)}
    small = bucket.slice(0, 20)
    assert bucket_pairs(small, heads=20).num_rows == 20 * 19 // 2


def test_signatures_verify_pairs_by_their_estimated_jaccard(stdlib_texts):
    """A candidate pair counts only when the signatures agree in ≥ threshold of their bins; the
    similarity recorded is that agreement."""
    base = stdlib_texts[6]
    texts = [base, _edit(base, 0.05, 1), _edit(base, 0.6, 2)]
    table = records([(0, "r", f"v{i}.py", t) for i, t in enumerate(texts)])
    _, signatures = _band_rows(add_content_hash(table), NearDedupSettings(256, 5, 1, 32, 8))
    pairs = pa.table({"id": ["id1", "id2"], "rank_key": ["b", "c"], "other_id": ["id0", "id0"], "other_rank_key": ["a", "a"]})
    edges = verified_edges(with_signature(pairs, signatures), signatures.rename_columns(["other_id", "signature"]), 0.7)
    sig, _ = minhash.signatures(texts, 256, 5, 1)
    assert minhash.estimated_jaccard(sig[0], sig[2]) < 0.7 <= minhash.estimated_jaccard(sig[0], sig[1])
    assert edges.column("id").to_pylist() == ["id1"]
    assert edges.column("similarity")[0].as_py() == minhash.estimated_jaccard(sig[0], sig[1])


def test_keep_in_order_equals_the_rule_written_by_hand():
    rng = np.random.default_rng(8)
    for trial in range(30):
        n = int(rng.integers(2, 25))
        ids = [f"id{i:02d}" for i in range(n)]
        ranks = [rank_key(int(rng.integers(0, 2)), f"r{rng.integers(0, 3)}", f"p{i}.py") for i in range(n)]
        pairs = {tuple(sorted(p)) for p in rng.integers(0, n, (int(rng.integers(1, 3 * n)), 2)).tolist() if p[0] != p[1]}
        edges = _edges([(ids[i], ranks[i], ids[j], ranks[j], float(rng.integers(180, 256)) / 256) for i, j in sorted(pairs)])
        got = {r["id"]: (r["survivor_id"], r["similarity"]) for r in keep_in_order(edges).to_pylist()}
        assert got == greedy_by_hand(edges)


def _rounds(edges: pa.Table) -> pa.Table:
    """The build's large-star / small-star rounds, with the shuffle done by hand (group by u)."""
    from codecorpus.stages import components as cc

    def by_u(table, fn):
        groups = {}
        for u, v in zip(table.column("u").to_pylist(), table.column("v").to_pylist()):
            groups.setdefault(u, []).append(v)
        out = [fn(pa.table({"u": [u] * len(vs), "v": vs}, schema=cc.EDGES)) for u, vs in sorted(groups.items())]
        return pa.concat_tables(out) if out else cc.EDGES.empty_table()

    previous = None
    while True:
        edges = by_u(cc.larger_first(by_u(cc.both_directions(edges), cc.large_star)), cc.small_star)
        state = sorted(zip(edges.column("u").to_pylist(), edges.column("v").to_pylist()))
        if state == previous:
            break
        previous = state
    groups = {}
    for u, v in state:
        groups.setdefault(v, []).append(u)
    out = [cc.removed_of_star(pa.table({"u": us, "v": [v] * len(us)}, schema=cc.EDGES)) for v, us in sorted(groups.items())]
    return pa.concat_tables(out).sort_by("id") if out else cc.REMOVED.empty_table()


def test_distributed_components_equal_union_find():
    """Random graphs (chains, stars, many small clusters): the large-star/small-star rounds find the same
    components and the same survivors as union-find."""
    from codecorpus.stages import components as cc
    rng = np.random.default_rng(5)
    for trial in range(20):
        n = int(rng.integers(2, 60))
        ids = [f"id{i:03d}" for i in range(n)]
        ranks = [rank_key(int(rng.integers(0, 3)), f"repo{rng.integers(0, 4)}", f"p{i}.py") for i in range(n)]
        m = int(rng.integers(1, 2 * n))
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        if trial % 5 == 0:                                  # a long chain
            a, b = np.arange(n - 1), np.arange(1, n)
        pairs = [(i, j) for i, j in zip(a.tolist(), b.tolist()) if i != j]
        candidate = pa.table({"id": [ids[i] for i, _ in pairs], "rank_key": [ranks[i] for i, _ in pairs],
                              "other_id": [ids[j] for _, j in pairs], "other_rank_key": [ranks[j] for _, j in pairs]})
        expected = union_find(candidate).sort_by("id")
        assert _rounds(cc.from_candidate_pairs(candidate)).equals(expected)


def test_exact_jaccard_check_keeps_only_similar_candidates(stdlib_texts):
    a, b = stdlib_texts[4], stdlib_texts[9]
    edited = _edit(a, 0.02, seed=1)
    texts = {"a": a, "a2": edited, "b": b}
    sets = dict(zip(texts, minhash.shingle_sets(list(texts.values()), 5)))
    assert minhash.jaccard(sets["a"], sets["a2"]) > 0.7 > minhash.jaccard(sets["a"], sets["b"])
    bucket = pa.table({"band_key": [1, 1, 1], "id": list(texts), "rank_key": [rank_key(0, "r", k) for k in texts],
                       "shingles": pa.array([sets[k].tobytes() for k in texts], pa.large_binary())})
    everything = bucket_pairs(bucket)                       # every pair of a small bucket is a candidate
    checked = bucket_pairs(bucket, threshold=0.7)
    assert everything.num_rows == 3 and checked.num_rows == 1
    assert {checked.column("id")[0].as_py(), checked.column("other_id")[0].as_py()} == {"a", "a2"}
    assert checked.column("similarity")[0].as_py() == minhash.jaccard(sets["a"], sets["a2"])


def test_buckets_leave_out_exact_copies_as_exact_dedup_does(stdlib_texts):
    """Exact copies share every bucket; with exact dedup on, a bucket keeps only the copy exact dedup
    keeps, so near dedup sees what it saw when it ran on exact dedup's output."""
    text = stdlib_texts[5]
    items = [(1, "b", "x.py", text), (0, "z", "y.py", text.replace("\n", "  \n")), (1, "c", "m.py", _edit(text, 0.03, 1))]
    table = records(items)
    bands, rows = lsh_params(0.7, 256)
    keyed = band_rows(table, 256, 5, 1, bands, rows)
    groups = {}
    for i, key in enumerate(keyed.column("band_key").to_pylist()):
        groups.setdefault(key, []).append(i)
    edges = pa.concat_tables([bucket_pairs(keyed.take(ix), exact_dedup=True) for ix in groups.values()])
    ids = set(edges.column("id").to_pylist()) | set(edges.column("other_id").to_pylist())
    assert ids == {"id1", "id2"}          # id0 is an exact copy of id1 (priority 0 wins), left out


def _survivors(table: pa.Table, block: int) -> set[str]:
    return set(table.column("id").to_pylist()) - set(near_dedup_by_hand(table, block).column("id").to_pylist())


def test_survivors_do_not_depend_on_blocks_or_input_order(stdlib_texts):
    texts = stdlib_texts[:30] + [_edit(t, 0.03, seed=i) for i, t in enumerate(stdlib_texts[:30])]
    rows = [dict(id=f"f{i:02d}", source="s", repo="r", path=f"p{i}.py", license=None, language="Python", text=t,
                 size=len(t), rank_key=rank_key(i % 3, "r", f"p{i}.py"), status="kept", reason=None) for i, t in enumerate(texts)]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    shuffled = table.take(np.random.default_rng(3).permutation(table.num_rows))
    reference = _survivors(table, table.num_rows)
    assert len(reference) < table.num_rows                      # the edited copies were found
    assert _survivors(table, 7) == reference == _survivors(shuffled, 11) == _survivors(shuffled, 1)


def test_survivor_rule_prefers_priority_then_a_permissive_license():
    from codecorpus.stages.records import new_record
    gpl = new_record("a", "zz", "x.py", 0, license="gpl-3.0")["rank_key"]
    mit = new_record("a", "zz", "x.py", 0, license="mit")["rank_key"]
    unknown = new_record("a", "aa", "x.py", 0)["rank_key"]
    other_source = new_record("b", "aa", "x.py", 1, license="mit")["rank_key"]
    assert sorted([other_source, unknown, gpl, mit]) == [mit, unknown, gpl, other_source]


def test_cluster_report_from_any_blocks_equals_the_whole():
    """The cluster report is summarised block by block (no task holds every removed file): any split
    of the removed rows gives the same counts, histogram and largest clusters as the whole."""
    from codecorpus.stages.near_dedup import cluster_summary, merge_cluster_summaries
    rng = np.random.default_rng(11)
    n = 400
    ids = [f"id{i:03d}" for i in range(n)]
    ranks = [rank_key(0, "r", f"p{i:03d}.py") for i in range(n)]
    a, b = rng.integers(0, n, 300), rng.integers(0, n, 300)
    pairs = [(i, j) for i, j in zip(a.tolist(), b.tolist()) if i != j]
    removed = keep_in_order(_edges([(ids[i], ranks[i], ids[j], ranks[j], float(rng.uniform(0.7, 1))) for i, j in pairs]))
    whole = merge_cluster_summaries([cluster_summary(removed, top=5)], top=5)
    sizes = {}
    for survivor, size in zip(removed.column("survivor_id").to_pylist(), removed.column("cluster_size").to_pylist()):
        sizes[survivor] = size
    assert whole["clusters"] == len(sizes) and whole["removed"] == removed.num_rows
    assert sum(int(s) * c for s, c in whole["size_histogram"].items()) == removed.num_rows + len(sizes)
    assert [c["size"] for c in whole["largest"]] == sorted(sizes.values(), reverse=True)[:5]
    for trial in range(5):
        order = rng.permutation(removed.num_rows)
        cuts = sorted(rng.choice(np.arange(1, removed.num_rows), size=6, replace=False).tolist())
        shuffled = removed.take(pa.array(order))
        blocks = [shuffled.slice(lo, hi - lo) for lo, hi in zip([0, *cuts], [*cuts, removed.num_rows])]
        assert merge_cluster_summaries([cluster_summary(blk, top=5) for blk in blocks], top=5) == whole


@pytest.mark.slow
def test_distributed_components_on_ray_shuffles(tmp_path):
    """The build's path: large-star/small-star rounds over file shuffles by plain Ray tasks (many
    partitions, edges spread over many input files) find the components union-find finds, with the
    same survivors; and keeping in order component by component after a shuffle by component removes
    exactly what keep_in_order removes over all edges at once."""
    import pyarrow.parquet as pq
    import ray

    from codecorpus.pipeline.dedup import keep_in_order_by_shuffles, star_components

    rng = np.random.default_rng(11)
    n = 1500
    ids = [f"id{i:05d}" for i in range(n)]
    ranks = [rank_key(int(rng.integers(0, 3)), f"repo{rng.integers(0, 50)}", f"p{i}.py") for i in range(n)]
    a = rng.integers(0, n, 1200)
    b = np.clip(a + rng.integers(-30, 30, a.size), 0, n - 1)                 # many clusters, some long chains
    pairs = [(i, j) for i, j in zip(a.tolist(), b.tolist()) if i != j]
    candidate = _edges([(ids[i], ranks[i], ids[j], ranks[j], float(rng.uniform(0.7, 1))) for i, j in pairs])
    expected = union_find(candidate).sort_by("id")
    edges = tmp_path / "edges"
    edges.mkdir()
    for k, i in enumerate(range(0, candidate.num_rows, 200)):
        pq.write_table(candidate.slice(i, 200), str(edges / f"e-{k:03d}.parquet"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        files, rounds = star_components(sorted(edges.glob("*.parquet")), tmp_path / "work", partitions=7)
        got = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id")
        files, _ = keep_in_order_by_shuffles(sorted(edges.glob("*.parquet")), tmp_path / "work2", partitions=7)
        kept_in_order = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id")
    finally:
        ray.shutdown()
    assert rounds > 1 and got.num_rows > 500
    assert got.equals(expected)
    assert kept_in_order.equals(keep_in_order(candidate)) and kept_in_order.num_rows < got.num_rows
