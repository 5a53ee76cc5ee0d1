"""The dedup steps of a build: exact dedup by a shuffle of content hashes, near dedup by a shuffle of
LSH buckets, connected components and the marking. Both work on the records' keys (no text: the
text stays where the per-file pass wrote it), and write each stage's records without text, with
`status` and `reason`, so their books and rejects are kept like every other stage's."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from codecorpus import storage
from codecorpus.pipeline.config import NearDedupConfig
from codecorpus.pipeline.execute import StageRunner
from codecorpus.pipeline.rundir import CLUSTERS
from codecorpus.pipeline.shuffle import shuffle
from codecorpus.stages import components, exact_dedup as exact, near_dedup as lsh
from codecorpus.stages.per_file import KEPT_SCHEMA
from codecorpus.stages.records import mark
from codecorpus.storage import parquet_files

KEY_COLUMNS = [c for c in KEPT_SCHEMA.names if c != "text"]   # a record without its text, with content_hash


def exact_dedup(runner: StageRunner, enabled: bool) -> dict:
    """One survivor per content hash: a shuffle of the kept records' keys (no text) by hash. Returns the books."""
    return runner.shuffle_stage("05_exact_dedup", {"keys": parquet_files(runner.run.files("kept"))}, "content_hash",
                                exact.keep_first_of_group if enabled else _without_hash, columns={"keys": KEY_COLUMNS})


def _without_hash(records: pa.Table) -> pa.Table:
    return records.drop_columns(["content_hash"])


def near_dedup(runner: StageRunner, near: NearDedupConfig, exact_enabled: bool, fingerprint: str) -> tuple[dict, dict]:
    """Candidate pairs (LSH buckets of the per-file pass's band rows, exact copies left out as exact
    dedup left them out), verified by their signatures (two shuffles by id joining the per-file pass's
    signatures; or by exact Jaccard in the buckets, `exact_jaccard`), then the files each component
    keeps in survivor order (stages.near_dedup.keep_in_order), the cluster report, and the duplicates
    marked. Edges and removals are kept in the run under the stage's fingerprint, so a crash after them
    does not redo them. Small graphs: one task; large ones (`components`): large-star/small-star rounds
    of shuffles label the components and a shuffle by component hands each whole to one task — no
    process holds all edges. The marking is a shuffle of the records' keys and the removed ids by id.
    Returns (the stage's books, the cluster report)."""
    run = runner.run
    kept_05 = {"keys": parquet_files(run.stage_dir("05_exact_dedup"))}
    if not near.enabled:
        return runner.shuffle_stage("06_near_dedup", kept_05, "id", _kept_rows), {}
    removed_dir = storage.join(run.stages, CLUSTERS)
    edges_dir = storage.join(run.work, "near_dedup_edges")
    if not run.checkpoint_is(edges_dir, fingerprint):
        tmp = run.temp_for(edges_dir)
        storage.make_dirs(tmp)
        verified_edges(parquet_files(run.files("bands")), parquet_files(run.files("signatures")),
                       tmp, run.work, runner.partitions, near.threshold, near.exact_jaccard, exact_enabled)
        run.publish(tmp, edges_dir)
        run.mark_checkpoint(edges_dir, fingerprint)
    if not run.checkpoint_is(removed_dir, fingerprint):
        tmp = run.temp_for(removed_dir)
        removed_files(runner, near, edges_dir, tmp)
        run.publish(tmp, removed_dir)
        run.mark_checkpoint(removed_dir, fingerprint)
    clusters = cluster_report(removed_dir, [run.stage_dir("05_exact_dedup")])
    books = runner.shuffle_stage("06_near_dedup", {**kept_05, "removed": parquet_files(removed_dir)}, "id", _mark_removed,
                                 columns={"removed": ["id"]}, schemas={"removed": pa.schema([("id", pa.string())])})
    return books, clusters


def removed_files(runner: StageRunner, near: NearDedupConfig, edges_dir: str, out_dir: str) -> None:
    """The files near dedup removes, each with the kept file it duplicates, from the verified edges in
    `edges_dir`, written to `out_dir`: in one task, or by shuffles where the graph is large."""
    distributed = near.components == "distributed" or (
        near.components == "auto" and _parquet_rows(edges_dir) > near.local_max_edges)
    if distributed:
        rounds = distributed_keep_in_order(edges_dir, out_dir, runner.run.work, runner.partitions)
        runner.echo(f"  {'components':<15} distributed large-star/small-star converged after {rounds} round(s)")
    else:
        ray.get(_local_keep_in_order.remote(edges_dir, out_dir))


