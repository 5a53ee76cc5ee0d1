"""The record every stage reads and writes, and the bookkeeping columns.

A stage never deletes a row: it marks it `dropped` or `quarantined` with a reason, so that the
books balance (records in = kept + dropped by reason + quarantined) and the rejects can be read
back from the stage's output. The next stage reads only the `kept` rows.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

KEPT, DROPPED, QUARANTINED = "kept", "dropped", "quarantined"

RECORD_SCHEMA = pa.schema([
    ("id", pa.string()),          # stable: hash of source + repo + path
    ("source", pa.string()),
    ("repo", pa.string()),
    ("path", pa.string()),
    ("license", pa.string()),
    ("language", pa.string()),
    ("text", pa.large_string()),
    ("size", pa.int64()),         # bytes on disk
    ("rank_key", pa.string()),    # the fixed survivor rule of dedup: smallest wins
    ("line_max", pa.int32()),     # longest line, set by the filter stage
    ("line_mean", pa.float32()),  # mean line length, set by the filter stage
    ("alnum_frac", pa.float32()), # fraction of alphanumeric characters, set by the filter stage
    ("comment_lang", pa.string()),  # natural language of the comments (sampled), set by the tag stage
    ("status", pa.string()),
    ("reason", pa.string()),
])


def record_id(source: str, repo: str, path: str) -> str:
    return xxhash.xxh3_128_hexdigest(f"{source}\0{repo}\0{path}".encode())


def rank_key(priority: int, repo: str, path: str) -> str:
    """Dedup keeps the record whose key sorts first: source priority, then repository and path."""
    return f"{priority:+06d}\0{repo}\0{path}"


def mark(batch: pa.Table, reasons: list[str | None], status: str = DROPPED) -> pa.Table:
    """Mark the rows with a non-null reason as `status` (dropped by default)."""
    reasons_arr = pa.array(reasons, pa.string())
    hit = pc.is_valid(reasons_arr)
    new_status = pc.if_else(hit, pa.scalar(status), batch.column("status"))
    new_reason = pc.if_else(hit, reasons_arr, batch.column("reason"))
    batch = batch.set_column(batch.schema.get_field_index("status"), "status", new_status)
    return batch.set_column(batch.schema.get_field_index("reason"), "reason", new_reason)


def kept_only(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch.column("status"), KEPT))
