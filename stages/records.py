"""The record every stage reads and writes, and the bookkeeping columns.

A stage never deletes a row: it marks it `dropped` or `quarantined` with a reason, so that the
books balance (records in = kept + dropped by reason + quarantined) and the rejects can be read
back from the stage's output. The next stage reads only the `kept` rows.
"""
from __future__ import annotations

import json
from collections import Counter

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


BOOK_KEYS = ["source", "language", "status", "reason"]


def books_of(batch: pa.Table | pa.RecordBatch) -> str:
    """A summary of a block as JSON: files and bytes per (source, language, status, reason).

    Summaries are merged by `merge_books`, so the books never need the records in one place.
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    table = table.select(BOOK_KEYS + ["size"]).cast(pa.schema(
        [(k, pa.string()) for k in BOOK_KEYS] + [("size", pa.int64())]))
    table = table.set_column(table.schema.get_field_index("size"), "size", pc.fill_null(table.column("size"), 0))
    grouped = table.group_by(BOOK_KEYS, use_threads=False).aggregate([("size", "count"), ("size", "sum")])
    counts, sizes = {}, {}
    for row in grouped.to_pylist():
        key = "|".join(row[k] or "" for k in BOOK_KEYS)
        counts[key] = row["size_count"]
        sizes[key] = row["size_sum"]
    return json.dumps({"n": counts, "bytes": sizes})


def merge_books(summaries: list[str]) -> dict:
    """Merge block summaries into {"in", "kept", "dropped": {reason: n}, "quarantined": {reason: n}, ...}."""
    n: Counter = Counter()
    nbytes: Counter = Counter()
    for s in summaries:
        d = json.loads(s)
        n.update(d["n"])
        nbytes.update(d["bytes"])
    out = {"in": 0, "kept": 0, "kept_bytes": 0, "dropped": {}, "quarantined": {},
           "by_source": {}, "kept_by_language": {}}
    for key, count in sorted(n.items()):
        source, lang, status, reason = key.split("|")
        out["in"] += count
        src = out["by_source"].setdefault(source, {"in": 0, "kept": 0, "dropped": 0, "quarantined": 0})
        src["in"] += count
        src[status] += count
        if status == KEPT:
            out["kept"] += count
            out["kept_bytes"] += nbytes[key]
            lang_books = out["kept_by_language"].setdefault(lang or "unknown", {"files": 0, "bytes": 0})
            lang_books["files"] += count
            lang_books["bytes"] += nbytes[key]
        else:
            out[status][reason] = out[status].get(reason, 0) + count
    return out


def books_balance(b: dict) -> bool:
    return b["in"] == b["kept"] + sum(b["dropped"].values()) + sum(b["quarantined"].values())