def verified_edges(band_files: list[str], signature_files: list[str], out_dir: str, work: str, partitions: int,
                   threshold: float, exact_jaccard: bool, exact_dedup: bool) -> None:
    """The edges of the near-duplicate graph, written to `out_dir`: candidate pairs from a shuffle of
    the band rows by bucket key, then (unless exact Jaccard was checked in the buckets) a shuffle by
    `id` that attaches that file's signature and one by `other_id` that compares it with the other's."""
    candidates = out_dir if exact_jaccard else storage.join(work, "near_dedup_pairs")
    signed, scratch = storage.join(work, "near_dedup_signed"), storage.join(work, "shuffle")
    for folder in {candidates, signed}:
        storage.empty_folder(folder)
    shuffle(inputs={"bands": band_files}, key="band_key", partitions=partitions, work=scratch, fn=write_table,
            fn_kwargs={"out_dir": candidates, "fn": lsh.bucket_pairs,
                       "fn_kwargs": {"threshold": threshold if exact_jaccard else None, "exact_dedup": exact_dedup}})
    if not exact_jaccard and parquet_files(candidates):
        shuffle({"pairs": parquet_files(candidates), "signatures": signature_files}, "id", partitions, scratch,
                write_table, {"out_dir": signed, "fn": lsh.with_signature}, schemas={"pairs": lsh.PAIR_SCHEMA})
        shuffle({"pairs": parquet_files(signed), "signatures": signature_files}, "other_id", partitions, scratch,
                write_table, {"out_dir": out_dir, "fn": lsh.verified_edges, "fn_kwargs": {"threshold": threshold}},
                transform={"signatures": (_keyed_by_other, {})})
    for folder in {candidates, signed} - {out_dir}:
        storage.remove(folder)


def _keyed_by_other(signatures: pa.Table) -> pa.Table:
    """Signatures partitioned like pairs by `other_id` (verified_edges renames them back)."""
    return signatures.rename_columns(["other_id", "signature"])


def _kept_rows(keys: pa.Table) -> pa.Table:
    return keys.filter(pc.equal(keys.column("status"), "kept"))


def _mark_removed(keys: pa.Table, removed: pa.Table) -> pa.Table:
    """The kept records of one id partition, those among `removed` marked near duplicates."""
    keys = _kept_rows(keys)
    hit = pc.is_in(keys.column("id"), value_set=removed.column("id").combine_chunks())
    return mark(keys, pc.if_else(hit, pa.scalar("near_duplicate"), pa.scalar(None, pa.string())))


def cluster_report(removed_dir: str, records_dirs: list[str]) -> dict:
    """Sizes and the largest clusters, summarised file by file; only those clusters are named (their
    repository and path looked up in the stage folders `records_dirs`)."""
    parts = ray.get([_cluster_summary.remote(f) for f in parquet_files(removed_dir)])
    report = lsh.merge_cluster_summaries(parts)
    ids = sorted({i for c in report["largest"] for i in [c["survivor"], *c["members"]]})
    return lsh.name_clusters(report, ray.get(_names.remote([f for d in records_dirs for f in parquet_files(d)], ids)))


def distributed_keep_in_order(edges_dir: str, out_dir: str, work: str, partitions: int) -> int:
    """`keep_in_order_by_shuffles` over the edges in `edges_dir`: the removed files written to
    `out_dir`. Returns the large-star/small-star rounds it took."""
    files, round_number = keep_in_order_by_shuffles(parquet_files(edges_dir), work, partitions)
    storage.make_dirs(out_dir)
    for f in files:
        storage.move(f, storage.join(out_dir, storage.basename(f)))
    storage.remove(storage.join(work, "near_dedup_kept"))
    return round_number


EDGES_PER_PARTITION = 500_000


