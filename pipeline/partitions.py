"""Stages that survive a crash: a stage's work cut into partitions, each written as one Parquet file.

A partition — a slice of an upstream stage's file, a chunk of listed files, one archive, Pile file
or CodeParrot row group — is produced by one Ray task and written under a temporary name, renamed
when complete, with its summary (the books) in the file's footer. The files collect in
`stages/NN_name.partial/`, which carries the stage's fingerprint; once every partition is there
the folder becomes `stages/NN_name/`. In object storage (no rename) the partitions collect in
`stages/NN_name/` itself, each uploaded whole when written (storage.Output), the fingerprint beside
them until the stage is published. A build that dies mid-stage leaves its completed partitions,
and the same command computes only the missing ones; a task Ray retries (a lost node) rewrites the
same file with the same bytes. Partitions follow the input, never the number of workers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from codecorpus import storage
from codecorpus.pipeline.ray_runtime import as_completed
from codecorpus.stages.records import RECORD_SCHEMA, kept_only
from codecorpus.stages.summary import combine, summarize

SUMMARY_KEY = "codecorpus.summary"
ROWS_PER_ROW_GROUP = 1024          # rows buffered before a row group is written ...
BYTES_PER_ROW_GROUP = 64 << 20     # ... or this many bytes, whichever comes first
READ_BATCH_ROWS = 256              # rows a stage function sees at once
ROW_GROUPS_PER_PARTITION = 32      # a bigger upstream file is split into several partitions
PARTITION_BYTES = 16 << 20         # smaller upstream files are grouped up to about this much data (enough
                                   # partitions that two or more CPUs share the work evenly)


class _PartWriter:
    """One Parquet file written in row groups through storage.Output: under its name only when closed."""

    def __init__(self, final: str, schema: pa.Schema):
        self.output = storage.Output(final)
        self.final, self.tmp, self.schema = final, self.output.local, schema
        self.writer: pq.ParquetWriter | None = None
        self.buffered: list[pa.Table] = []

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.schema = table.schema
            self.buffered.append(table)
            if sum(len(t) for t in self.buffered) >= ROWS_PER_ROW_GROUP or sum(t.nbytes for t in self.buffered) >= BYTES_PER_ROW_GROUP:
                self.flush()

    def flush(self) -> None:
        if self.buffered:
            table = pa.concat_tables(self.buffered)
            self.buffered.clear()
            self.writer = self.writer or pq.ParquetWriter(self.tmp, table.schema)
            self.writer.write_table(table, row_group_size=len(table) or 1)

    def close(self, metadata: dict | None = None) -> None:
        try:
            self.flush()
            self.writer = self.writer or pq.ParquetWriter(self.tmp, self.schema)
            if metadata:
                self.writer.add_key_value_metadata({SUMMARY_KEY: json.dumps(metadata)})
            self.writer.close()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError) and exc.errno:  # name the file: pyarrow's message does not
                raise OSError(exc.errno, os.strerror(exc.errno), self.tmp) from exc
            raise
        self.output.commit()

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
        self.output.discard()


def write_partition(tables: Iterable[pa.Table], final: str, schema: pa.Schema = RECORD_SCHEMA) -> None:
    """Write a stream of record tables as one Parquet file, the merged summary in its footer; the file
    appears under its final name only when complete. `schema` is used when the stream is empty."""
    writer = _PartWriter(final, schema)
    summary: dict | None = None
    try:
        for table in tables:
            writer.schema = table.schema
            if table.num_rows:
                summary = combine(summary, summarize(table))
                writer.add(table)
    except BaseException:
        writer.abort()
        raise
    writer.close(summary or summarize(writer.schema.empty_table()))


def write_outputs(batches: Iterable[tuple[dict[str, pa.Table], dict[str, dict]]], folder: str, part: str,
                  schemas: dict[str, pa.Schema]) -> None:
    """A partition with several outputs (`folder/NAME/part.parquet` for each name of `schemas`) and
    the summaries of several stages: the first output is renamed into place last, with the summaries
    in its footer, so its presence means the whole partition is written."""
    writers = {name: _PartWriter(storage.join(folder, name, part + ".parquet"), schema) for name, schema in schemas.items()}
    summaries: dict[str, dict] = {}
    try:
        for tables, stage_summaries in batches:
            for stage, summary in stage_summaries.items():
                summaries[stage] = combine(summaries.get(stage), summary)
            for name, table in tables.items():
                writers[name].add(table)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    first = next(iter(writers))
    for name in list(writers)[1:]:
        writers[name].close()
    writers[first].close({"stages": summaries})


def read_summary(path: str) -> dict:
    return json.loads(pq.read_metadata(storage.parquet_source(path)).metadata[SUMMARY_KEY.encode()])


def file_partitions(folder: str, target_bytes: int = PARTITION_BYTES) -> list[dict]:
    """The partitions of a map stage over the upstream stage's files: consecutive files (or row-group
    slices of a large one) of about `target_bytes` uncompressed each, named after their first piece."""
    pieces = []
    for f in storage.parquet_files(folder):
        meta = pq.read_metadata(storage.parquet_source(f))
        stem = storage.basename(f)[: -len(".parquet")]
        for start in range(0, max(1, meta.num_row_groups), ROW_GROUPS_PER_PARTITION):
            stop = min(meta.num_row_groups, start + ROW_GROUPS_PER_PARTITION)
            size = sum(meta.row_group(g).total_byte_size for g in range(start, stop))
            pieces.append((f"{stem}.{start // ROW_GROUPS_PER_PARTITION:04d}", [f, start, stop], size))
    parts, current, current_bytes = [], [], 0
    for name, piece, size in pieces:
        if current and current_bytes + size > target_bytes:
            parts.append((current, current_bytes))
            current, current_bytes = [], 0
        current.append((name, piece))
        current_bytes += size
    if current:
        parts.append((current, current_bytes))
    return [{"part": chunk[0][0], "payload": json.dumps({"pieces": [piece for _, piece in chunk]}), "bytes": nbytes}
            for chunk, nbytes in parts]


def map_file(payload: dict, fn: Callable[..., pa.Table], fn_kwargs: dict) -> Iterator[pa.Table]:
    """A map stage's partition: `fn` over the kept records of some row groups of upstream files."""
    schema = None
    for path, start, stop in payload["pieces"]:
        source = pq.ParquetFile(storage.parquet_source(path))
        schema = source.schema_arrow
        for batch in source.iter_batches(batch_size=READ_BATCH_ROWS, row_groups=range(start, stop)):
            yield fn(kept_only(pa.Table.from_batches([batch])), **fn_kwargs)
    yield fn(kept_only(schema.empty_table()), **fn_kwargs)   # gives the writer the output's schema even when empty


