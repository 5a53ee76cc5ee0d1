"""The documents step of a repository-document build (`packing.documents = "repo"`): which document
each file goes into, and at what position.

The files' metadata (ids, paths, token counts, import references: no token ids) is shuffled by
repository, so one task sees a whole repository's list of files however its files were spread;
each repository is ordered (stages/repo_order.py) and cut into documents of at most
`packing.max_document_tokens`. The assignments are then shuffled back by the 08_tokenize file
their files are in, written as `stages/09_documents/p-NNNNN.parquet` (one per 08_tokenize file),
so that packing joins each token file with its own small assignment file: no task ever holds a
repository's token ids, only a shard's worth (stages/pack.py).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from codecorpus import storage
from codecorpus.pipeline.config import PackingConfig
from codecorpus.pipeline.rundir import DOCUMENTS, RunDir
from codecorpus.pipeline.shuffle import shuffle
from codecorpus.stages.encode import repo_key
from codecorpus.stages.records import DOCUMENTS_SCHEMA
from codecorpus.stages.repo_order import cut, order_files
from codecorpus.storage import parquet_files

META = ["id", "source", "repo", "path", "language", "num_tokens", "header", "imports", "provides", "status", "repo_doc"]
STAT_KEYS = ("repositories", "documents", "files", "references", "resolved", "edges", "cycles_broken")


def documents(run: RunDir, pcfg: PackingConfig, partitions: int) -> dict:
    """Write stages/09_documents; returns what it found (repositories, documents, files, references
    and those resolved, dependency edges, cycles broken)."""
    token_files = parquet_files(run.stage_dir("08_tokenize"))
    final = run.stage_dir(DOCUMENTS)
    tmp = run.temp_for(final)
    storage.make_dirs(tmp)
    staged, scratch = storage.join(run.work, "documents"), storage.join(run.work, "shuffle")
    storage.empty_folder(staged)
    stats = shuffle({"meta": token_files}, "repo_key", partitions, scratch, _order_repos,
                    dict(out_dir=staged, order=pcfg.order, max_tokens=pcfg.max_document_tokens, seed=pcfg.seed),
                    columns={"meta": META}, transform={"meta": (_repo_files, {})}, index_column="part")
    if parquet_files(staged):
        shuffle({"docs": parquet_files(staged)}, "part", max(1, len(token_files)), scratch, _write_part,
                dict(out_dir=tmp))
    storage.remove(staged)
    run.publish(tmp, final)
    return {k: int(sum(s[k] for s in stats)) for k in STAT_KEYS}


def _repo_files(table: pa.Table) -> pa.Table:
    table = table.filter(pc.and_(pc.equal(table.column("status"), "kept"), table.column("repo_doc")))
    keys = [repo_key(s, r) for s, r in zip(table.column("source").to_pylist(), table.column("repo").to_pylist())]
    header = pc.list_value_length(table.column("header")).cast(pa.int32())
    return (table.drop_columns(["header", "status", "repo_doc"]).append_column("repo_key", pa.array(keys, pa.string()))
            .append_column("header_tokens", header))


def _order_repos(table: pa.Table, partition: int, out_dir: str, order: str, max_tokens: int, seed: int) -> dict:
    """Order and cut every repository of one partition; writes the assignments, returns the counts."""
    stats = dict.fromkeys(STAT_KEYS, 0)
    if table.num_rows == 0:
        return stats
    table = table.take(pc.sort_indices(table, [("repo_key", "ascending"), ("path", "ascending"), ("id", "ascending")]))
    cols = {c: table.column(c).to_pylist() for c in ("id", "repo", "path", "imports", "provides", "num_tokens", "header_tokens")}
    keys = table.column("repo_key").to_numpy(zero_copy_only=False)
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    take, document, position, last, resolved, depends, cycle, broke = [], [], [], [], [], [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        ids, paths = cols["id"][lo:hi], cols["path"][lo:hi]
        found = order_files(paths, ids, cols["imports"][lo:hi], cols["provides"][lo:hi], order, seed, cols["repo"][lo])
        sizes = [cols["num_tokens"][lo + i] for i in found.order]
        docs = cut(sizes, cols["header_tokens"][lo], max_tokens)
        for k, (i, doc) in enumerate(zip(found.order, docs)):
            take.append(lo + i)
            document.append(doc)
            position.append(0 if k == 0 or docs[k - 1] != doc else position[-1] + 1)
            last.append(k + 1 == len(docs) or docs[k + 1] != doc)
            resolved.append(found.resolved[i])
            depends.append(sorted(ids[j] for j in found.depends_on[i]))
            cycle.append(found.cycle[i])
            broke.append(i in found.broke)
        stats["repositories"] += 1
        stats["documents"] += docs[-1] + 1
        stats["files"] += hi - lo
        stats["references"] += sum(len(r) for r in cols["imports"][lo:hi])
        stats["resolved"] += sum(found.resolved)
        stats["edges"] += sum(map(len, found.depends_on))
        stats["cycles_broken"] += found.cycles_broken
    rows = table.take(pa.array(take, pa.int64()))
    out = pa.table({
        "source": rows.column("source"), "repo": rows.column("repo"), "document": pa.array(document, pa.int32()),
        "position": pa.array(position, pa.int32()), "id": rows.column("id"), "path": rows.column("path"),
        "language": rows.column("language"), "tokens": rows.column("num_tokens"),
        "header_tokens": rows.column("header_tokens"), "last": pa.array(last, pa.bool_()),
        "references": pc.list_value_length(rows.column("imports")).cast(pa.int32()), "resolved": pa.array(resolved, pa.int32()),
        "depends_on": pa.array(depends, pa.list_(pa.string())), "cycle": pa.array(cycle, pa.int32()),
        "broke_cycle": pa.array(broke, pa.bool_()), "part": rows.column("part"),
    }, schema=DOCUMENTS_SCHEMA)
    with storage.Output(storage.join(out_dir, f"p-{partition:05d}.parquet")) as local:
        pq.write_table(out, local)
    return stats


def _write_part(table: pa.Table, partition: int, out_dir: str) -> None:
    if table.num_rows:
        table = table.take(pc.sort_indices(table, [("source", "ascending"), ("repo", "ascending"),
                                                   ("document", "ascending"), ("position", "ascending")]))
        with storage.Output(storage.join(out_dir, f"p-{partition:05d}.parquet")) as local:
            pq.write_table(table, local)