def keep_in_order_by_shuffles(edge_files: list[str], work: str, partitions: int) -> tuple[list[str], int]:
    """Components labelled by iterated large-star / small-star over shuffles (until the edges stop
    changing), each edge given its component's label by a shuffle by id, then a shuffle by component:
    each task keeps in order whole components (stages.near_dedup.keep_in_order). Verified edges are
    few next to the records: their shuffles use at most one partition per EDGES_PER_PARTITION edges
    (a shuffle's cost is mostly its partitions × input files at this size). Returns (the files of the
    removed files, rounds run)."""
    edges = sum(_rows(f) for f in edge_files)
    partitions = max(2, min(partitions, -(-edges // EDGES_PER_PARTITION)))
    members, round_number = star_components(edge_files, work, partitions)
    labelled, out, scratch = (storage.join(work, n) for n in ("near_dedup_labelled", "near_dedup_kept", "shuffle"))
    for folder in (labelled, out):
        storage.empty_folder(folder)
    if edge_files:
        shuffle({"edges": edge_files, "members": members}, "id", partitions, scratch, write_table,
                {"out_dir": labelled, "fn": lsh.with_component}, columns={"members": ["id", "survivor_id"]},
                schemas={"members": pa.schema([("id", pa.string()), ("survivor_id", pa.string())])})
        shuffle({"edges": parquet_files(labelled)}, "component", partitions, scratch, write_table,
                {"out_dir": out, "fn": lsh.keep_in_order})
    storage.remove(labelled)
    if members:
        storage.remove(storage.join(work, "star-removed"))
    return parquet_files(out), round_number


def star_components(edge_files: list[str], work: str, partitions: int, max_rounds: int = 200) -> tuple[list[str], int]:
    """Connected components of (verified) edges by large-star/small-star rounds (stages.components),
    each a pair of shuffles by node, until the edge set stops changing. Returns (files of the removed
    files with their survivors, rounds run)."""
    if not edge_files:
        return [], 0
    scratch = storage.join(work, "shuffle")
    files, transform = edge_files, (components.from_candidate_pairs, {})
    previous = None
    for round_number in range(1, max_rounds + 1):
        large = storage.join(work, f"star-{round_number}-large")
        small = storage.join(work, f"star-{round_number}-small")
        for folder in (large, small):
            storage.empty_folder(folder)
        shuffle({"edges": files}, "u", partitions, scratch, write_table,
                {"out_dir": large, "fn": components.large_star},
                transform={"edges": _chain(transform, (components.both_directions, {}))})
        digests = shuffle({"edges": parquet_files(large)}, "u", partitions, scratch, write_table,
                          {"out_dir": small, "fn": components.small_star, "digest": True},
                          transform={"edges": (components.larger_first, {})}, schemas={"edges": components.EDGES})
        if round_number > 1:
            storage.remove(storage.join(work, f"star-{round_number - 1}-small"))
        storage.remove(large)
        files, transform = parquet_files(small), None
        state = (sum(d[0] for d in digests if d), sum(d[1] for d in digests if d) % (1 << 64))
        if state == previous:
            break
        previous = state
    out = storage.join(work, "star-removed")
    storage.empty_folder(out)
    shuffle({"edges": files}, "v", partitions, scratch, write_table, {"out_dir": out, "fn": components.removed_of_star},
            schemas={"edges": components.EDGES})
    storage.remove(storage.join(work, f"star-{round_number}-small"))
    return parquet_files(out), round_number


def _chain(first: tuple | None, then: tuple) -> tuple:
    if first is None:
        return then
    return (_then, {"first": first, "then": then})


def _then(table: pa.Table, first: tuple, then: tuple) -> pa.Table:
    return then[0](first[0](table, **first[1]), **then[1])


def write_table(*tables: pa.Table, partition: int, out_dir: str, fn, fn_kwargs: dict | None = None, digest: bool = False,
                **groups: pa.Table):
    """A reducer that writes `fn`'s result for its partition (one table, or several input groups by
    name) as plain Parquet (intermediate data); with `digest`, returns (rows, an order-free hash of
    them) for the convergence test."""
    result = fn(*tables, **groups, **(fn_kwargs or {}))
    if result.num_rows:
        with storage.Output(storage.join(out_dir, f"p-{partition:05d}.parquet")) as local:
            pq.write_table(result, local)
    if digest:
        d = components.fingerprint(result)
        return (d.column("edges")[0].as_py(), int(d.column("digest")[0].as_py()))
    return None


def _rows(path: str) -> int:
    return pq.read_metadata(storage.parquet_source(path)).num_rows


def _parquet_rows(folder: str) -> int:
    return sum(_rows(f) for f in parquet_files(folder))


@ray.remote
def _local_keep_in_order(edges_dir: str, out_dir: str) -> None:
    """The files kept in order over all edges in this one task (small graphs): the removed files and
    the kept file each duplicates, written to `out_dir`."""
    files = parquet_files(edges_dir)
    edges = (pa.concat_tables([storage.read_parquet(f) for f in files]) if files
             else lsh.EDGE_SCHEMA.empty_table())
    removed = lsh.keep_in_order(edges.select(lsh.EDGE_SCHEMA.names))
    with storage.Output(storage.join(out_dir, "removed.parquet")) as local:
        pq.write_table(removed, local)


@ray.remote
def _cluster_summary(path: str) -> dict:
    return lsh.cluster_summary(storage.read_parquet(path))


@ray.remote
def _names(record_files: list[str], ids: list[str]) -> pa.Table:
    return storage.dataset(record_files).to_table(
        columns=["id", "repo", "path"], filter=pc.field("id").isin(pa.array(ids, pa.string())))
