"""A hash shuffle of Parquet files by plain Ray tasks, through the run folder.

Map tasks (one per input file) read their file, optionally transform it, and write each row to the
partition its key hashes to: `WORK/p-PPPPP/GROUP-MMMMMM.parquet`. Reduce tasks (one per partition)
read everything of their partition, input group by input group, and hand it to a function that
treats the partition as a whole (vectorised, see stages.groups). Plain tasks reuse the pool's
worker processes, where Ray Data's hash shuffle starts aggregator actors — new processes — for
every shuffle (tens of seconds each on a small machine); and the data never needs more memory than
one input file in a map task or one partition in a reduce task. Partitions follow the keys only,
so the result does not depend on the number of workers, blocks or input files.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import xxhash

from codecorpus import storage
from codecorpus.pipeline.ray_runtime import as_completed



def partition_of(column: pa.ChunkedArray | pa.Array, partitions: int) -> np.ndarray:
    """Each key's partition: integers by their value, strings by xxh64."""
    if pa.types.is_integer(column.type):
        return (column.to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint64) % np.uint64(partitions)).astype(np.int64)
    return np.fromiter((xxhash.xxh64_intdigest(v.encode("utf-8", "surrogatepass")) % partitions for v in column.to_pylist()), dtype=np.int64, count=len(column))


def _map(path: str, group: str, index: int, key: str, partitions: int, work: str, columns: list[str] | None,
         transform: Callable[..., pa.Table] | None, transform_kwargs: dict, index_column: str | None = None) -> int:
    # a file read whole is one request in object storage; a few columns of a large one, ranged reads
    table = storage.read_parquet(path) if columns is None else pq.read_table(storage.parquet_source(path), columns=columns)
    if index_column:
        table = table.append_column(index_column, pa.array(np.full(table.num_rows, index, np.int32)))
    if transform is not None:
        table = transform(table, **transform_kwargs)
    if table.num_rows == 0:
        return 0
    target = partition_of(table.column(key), partitions)
    order = np.argsort(target, kind="stable")
    table, target = table.take(pa.array(order)), target[order]
    bounds = np.flatnonzero(np.r_[True, target[1:] != target[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        with storage.Output(storage.join(work, f"p-{target[lo]:05d}", f"{group}-{index:06d}.parquet")) as local:
            pq.write_table(table.slice(lo, hi - lo), local)
    return table.num_rows


def _reduce(work: str, partition: int, groups: dict[str, pa.Schema], fn: Callable, fn_kwargs: dict):
    written = storage.parquet_files(storage.join(work, f"p-{partition:05d}"))
    tables = {}
    for group, schema in groups.items():
        files = [f for f in written if storage.basename(f).startswith(f"{group}-")]
        tables[group] = (pa.concat_tables([storage.read_parquet(f) for f in files]).combine_chunks() if files
                         else schema.empty_table())
    if len(groups) > 1:
        return fn(**tables, partition=partition, **fn_kwargs)
    return fn(tables[next(iter(groups))], partition=partition, **fn_kwargs)


def _run(tasks: list) -> list:
    """Results of remote calls (a list of zero-argument submitters), in their order."""
    results = [None] * len(tasks)
    for index, result in as_completed(tasks):
        results[index] = result
    return results


def shuffle(inputs: dict[str, list[str]], key: str, partitions: int, work: str, fn: Callable, fn_kwargs: dict | None = None,
            columns: dict[str, list[str] | None] | None = None, transform: dict[str, tuple[Callable, dict]] | None = None,
            schemas: dict[str, pa.Schema] | None = None, index_column: str | None = None) -> list:
    """Shuffle the Parquet files of each input group by `key` into `partitions`, then return
    `fn(table, partition=p, **fn_kwargs)` (one group) or `fn(**{group: table}, partition=p, **fn_kwargs)` (several)
    for every partition, in partition order. `transform[group]` = (function, kwargs) runs on each input
    file in its map task; `schemas[group]` is the table a partition gets when no row of that group
    reached it (default: the first input file's schema, after the transform). `index_column`: a column
    added to each input file's rows before the transform, the file's index in its group's list."""
    storage.empty_folder(work)
    columns, transform = columns or {}, transform or {}
    map_task = ray.remote(_map)
    jobs = []
    for group, files in inputs.items():
        fn_t, kw_t = transform.get(group, (None, {}))
        for index, path in enumerate(files):
            jobs.append(lambda p=path, g=group, i=index, f=fn_t, k=kw_t: map_task.remote(
                p, g, i, key, partitions, work, columns.get(g), f, k, index_column))
    _run(jobs)
    schemas = dict(schemas or {})
    for group, files in inputs.items():
        if group not in schemas:
            fn_t, kw_t = transform.get(group, (None, {}))
            empty = pq.read_schema(storage.parquet_source(files[0])).empty_table() if files else pa.table({key: pa.array([], pa.string())})
            if columns.get(group):
                empty = empty.select(columns[group])
            if index_column:
                empty = empty.append_column(index_column, pa.array([], pa.int32()))
            schemas[group] = (fn_t(empty, **kw_t) if fn_t else empty).schema
    reduce_task = ray.remote(_reduce)
    results = _run([lambda p=p: reduce_task.remote(work, p, schemas, fn, fn_kwargs or {}) for p in range(partitions)])
    storage.remove(work)
    return results


def write_reduced(*tables: pa.Table, partition: int, out_dir: str, fn: Callable, fn_kwargs: dict | None = None,
                  **groups: pa.Table) -> dict | None:
    """A reducer that writes `fn`'s result for its partition as `out_dir/p-PPPPP.parquet`, the stage's
    summary (stages.summary) in the footer, and returns that summary."""
    from codecorpus.pipeline.partitions import read_summary, write_partition

    result = fn(*tables, **groups, **(fn_kwargs or {}))
    if result.num_rows == 0:
        return None
    final = storage.join(out_dir, f"p-{partition:05d}.parquet")
    write_partition([result], final)
    return read_summary(final)