def _write_one(part: str, payload: str, out_dir: str, produce: Callable[..., Iterable], kwargs: dict,
               outputs: dict[str, pa.Schema] | None) -> tuple[int, int]:
    """One partition produced and written (unless an earlier attempt of this task finished it); returns
    the files and bytes it read, for the progress line."""
    primary = storage.join(out_dir, next(iter(outputs)), part + ".parquet") if outputs else storage.join(out_dir, part + ".parquet")
    if not storage.exists(primary):
        if outputs:
            write_outputs(produce(json.loads(payload), **kwargs), out_dir, part, outputs)
        else:
            write_partition(produce(json.loads(payload), **kwargs), primary)
    books = _books_in(read_summary(primary))
    return books["in"], books["in_bytes"]


def _books_in(summary: dict) -> dict:
    """What a written partition read (its first stage's files and bytes in), for the progress line."""
    first = next(iter(summary["stages"].values())) if "stages" in summary else summary
    return {"in": sum(first["n"].values()), "in_bytes": sum(first["bytes"].values())}


class PartitionedStage:
    """One stage's partial folder: which partitions are done, run the rest, publish the whole. With
    `outputs`, each partition writes one file into each of those subfolders (the first marks it done)."""

    def __init__(self, final: str, fingerprint: str, outputs: dict[str, pa.Schema] | None = None):
        self.final = final
        self.outputs = outputs
        # on a disk a folder beside the stage's, renamed when complete; in object storage (no rename)
        # the stage's own folder, the stage done once state.json says so
        self.partial = final if storage.is_remote(final) else final + ".partial"
        self.mark = storage.join(self.partial, "FINGERPRINT")
        if storage.exists(self.partial) and not (storage.is_file(self.mark) and storage.read_text(self.mark) == fingerprint):
            storage.remove(self.partial)  # left by a build with another config or input
        for name in outputs or ():
            storage.make_dirs(storage.join(self.partial, name))
        storage.make_dirs(self.partial)
        storage.write_text(self.mark, fingerprint)

    @property
    def _done_folder(self) -> str:
        return storage.join(self.partial, next(iter(self.outputs))) if self.outputs else self.partial

    def done(self) -> list[str]:
        return [storage.basename(p)[: -len(".parquet")] for p in storage.parquet_files(self._done_folder)]

    def run(self, payloads: list[dict], produce: Callable[..., Iterable], kwargs: dict,
            advance: Callable[[int, int], None] | None = None) -> None:
        """Produce and write every partition of `payloads` ({part, payload}) not yet done, one Ray task
        each (plain tasks: they reuse the workers of the steps before, where a Ray Data execution starts
        processes of its own); `advance(files, bytes)` is called as each one is written."""
        advance = advance or (lambda files, nbytes: None)
        done = set(self.done())
        # the largest first (by their `bytes`, where given): the last tasks are short, so no CPU waits long at the end
        todo = sorted((p for p in payloads if p["part"] not in done), key=lambda p: -p.get("bytes", 0))
        task = ray.remote(_write_one)
        shared = [ray.put(produce), ray.put(kwargs)]     # sent once, not once per task
        submitters = [lambda item=item: task.remote(item["part"], item["payload"], self.partial, *shared, self.outputs)
                      for item in todo]
        for _, (files, nbytes) in as_completed(submitters):
            advance(files, nbytes)

    def summaries(self) -> list[dict]:
        return [read_summary(p) for p in storage.parquet_files(self._done_folder)]

    def publish(self, publish: Callable[[str, str], None]) -> None:
        storage.remove(self.mark)
        if not storage.is_remote(self.partial):      # a disk's temporary names (object storage has none)
            for stale in Path(self.partial).rglob("*.tmp"):
                stale.unlink()
        publish(self.partial, self.final)
