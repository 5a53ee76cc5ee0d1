"""Stages that survive a crash: a stage's work cut into partitions, each written as one Parquet file.

A partition — a slice of an upstream stage's file, a chunk of listed files, one archive, Pile file
or CodeParrot row group — is produced by one Ray task and written under a temporary name, renamed
when complete, with its summary (the books) in the file's footer. The files collect in
`stages/NN_name.partial/`, which carries the stage's fingerprint; once every partition is there
the folder becomes `stages/NN_name/`. A build that dies mid-stage leaves its completed partitions,
and the same command computes only the missing ones; a task Ray retries (a lost node) rewrites the
same file with the same bytes. Partitions follow the input, never the number of workers.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray.data

from stages.records import RECORD_SCHEMA, kept_only
from stages.summary import combine, summarize

SUMMARY_KEY = "codecorpus.summary"
ROWS_PER_ROW_GROUP = 1024          # rows buffered before a row group is written ...
BYTES_PER_ROW_GROUP = 64 << 20     # ... or this many bytes, whichever comes first
READ_BATCH_ROWS = 256              # rows a stage function sees at once
ROW_GROUPS_PER_PARTITION = 32      # a bigger upstream file is split into several partitions


def write_partition(tables: Iterable[pa.Table], final: str, schema: pa.Schema = RECORD_SCHEMA) -> None:
    """Write a stream of record tables as one Parquet file, the merged summary in its footer; the file
    appears under its final name only when complete. `schema` is used when the stream is empty."""
    tmp = final + ".tmp"
    writer: pq.ParquetWriter | None = None
    summary: dict | None = None
    buffered: list[pa.Table] = []

    def flush() -> None:
        nonlocal writer
        if buffered:
            table = pa.concat_tables(buffered)
            buffered.clear()
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=len(table) or 1)

    try:
        for table in tables:
            schema = table.schema
            if table.num_rows:
                summary = combine(summary, summarize(table))
                buffered.append(table)
                if sum(len(t) for t in buffered) >= ROWS_PER_ROW_GROUP or sum(t.nbytes for t in buffered) >= BYTES_PER_ROW_GROUP:
                    flush()
        flush()
        writer = writer or pq.ParquetWriter(tmp, schema)
        writer.add_key_value_metadata({SUMMARY_KEY: json.dumps(summary or summarize(schema.empty_table()))})
        writer.close()
    except BaseException as exc:
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass
        if isinstance(exc, OSError) and exc.errno:  # name the file: pyarrow's message does not
            raise OSError(exc.errno, os.strerror(exc.errno), tmp) from exc
        raise
    os.replace(tmp, final)


def read_summary(path: Path) -> dict:
    return json.loads(pq.read_metadata(path).metadata[SUMMARY_KEY.encode()])


def file_partitions(folder: Path) -> list[dict]:
    """The partitions of a map stage: each file of the upstream stage, split by row groups when large."""
    parts = []
    for f in sorted(folder.glob("*.parquet")):
        groups = pq.ParquetFile(f).num_row_groups
        if groups <= ROW_GROUPS_PER_PARTITION:
            parts.append({"part": f.stem, "payload": json.dumps({"path": str(f), "groups": [0, groups]})})
            continue
        for k, start in enumerate(range(0, groups, ROW_GROUPS_PER_PARTITION)):
            stop = min(groups, start + ROW_GROUPS_PER_PARTITION)
            parts.append({"part": f"{f.stem}.{k:04d}", "payload": json.dumps({"path": str(f), "groups": [start, stop]})})
    return parts


def map_file(payload: dict, fn: Callable[..., pa.Table], fn_kwargs: dict) -> Iterator[pa.Table]:
    """A map stage's partition: `fn` over the kept records of some row groups of an upstream file."""
    source = pq.ParquetFile(payload["path"])
    seen = False
    for batch in source.iter_batches(batch_size=READ_BATCH_ROWS, row_groups=range(*payload["groups"])):
        seen = True
        yield fn(kept_only(pa.Table.from_batches([batch])), **fn_kwargs)
    if not seen:  # still give the writer the output's schema
        yield fn(kept_only(source.schema_arrow.empty_table()), **fn_kwargs)


def _run_partitions(batch: pa.Table, out_dir: str, produce: Callable[..., Iterable[pa.Table]], kwargs: dict) -> pa.Table:
    for part, payload in zip(batch.column("part").to_pylist(), batch.column("payload").to_pylist()):
        final = os.path.join(out_dir, part + ".parquet")
        if not os.path.exists(final):  # an earlier attempt of this task finished it
            write_partition(produce(json.loads(payload), **kwargs), final)
    return batch.select(["part"])


def _not_done(batch: pa.Table, done: list[str]) -> pa.Table:
    return batch.filter(pc.invert(pc.is_in(batch.column("part"), pa.array(done, pa.string()))))


class PartitionedStage:
    """One stage's partial folder: which partitions are done, run the rest, publish the whole."""

    def __init__(self, final: Path, fingerprint: str):
        self.final = final
        self.partial = final.with_name(final.name + ".partial")
        self.mark = self.partial / "FINGERPRINT"
        if self.partial.exists() and not (self.mark.is_file() and self.mark.read_text() == fingerprint):
            shutil.rmtree(self.partial)  # left by a build with another config or input
        self.partial.mkdir(parents=True, exist_ok=True)
        self.mark.write_text(fingerprint)

    def done(self) -> list[str]:
        return sorted(p.name[: -len(".parquet")] for p in self.partial.glob("*.parquet"))

    def run(self, partitions: ray.data.Dataset, produce: Callable[..., Iterable[pa.Table]], kwargs: dict) -> None:
        """Produce and write every partition not yet done (rows `part`, `payload` of `partitions`),
        one Ray task each."""
        (partitions.map_batches(_not_done, batch_format="pyarrow", fn_kwargs={"done": self.done()})
                   .map_batches(_run_partitions, batch_size=1, batch_format="pyarrow",
                                fn_kwargs={"out_dir": str(self.partial), "produce": produce, "kwargs": kwargs})
                   .take_all())

    def summaries(self) -> list[dict]:
        return [read_summary(p) for p in sorted(self.partial.glob("*.parquet"))]

    def publish(self, publish: Callable[[Path, Path], None]) -> None:
        self.mark.unlink()
        for stale in self.partial.glob("*.tmp"):
            stale.unlink()
        publish(self.partial, self.final)
