"""CodeParrot: `codeparrot/github-code` Parquet (split by row group) and `codeparrot-clean` `*.json.gz` lines.

Columns used: the text (`content`, or `code` in github-code), `repo_name`, `path`, `license`
(already an SPDX-style id), `size`. A Parquet file without a text column, or unreadable, is
quarantined as one record naming the file; a row without text is quarantined; rows of a damaged
json.gz before the damage are kept.
"""
from __future__ import annotations

import json
import os
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from codecorpus import storage
from codecorpus.stages.records import DROPPED, QUARANTINED, new_record, records_table
from codecorpus.stages.textlines import TruncatedInput, iter_lines

TEXT_COLUMNS = ("content", "code")
BATCH_ROWS = 512


def row_groups(path: str) -> list[int]:
    """The row groups of a Parquet file (one read task each); [-1] when the file cannot be opened."""
    try:
        return list(range(pq.ParquetFile(storage.parquet_source(path)).num_row_groups))
    except (OSError, pa.ArrowException):
        return [-1]


def _record(source: str, priority: int, max_bytes: int, row: dict, fallback_key: str, origin: str, number: str) -> dict:
    """One row's record; its id holds the file's `origin` and the row's `number` there, so a row
    repeated (in the file, or in a copy of the file) is a record of its own."""
    text = row.get("content", row.get("code"))
    repo, path = row.get("repo_name"), row.get("path")
    rec = dict(source=source, repo=repo, path=path, priority=priority, license=row.get("license"),
               id_key=None if path else fallback_key, origin=origin, row=number)
    if not isinstance(text, str):
        return new_record(**rec, status=QUARANTINED, reason="missing_text")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return new_record(**rec, size=size, status=DROPPED, reason="over_size_cap")
    if not text.strip():
        return new_record(**rec, size=size, status=DROPPED, reason="empty")
    return new_record(**rec, size=size, text=text)


def read_parquet_row_group(source: str, path: str, row_group: int, priority: int, max_file_bytes: int,
                           origin: str = "") -> Iterator[pa.Table]:
    file = os.path.basename(path)
    damaged = dict(source=source, repo=file, path=None, priority=priority, status=QUARANTINED, id_key=f"row_group:{row_group}",
                   origin=origin)
    try:
        parquet = pq.ParquetFile(storage.parquet_source(path))
        names = parquet.schema_arrow.names
        text_column = next((c for c in TEXT_COLUMNS if c in names), None)
        if text_column is None:
            yield records_table([new_record(**damaged, reason="missing_column:content")])
            return
        wanted = [c for c in (text_column, "repo_name", "path", "license") if c in names]
        offset = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[row_group], columns=wanted):
            yield records_table([_record(source, priority, max_file_bytes, row, f"{file}:{row_group}:{i}", origin,
                                         f"{row_group}:{i}")
                                 for i, row in enumerate(batch.to_pylist(), start=offset)])
            offset += batch.num_rows
    except (OSError, pa.ArrowException) as exc:
        yield records_table([new_record(**damaged, reason=f"unreadable_parquet:{type(exc).__name__}")])


def read_json_lines(source: str, path: str, priority: int, max_file_bytes: int, origin: str = "") -> Iterator[pa.Table]:
    file = os.path.basename(path)
    rows: list[dict] = []
    last = 0
    try:
        for number, line in iter_lines(path):
            last = number
            try:
                row = json.loads(line)
                rows.append(_record(source, priority, max_file_bytes, row if isinstance(row, dict) else {}, f"{file}:{number}",
                                    origin, str(number)))
            except ValueError:
                rows.append(new_record(source, file, None, priority, id_key=f"{number:012d}", size=len(line), origin=origin,
                                       status=QUARANTINED, reason="invalid_json"))
            if len(rows) >= BATCH_ROWS:
                yield records_table(rows)
                rows = []
    except (TruncatedInput, OSError) as exc:
        reason = "truncated_or_corrupt" if isinstance(exc, TruncatedInput) else f"unreadable:{type(exc).__name__}"
        rows.append(new_record(source, file, None, priority, id_key=f"{last + 1:012d}:damaged", origin=origin,
                               status=QUARANTINED, reason=reason))
    if rows:
        yield records_table(rows)
